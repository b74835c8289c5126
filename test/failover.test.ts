/**
 * Several server addresses and draining (issue 16 §5): a peer given `--server a,b` uses the
 * next address when one does not answer, and an instance that gets SIGTERM tells its peers to
 * move (`draining`), stops taking connections, and exits as soon as they have gone, or closes
 * what is left when its drain time is up.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { api, stablePort, tempDir, waitFor } from './testnet.js';
import { spawnHchat, spawnServer } from './processes.js';
import { serverHello } from './outsider/lib.js';
import { startCluster } from './cluster-kit.js';
import { newKeyPair } from '../src/shared/keygen.js';

/** The lines of a connection log file (`t=… ev=… …`) of one event. */
function logged(file: string, event: string): string[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.split(' ')[1] === `ev=${event}`);
}

describe('server addresses and drain', () => {
  it('a peer skips an address that does not answer, and moves off an instance that drains', async () => {
    const srvData = tempDir();
    const srv = await spawnServer(srvData, { extra: ['--drain-ms', '30000'] });
    const dead = await stablePort();
    const data = path.join(tempDir(), 'alice');
    const peer = await spawnHchat([
      'peer',
      '--server',
      `127.0.0.1:${dead},${srv.ready.tcp}`,
      '--data',
      data,
    ]);
    const ui = peer.ready.ui!;
    // Registering needs the server: the ready line comes once the link tried every address, so
    // it works at once, through the second.
    const reg = await api(ui, 'POST', '/api/register', {
      username: 'alice',
      password: 'alice-pw-1',
    });
    expect(reg.status).toBe(201);
    await api(ui, 'POST', '/api/login', { username: 'alice', password: 'alice-pw-1' });
    await waitFor(
      async () => (await api(ui, 'GET', '/api/me')).body.connection === 'connected',
      10_000,
      'connected through the second address',
    );
    const peerLog = path.join(data, 'connections.log');
    expect(logged(peerLog, 'open').some((l) => l.includes(`addr=${srv.ready.tcp}`))).toBe(true);

    const t0 = Date.now();
    srv.proc.kill('SIGTERM');
    const code = await srv.exited;
    const took = Date.now() - t0;
    // The peer left when told (it had nowhere else to go: it keeps trying both addresses), so
    // the instance exited long before its 30 s drain time.
    expect({ code, quick: took < 10_000 }).toEqual({ code: 0, quick: true });
    const srvLog = path.join(srvData, 'connections.log');
    expect(logged(srvLog, 'drain')).toHaveLength(1);
    expect(logged(srvLog, 'drained')[0]).toMatch(/ left=0( |$)/);
    await waitFor(
      () => logged(peerLog, 'server_draining').length === 1,
      5_000,
      'the peer logs the drain',
    );
    expect((await api(ui, 'GET', '/api/me')).body.connection).toBe('connecting');
  });

  it('a client that ignores `draining` hears it, then is closed when the drain time is up', async () => {
    const srv = await spawnServer(tempDir(), { extra: ['--drain-ms', '1500'] });
    const [host, port] = srv.ready.tcp!.split(':');
    const { c } = await serverHello({ host: host!, port: Number(port) });
    const t0 = Date.now();
    srv.proc.kill('SIGTERM');
    await c.closeP;
    const took = Date.now() - t0;
    expect(await srv.exited).toBe(0);
    expect({
      draining: c.events.some((e) => e.ev === 'draining'),
      closedWith: c.frames.find((f) => f.t === 'error')?.code,
      afterDrainTime: took >= 1400,
      notMuchLater: took < 8000,
    }).toEqual({
      draining: true,
      closedWith: 'E_SHUTTING_DOWN',
      afterDrainTime: true,
      notMuchLater: true,
    });
    // No new connection is taken while draining.
  });

  it('instances given one --signing-key sign as one; a key that is not Ed25519 is refused', async () => {
    const dir = tempDir();
    const key = path.join(dir, 'signing-key.pem');
    const { privateKey } = newKeyPair('ed25519');
    fs.writeFileSync(key, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    const hello = async (s: { ready: Record<string, string> }) => {
      const [host, port] = s.ready.tcp!.split(':');
      const { c, hello } = await serverHello({ host: host!, port: Number(port) });
      c.close();
      return hello.publicKey as string;
    };
    const a = await spawnServer(tempDir(), { extra: ['--signing-key', key] });
    const b = await spawnServer(tempDir(), { extra: ['--signing-key', key] });
    const own = await spawnServer(tempDir());
    const spki =
      privateKey.export({ type: 'pkcs8', format: 'der' }) &&
      crypto.createPublicKey(privateKey).export({ type: 'spki', format: 'der' }).toString('base64');
    expect([await hello(a), await hello(b)]).toEqual([spki, spki]);
    expect(await hello(own)).not.toBe(spki);

    const rsa = path.join(dir, 'rsa.pem');
    fs.writeFileSync(
      rsa,
      crypto
        .generateKeyPairSync('rsa', { modulusLength: 1024 })
        .privateKey.export({ type: 'pkcs8', format: 'pem' }),
    );
    const { runHchat } = await import('./processes.js');
    for (const file of [rsa, path.join(dir, 'missing.pem')]) {
      const r = await runHchat([
        'server',
        '--port',
        '0',
        '--http-port',
        '0',
        '--data',
        tempDir(),
        '--signing-key',
        file,
      ]);
      expect(r.code).not.toBe(0);
      expect(r.out).toContain(`--signing-key ${file}`);
    }
  });

  it('a peer never moves to an instance that signs with another key than the deployment', async () => {
    const a = await spawnServer(tempDir());
    const b = await spawnServer(tempDir()); // its own signing key: not this deployment's
    const data = path.join(tempDir(), 'alice');
    const peer = await spawnHchat([
      'peer',
      '--server',
      `${a.ready.tcp},${b.ready.tcp}`,
      '--data',
      data,
    ]);
    const ui = peer.ready.ui!;
    await waitFor(
      async () =>
        (await api(ui, 'POST', '/api/register', { username: 'alice', password: 'alice-pw-1' }))
          .status === 201,
      10_000,
      'registered on the first instance',
    );
    a.proc.kill('SIGKILL');
    await a.exited;
    const log = path.join(data, 'connections.log');
    await waitFor(
      () => logged(log, 'server_refused').some((l) => l.includes(`addr=${b.ready.tcp}`)),
      10_000,
      'the other instance refused for its key',
    );
    expect(logged(log, 'server_refused')[0]).toMatch(/ reason=signing_key/);
    expect((await api(ui, 'GET', '/api/me')).body.connection).not.toBe('connected');
  });

  it('a frozen instance first in --server (TCP accepted, nothing answered) costs seconds, not the start: the peer goes on to the next', async () => {
    // SIGSTOP: the kernel still completes TCP connections to it, but no TLS handshake or hello
    // ever comes back, as from a hung process. PROTOCOL §3.2: a peer gives an address 5 s.
    const frozen = await spawnServer(tempDir());
    frozen.proc.kill('SIGSTOP');
    const live = await spawnServer(tempDir());
    const data = path.join(tempDir(), 'alice');
    const t0 = Date.now();
    const peer = await spawnHchat(
      ['peer', '--server', `${frozen.ready.tcp},${live.ready.tcp}`, '--data', data],
      {},
      20_000,
    );
    const readyIn = Date.now() - t0;
    const reg = await api(peer.ready.ui!, 'POST', '/api/register', {
      username: 'alice',
      password: 'alice-pw-1',
    });
    expect({ status: reg.status, readyWithin10s: readyIn < 10_000 }).toEqual({
      status: 201,
      readyWithin10s: true,
    });
    const peerLog = path.join(data, 'connections.log');
    expect(logged(peerLog, 'open').some((l) => l.includes(`addr=${live.ready.tcp}`))).toBe(true);
    frozen.proc.kill('SIGKILL');
  });

  it('an instance that freezes under a connected peer: the peer hears silence past timeoutMs, moves to the next, and its post is stored once', async () => {
    // The instances ask a frame every second and drop a link silent for 3 s (their hello says
    // so); a peer closes a link whose server is silent that long (PROTOCOL §3.2).
    const k = await startCluster(['--heartbeat-ms', '1000', '--peer-timeout-ms', '3000']);
    const [a, b] = k.servers.map((s) => s.ready.tcp!);
    const data = path.join(tempDir(), 'alice');
    const peer = await spawnHchat(['peer', '--server', `${a},${b}`, '--data', data]);
    const ui = peer.ready.ui!;
    expect(
      (await api(ui, 'POST', '/api/register', { username: 'alice', password: 'alice-pw-1' }))
        .status,
    ).toBe(201);
    await api(ui, 'POST', '/api/login', { username: 'alice', password: 'alice-pw-1' });
    const ch = (await api(ui, 'POST', '/api/channels', { name: 'room' })).body.id as string;
    const log = path.join(data, 'connections.log');
    expect(logged(log, 'open').some((l) => l.includes(`addr=${a}`))).toBe(true);

    k.servers[0]!.proc.kill('SIGSTOP');
    const t0 = Date.now();
    const sent = await api(ui, 'POST', `/api/channels/${ch}/messages`, {
      text: 'through the freeze',
    });
    expect(sent.status).toBeLessThan(300);
    await waitFor(
      async () =>
        logged(log, 'open').some((l) => l.includes(`addr=${b}`)) &&
        (await api(ui, 'GET', '/api/me')).body.connection === 'connected',
      15_000,
      'the peer moved to the other instance',
    );
    const movedIn = Date.now() - t0;
    await waitFor(
      async () => {
        const page = await api(ui, 'GET', `/api/channels/${ch}/messages`);
        return page.body.messages?.some(
          (m: { text?: string; state?: string }) =>
            m.text === 'through the freeze' && m.state === 'delivered',
        );
      },
      10_000,
      'the post stored through the other instance',
    );
    const { Client } = await import('pg');
    const pg = new Client({ connectionString: k.dbUrl });
    await pg.connect();
    try {
      const n = await pg.query(
        "SELECT count(*)::int AS n FROM messages WHERE channel_id = $1 AND kind = 'message'",
        [ch],
      );
      expect(n.rows[0].n).toBe(1);
    } finally {
      await pg.end();
    }
    expect(movedIn).toBeLessThan(10_000);
    k.servers[0]!.proc.kill('SIGKILL');
  });

  it('refuses a --server list with a bad or repeated address, naming the flag', async () => {
    const { runHchat } = await import('./processes.js');
    const bad = await runHchat(['peer', '--server', '127.0.0.1:7000,nope', '--data', tempDir()]);
    const twice = await runHchat([
      'peer',
      '--server',
      '127.0.0.1:7000,127.0.0.1:7000',
      '--data',
      tempDir(),
    ]);
    expect(bad.code).not.toBe(0);
    expect(bad.out).toMatch(/--server/);
    expect(twice.code).not.toBe(0);
    expect(twice.out).toMatch(/listed twice/);
    const fp = 'A'.repeat(43);
    const mixed = await runHchat([
      'peer',
      '--server',
      `127.0.0.1:7000#${fp},127.0.0.1:7001`,
      '--data',
      tempDir(),
    ]);
    expect(mixed.code).not.toBe(0);
    expect(mixed.out).toMatch(/pin every address/);
  });
});
