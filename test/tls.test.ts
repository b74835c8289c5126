/**
 * The server link's TLS as a user and as an attacker on the path meet it (issue 12, SPEC §7,
 * docs/PROTOCOL.md §1.1): TLS 1.3 only, the fingerprint on the ready line, trust on first use
 * remembered in `known_servers`, pinning, a changed key refused with the way to accept it, a
 * CA-issued certificate, and a man in the middle with its own key refused after first use and
 * with a pinned fingerprint. Real processes (`bin/hchat`), real sockets.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { describe, expect, it, onTestFinished } from 'vitest';
import { encodeFrame, FrameDecoder } from '../src/protocol/frame.js';
import { PROTOCOL_VERSION } from '../src/protocol/common.js';
import { ServerLink } from '../src/peer/server-link.js';
import { ServerTrust } from '../src/peer/server-trust.js';
import { selfSignedIdentity } from '../src/shared/tls.js';
import { spawnHchat, spawnServer, type HchatProcess } from './processes.js';
import { api, stablePort, tempDir, waitFor } from './testnet.js';

function spawnPeer(dir: string, server: string, env: Record<string, string> = {}) {
  return spawnHchat(['peer', '--server', server, '--data', dir], env);
}

/** Frames a TLS client gets back for `frames` (any key accepted), until the server closes or ms. */
function tlsExchange(
  port: number,
  frames: object[],
  opts: tls.ConnectionOptions = {},
  ms = 3000,
): Promise<{ protocol: string | null; got: Record<string, unknown>[]; error?: string }> {
  return new Promise((resolve) => {
    const s = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, ...opts });
    const d = new FrameDecoder();
    const got: Record<string, unknown>[] = [];
    let protocol: string | null = null;
    let error: string | undefined;
    const done = () => {
      clearTimeout(t);
      s.destroy();
      resolve({ protocol, got, error });
    };
    const t = setTimeout(done, ms);
    s.on('secureConnect', () => {
      protocol = s.getProtocol();
      for (const f of frames) s.write(encodeFrame(f));
    });
    s.on('data', (b) => {
      got.push(...d.push(b));
      if (got.some((f) => f.t === 'hello' || f.t === 'error')) done();
    });
    s.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    s.on('close', done);
  });
}

/**
 * A man in the middle: terminates TLS with its own key, opens TLS to `target`, and relays the
 * plaintext both ways, keeping what the client sent.
 */
async function mitm(target: number, port = 0) {
  const id = selfSignedIdentity('mallory');
  const fromClient: Buffer[] = [];
  const srv = tls.createServer({ key: id.key, cert: id.cert }, (c) => {
    const up = tls.connect({ port: target, host: '127.0.0.1', rejectUnauthorized: false });
    c.on('data', (b) => {
      fromClient.push(b);
      up.write(b);
    });
    up.on('data', (b) => c.write(b));
    c.on('error', () => undefined);
    up.on('error', () => undefined);
    c.on('close', () => up.destroy());
    up.on('close', () => c.destroy());
  });
  srv.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => srv.listen(port, '127.0.0.1', r));
  onTestFinished(() => void srv.close());
  return {
    port: (srv.address() as net.AddressInfo).port,
    fingerprint: id.fingerprint,
    sent: () => Buffer.concat(fromClient),
    close: () => new Promise<void>((r) => srv.close(() => r())),
  };
}

async function kill(p: HchatProcess): Promise<void> {
  p.proc.kill('SIGKILL');
  await p.exited;
}

/**
 * Calls `route` on a peer's local API until the server key refusal is the answer (the peer may
 * still be reconnecting), and returns that answer.
 */
function keyRefusal(ui: string, route: string, username: string) {
  return waitFor(async () => {
    const a = await api(ui, 'POST', route, { username, password: `${username}-pw` });
    return a.body?.error?.code === 'E_SERVER_KEY_MISMATCH' ? a : undefined;
  });
}

const connlog = (dir: string) => fs.readFileSync(path.join(dir, 'connections.log'), 'utf8');

describe('the server link over TLS', () => {
  it('speaks TLS 1.3 only, prints its fingerprint, and refuses plaintext while serving others', async () => {
    const dir = tempDir();
    const s = await spawnServer(path.join(dir, 's'));
    const port = Number(s.ready.tcp!.split(':')[1]);
    // The fingerprint is that of the key in the data folder, 0600.
    const certFile = path.join(dir, 's', 'tls-cert.pem');
    expect(fs.statSync(path.join(dir, 's', 'tls-key.pem')).mode & 0o777).toBe(0o600);
    const x = new (await import('node:crypto')).X509Certificate(fs.readFileSync(certFile));
    const spki = x.publicKey.export({ type: 'spki', format: 'der' });
    const fp = (await import('node:crypto')).createHash('sha256').update(spki).digest('base64url');
    expect(s.ready.fingerprint).toBe(fp);

    // openssl's own client sees TLS 1.3.
    const o = spawnSync('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-tls1_3'], {
      input: '',
      encoding: 'utf8',
      timeout: 10_000,
    });
    expect(o.stdout).toMatch(/Protocol\s*: TLSv1\.3|New, TLSv1\.3/);
    // TLS 1.2 is refused.
    const old = await tlsExchange(port, [], { maxVersion: 'TLSv1.2', minVersion: 'TLSv1.2' });
    expect(old.protocol).toBeNull();
    expect(old.error).toMatch(/ERR_SSL|EPROTO|ECONNRESET/);

    // A plaintext hello gets no hello back: the TLS layer refuses it and closes.
    const plain = await new Promise<Buffer>((resolve) => {
      const c = net.connect(port, '127.0.0.1');
      const got: Buffer[] = [];
      c.on('connect', () =>
        c.write(encodeFrame({ t: 'hello', v: PROTOCOL_VERSION, role: 'peer' })),
      );
      c.on('data', (b) => got.push(b));
      c.on('error', () => undefined);
      c.on('close', () => resolve(Buffer.concat(got)));
      setTimeout(() => c.destroy(), 5000);
    });
    expect(plain.toString('latin1')).not.toContain('"hello"');
    // …and the server goes on serving TLS clients.
    const ok = await tlsExchange(port, [{ t: 'hello', v: PROTOCOL_VERSION, role: 'peer' }]);
    expect(ok.protocol).toBe('TLSv1.3');
    expect(ok.got[0]).toMatchObject({ t: 'hello', role: 'server' });
    expect(connlog(path.join(dir, 's'))).toMatch(/tls_error .*reason=/);
  });

  it('a new peer trusts the server on first use, remembers its key, and refuses a changed one with how to accept it', async () => {
    const dir = tempDir();
    const port = await stablePort();
    const s1 = await spawnServer(path.join(dir, 's1'), { port });
    const pdir = path.join(dir, 'p');
    const p = await spawnPeer(pdir, `127.0.0.1:${port}`);
    const ui = p.ready.ui!;
    expect(
      (await api(ui, 'POST', '/api/register', { username: 'ann', password: 'ann-pw' })).status,
    ).toBe(201);
    expect(
      (await api(ui, 'POST', '/api/login', { username: 'ann', password: 'ann-pw' })).status,
    ).toBe(200);
    const known = fs.readFileSync(path.join(pdir, 'known_servers'), 'utf8');
    expect(known).toBe(`127.0.0.1:${port} ${s1.ready.fingerprint}\n`);
    expect(connlog(pdir)).toMatch(
      new RegExp(`trust .*peer=server .*how=first-use .*fingerprint=${s1.ready.fingerprint}`),
    );

    // Another server (another key) at the same address: refused, and the user is told how.
    await kill(s1);
    const s2 = await spawnServer(path.join(dir, 's2'), { port });
    expect(s2.ready.fingerprint).not.toBe(s1.ready.fingerprint);
    // The UI learns why it is not connecting (its banner shows this).
    const me = await waitFor(async () => {
      const r = await api(ui, 'GET', '/api/me');
      return r.body?.serverKeyError ? r.body : undefined;
    });
    expect(me.connection).toBe('connecting');
    expect(me.serverKeyError).toContain(s2.ready.fingerprint);
    const refused = await keyRefusal(ui, '/api/login', 'ann');
    expect(refused.status).toBe(502);
    expect(refused.body.error.message).toContain(s2.ready.fingerprint);
    expect(refused.body.error.message).toContain('known_servers');
    await waitFor(() => p.output().includes('error: E_SERVER_KEY_MISMATCH'));
    expect(fs.readFileSync(path.join(pdir, 'known_servers'), 'utf8')).toBe(known); // unchanged

    // Accepting the new key deliberately: the line removed, the peer started again.
    await kill(p);
    fs.writeFileSync(path.join(pdir, 'known_servers'), '');
    const p2 = await spawnPeer(pdir, `127.0.0.1:${port}`);
    expect(
      (await api(p2.ready.ui!, 'POST', '/api/register', { username: 'ann', password: 'ann-pw' }))
        .status,
    ).toBe(201);
    expect(fs.readFileSync(path.join(pdir, 'known_servers'), 'utf8')).toBe(
      `127.0.0.1:${port} ${s2.ready.fingerprint}\n`,
    );
  });

  it('a pinned fingerprint connects only to that key (--server host:port#fp, HCHAT_SERVER_FINGERPRINT)', async () => {
    const dir = tempDir();
    const s = await spawnServer(path.join(dir, 's'));
    const fp = s.ready.fingerprint!;
    const wrong = selfSignedIdentity('other').fingerprint;
    const bad = await spawnPeer(path.join(dir, 'p1'), `${s.ready.tcp}#${wrong}`);
    const r = await keyRefusal(bad.ready.ui!, '/api/register', 'bob');
    expect(r.body.error.code).toBe('E_SERVER_KEY_MISMATCH');
    expect(r.body.error.message).toContain(`${wrong} is pinned`);
    expect(fs.existsSync(path.join(dir, 'p1', 'known_servers'))).toBe(false);

    const good = await spawnPeer(path.join(dir, 'p2'), s.ready.tcp!, {
      HCHAT_SERVER_FINGERPRINT: fp,
    });
    expect(
      (await api(good.ready.ui!, 'POST', '/api/register', { username: 'bob', password: 'bob-pw' }))
        .status,
    ).toBe(201);
    expect(connlog(path.join(dir, 'p2'))).toMatch(/open .*peer=server .*tls=TLSv1\.3/);
  });

  it('refuses a man in the middle with its own key after first use and with a pin, and logs it', async () => {
    const dir = tempDir();
    const port = await stablePort();
    const sdir = path.join(dir, 's');
    let s = await spawnServer(sdir, { port });
    const fp = s.ready.fingerprint!;
    // First use: the real server.
    const pdir = path.join(dir, 'p');
    const p = await spawnPeer(pdir, `127.0.0.1:${port}`);
    const ui = p.ready.ui!;
    expect(
      (await api(ui, 'POST', '/api/register', { username: 'cyd', password: 'cyd-pw' })).status,
    ).toBe(201);

    // Mallory takes the address; the real server (same key) sits behind her.
    await kill(s);
    s = await spawnServer(sdir);
    expect(s.ready.fingerprint).toBe(fp);
    const m = await mitm(Number(s.ready.tcp!.split(':')[1]), port);
    const r = await keyRefusal(ui, '/api/login', 'cyd');
    expect(r.body.error.message).toContain(m.fingerprint);
    // The peer sent her nothing but the TLS handshake: no hello, no password, no token.
    expect(m.sent().length).toBe(0);
    // Logged as the link closes, a moment after the refusal reached the API (CI saw it late).
    await waitFor(
      () => /close .*peer=server .*reason=E_SERVER_KEY_MISMATCH/.test(connlog(pdir)),
      5000,
      'the refusal in the connection log',
    );

    // A peer that pins the real key never talks to her either, even on its first connection.
    const pinned = await spawnPeer(path.join(dir, 'q'), `127.0.0.1:${port}#${fp}`);
    const r2 = await keyRefusal(pinned.ready.ui!, '/api/register', 'dia');
    expect(r2.body.error.code).toBe('E_SERVER_KEY_MISMATCH');
    expect(m.sent().length).toBe(0);

    // Control: without Mallory, the same pinned peer connects and registers.
    await m.close();
    const direct = await spawnPeer(path.join(dir, 'r'), `${s.ready.tcp}#${fp}`);
    expect(
      (
        await api(direct.ready.ui!, 'POST', '/api/register', {
          username: 'dia',
          password: 'dia-pw',
        })
      ).status,
    ).toBe(201);
  });

  it('an operator certificate from a CA is verified as usual and remembered as such', async () => {
    const dir = tempDir();
    const ossl = (...a: string[]) => execFileSync('openssl', a, { cwd: dir, stdio: 'pipe' });
    ossl(
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-days',
      '2',
      '-subj',
      '/CN=Test CA',
    );
    ossl(
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'srv.key',
      '-out',
      'srv.csr',
      '-subj',
      '/CN=localhost',
    );
    fs.writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=DNS:localhost\n');
    ossl(
      'x509',
      '-req',
      '-in',
      'srv.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'srv.pem',
      '-days',
      '2',
      '-extfile',
      'ext.cnf',
    );
    const port = await stablePort();
    const s = await spawnServer(path.join(dir, 's'), {
      port,
      extra: ['--tls-cert', path.join(dir, 'srv.pem'), '--tls-key', path.join(dir, 'srv.key')],
    });
    const pdir = path.join(dir, 'p');
    const env = { NODE_EXTRA_CA_CERTS: path.join(dir, 'ca.pem') };
    const p = await spawnPeer(pdir, `localhost:${port}`, env);
    expect(
      (await api(p.ready.ui!, 'POST', '/api/register', { username: 'eve', password: 'eve-pw' }))
        .status,
    ).toBe(201);
    expect(fs.readFileSync(path.join(pdir, 'known_servers'), 'utf8')).toBe(
      `localhost:${port} ca\n`,
    );
    expect(fs.existsSync(path.join(dir, 's', 'tls-key.pem'))).toBe(false);

    // The same address with a key no CA vouches for: refused.
    await kill(s);
    await spawnServer(path.join(dir, 's2'), { port });
    const r = await keyRefusal(p.ready.ui!, '/api/login', 'eve');
    expect(r.body.error.message).toContain('CA-issued');
  });

  it('a peer dials TLS 1.3 only: a server that offers at most TLS 1.2 never gets a handshake or a frame', async () => {
    const id = selfSignedIdentity('old server');
    let secured = 0;
    const heard: Buffer[] = [];
    const old = tls.createServer(
      { key: id.key, cert: id.cert, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' },
      (s) => {
        secured++;
        s.on('data', (b) => heard.push(b));
      },
    );
    await new Promise<void>((r) => old.listen(0, '127.0.0.1', r));
    onTestFinished(() => void old.close());
    const port = (old.address() as net.AddressInfo).port;
    const link = new ServerLink({
      host: '127.0.0.1',
      port,
      trust: ServerTrust.pinned('127.0.0.1', port, id.fingerprint),
      reconnect: false,
      connectTimeoutMs: 2000,
    });
    onTestFinished(() => link.stop());
    // Twice: the second dial reuses what the first made (the process's TLS context).
    for (let i = 0; i < 2; i++) {
      // Refused (the test's point), or finished: then the assertions below say what went wrong.
      const refused = new Promise((r) => {
        old.once('tlsClientError', r);
        old.once('secureConnection', r);
      });
      const down = new Promise((r) => link.once('down', r));
      void link.start();
      await refused;
      await down;
    }
    expect(secured, 'TLS 1.2 handshakes finished').toBe(0);
    expect(Buffer.concat(heard).length).toBe(0);
    expect(link.connected).toBe(false);
  });

  it('refuses a damaged known_servers file instead of trusting anew', () => {
    const dir = tempDir();
    const f = path.join(dir, 'known_servers');
    fs.writeFileSync(f, '127.0.0.1:7000 not-a-fingerprint\n');
    expect(() => new ServerTrust(f)).toThrow(/line 1/);
  });
});
