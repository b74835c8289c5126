// Outsider attacks on the TLS 1.3 boundary of PROTOCOL.md §1.1, from the document alone: the
// server's and a peer's doors refuse TLS 1.2, plaintext and garbage (before and after the
// handshake) and go on serving; the hello deadline holds after TLS; the fingerprint is the
// SPKI's SHA-256; known_servers trusts on first use, refuses a changed key without sending a
// byte, and a damaged file stops the peer from starting.
import { test, expect, afterAll } from 'vitest';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { startServer, startPeer, serverHello, killAll, sleep, frame, sharedServer } from './lib.js';
import { fingerprintOf, rawProbe, tlsProbe, garbageAfterHandshake, impostor } from './tls.js';

afterAll(killAll);

/**
 * The server of the tests that neither restart it nor change its flags: what each reads of it
 * (tls_error lines counted at least, its fingerprint, registrations under names of their own)
 * holds whatever the others did.
 */
const server = sharedServer();
afterAll(server.end);

const logOf = (data: string) => {
  try {
    return fs.readFileSync(path.join(data, 'connections.log'), 'utf8');
  } catch {
    return '';
  }
};

/** Every way in that is not TLS 1.3 is refused at `port`, which keeps serving. */
async function doorRefusesAllButTls13(port: number) {
  const hello = frame({ t: 'hello', v: 4, role: 'peer' });
  const [t12, plain, garbage, after] = await Promise.all([
    tlsProbe(port, { maxVersion: 'TLSv1.2' }),
    rawProbe(port, hello),
    rawProbe(port, crypto.randomBytes(300)),
    garbageAfterHandshake(port, crypto.randomBytes(200)),
  ]);
  expect(t12.secure, 'TLS 1.2 handshake finished').toBe(false);
  expect(t12.closed).toBe(true);
  for (const p of [plain, garbage]) {
    expect(p.closed, 'plaintext / garbage connection left open').toBe(true);
    // No frame crosses in the clear: at most a TLS alert record (content type 21).
    expect(p.bytes.includes(Buffer.from('"t"'))).toBe(false);
    if (p.bytes.length) expect(p.bytes[0]).toBe(21);
  }
  expect(after.secure).toBe(true);
  expect(after.closed, 'garbage after the handshake did not close the link').toBe(true);
  return { t12, plain, garbage, after };
}

test('the server door speaks TLS 1.3 only, logs tls_error, and keeps serving', async () => {
  const srv = await server.get();
  const errsBefore = logOf(srv.data).match(/ev=tls_error/g)?.length ?? 0;
  await doorRefusesAllButTls13(srv.port);
  const { c, hello } = await serverHello(srv);
  expect(hello.t).toBe('hello');
  expect(hello.v).toBe(4);
  expect(c.sock.getProtocol()).toBe('TLSv1.3');
  c.close();
  await sleep(200);
  // §6: a failed TLS handshake (plaintext, old version, garbage) is logged as tls_error.
  const errs = logOf(srv.data).match(/ev=tls_error/g) ?? [];
  expect(errs.length - errsBefore).toBeGreaterThanOrEqual(3);
}, 20000);

test('TLS that never says hello, or never finishes, is dropped at the hello deadline', async () => {
  const srv = await startServer(['--hello-timeout-ms', '1000']);
  const idleTls = new Promise<{ ms: number; err?: any }>((resolve) => {
    const t0 = Date.now();
    const s = tls.connect({ host: srv.host, port: srv.port, rejectUnauthorized: false });
    let buf = Buffer.alloc(0);
    s.on('data', (d) => (buf = Buffer.concat([buf, d])));
    s.on('error', () => {});
    s.on('close', () => {
      const n = buf.length >= 4 ? buf.readUInt32BE(0) : 0;
      const err = n ? JSON.parse(buf.subarray(4, 4 + n).toString()) : undefined;
      resolve({ ms: Date.now() - t0, err });
    });
  });
  const [idle, silentTcp] = await Promise.all([idleTls, rawProbe(srv.port, null, 4000)]);
  expect(idle.err?.code).toBe('E_HELLO_REQUIRED');
  expect(idle.ms).toBeGreaterThanOrEqual(900);
  expect(idle.ms).toBeLessThan(2500);
  expect(silentTcp.closed, 'a TCP connection that never starts TLS stayed open').toBe(true);
  expect(silentTcp.ms).toBeLessThan(2500);
}, 20000);

test("the ready line's fingerprint is the SHA-256 of the key shown, kept across restarts", async () => {
  const srv = await startServer();
  const fp = srv.ready.match(/fingerprint=(\S+)/)![1]!;
  expect(fp).toMatch(/^[A-Za-z0-9_-]{43}$/);
  const s = tls.connect({ host: srv.host, port: srv.port, rejectUnauthorized: false });
  await new Promise((r) => s.once('secureConnect', r));
  const shown = s.getPeerX509Certificate()!;
  s.destroy();
  expect(fingerprintOf(shown)).toBe(fp);
  // Self-signed ECDSA P-256 by default, in the data folder at 0600.
  expect(shown.publicKey.asymmetricKeyType).toBe('ec');
  expect((shown.publicKey.asymmetricKeyDetails as any).namedCurve).toBe('prime256v1');
  for (const f of ['tls-key.pem', 'tls-cert.pem'])
    expect(fs.statSync(path.join(srv.data, f)).mode & 0o777).toBe(0o600);
  expect(
    fingerprintOf(new crypto.X509Certificate(fs.readFileSync(path.join(srv.data, 'tls-cert.pem')))),
  ).toBe(fp);
  // The key is the server's identity: the same data folder shows the same key again.
  await srv.kill();
  const again = await startServer([], { data: srv.data, port: srv.port });
  expect(again.ready.match(/fingerprint=(\S+)/)![1]).toBe(fp);
  expect(logOf(srv.data)).toMatch(new RegExp(`ev=listen .*fingerprint=${fp}`));
}, 30000);

test('first use is remembered; a changed key, pinned or known, gets not one byte and a 502', async () => {
  const srv = await startServer();
  const fp = srv.ready.match(/fingerprint=(\S+)/)![1]!;
  const alice = await startPeer(srv);
  const known = path.join(alice.data, 'known_servers');
  for (let i = 0; i < 50 && !fs.existsSync(known); i++) await sleep(100);
  expect(fs.readFileSync(known, 'utf8')).toMatch(
    new RegExp(`^${srv.host}:${srv.port} ${fp}$`, 'm'),
  );
  expect(fs.statSync(known).mode & 0o777).toBe(0o600);
  expect(logOf(alice.data)).toMatch(new RegExp(`ev=trust .*how=first-use`));
  expect(logOf(alice.data)).toMatch(new RegExp(`ev=trust .*fingerprint=${fp}`));

  // The server's address now answers with another key (a man in the middle, or a new server).
  await srv.kill();
  const imp = await impostor(srv.port);
  const pinned = await startPeer(srv, [], { pin: fp });
  for (let i = 0; i < 100 && imp.st.handshakes < 2; i++) await sleep(100);
  expect(imp.st.handshakes, 'the peers never came back to the address').toBeGreaterThanOrEqual(2);
  await sleep(500);
  for (const p of [alice, pinned]) {
    const r = await p.api('POST', '/api/register', { username: 'victim', password: 'secret-pw-1' });
    expect(r.status).toBe(502);
    expect(r.body.error.code).toBe('E_SERVER_KEY_MISMATCH');
    expect(r.body.error.message).toContain(imp.st.fingerprint);
    expect(r.body.error.message).toContain(fp);
  }
  // Neither peer sent the impostor anything: no hello, no password, no error frame.
  expect(imp.st.appBytes).toBe(0);
  expect(alice.stderr()).toContain(imp.st.fingerprint);
  // The refused key was not remembered over the known one.
  expect(fs.readFileSync(known, 'utf8')).not.toContain(imp.st.fingerprint);
  await imp.close();
}, 40000);

test('a damaged known_servers stops the peer from starting; comments and blank lines do not', async () => {
  const srv = await server.get();
  const fp = srv.ready.match(/fingerprint=(\S+)/)![1]!;
  const addr = `${srv.host}:${srv.port}`;
  const withKnown = (text: string) => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'hc-out-known-'));
    fs.writeFileSync(path.join(d, 'known_servers'), text, { mode: 0o600 });
    return d;
  };
  const bad = [
    `${addr} not-a-fingerprint\n`,
    `${addr}\n`,
    `${addr} ${fp} extra\n`,
    `${addr} ${fp.slice(0, 42)}\n`,
    `garbage line without an address\n`,
  ];
  const results = await Promise.allSettled(
    bad.map((t) => startPeer(srv, [], { data: withKnown(t) })),
  );
  results.forEach((r, i) =>
    expect(r.status, `peer started with known_servers ${JSON.stringify(bad[i])}`).toBe('rejected'),
  );
  // A well-formed file with comments and blank lines is read, and the known key is used.
  const ok = await startPeer(srv, [], { data: withKnown(`# servers\n\n${addr} ${fp}\n`) });
  const r = await ok.api('POST', '/api/register', { username: 'carol', password: 'secret-pw-1' });
  expect(r.status).toBe(201);
  expect(logOf(ok.data)).not.toMatch(/ev=trust/);
}, 40000);

test("a peer's P2P port speaks TLS 1.3 only and keeps serving", async () => {
  const srv = await server.get();
  const p = await startPeer(srv);
  await p.api('POST', '/api/register', { username: 'dora', password: 'secret-pw-1' });
  await p.api('POST', '/api/login', { username: 'dora', password: 'secret-pw-1' });
  await doorRefusesAllButTls13(p.p2pPort);
  // Still answering TLS 1.3; a handshake that never says hello is dropped within 5 s (§4.1).
  const t0 = Date.now();
  const s = tls.connect({ host: '127.0.0.1', port: p.p2pPort, rejectUnauthorized: false });
  s.on('error', () => {});
  s.resume();
  await new Promise((r) => s.once('secureConnect', r));
  expect(s.getProtocol()).toBe('TLSv1.3');
  await new Promise((r) => s.once('close', r));
  const ms = Date.now() - t0;
  expect(ms).toBeGreaterThan(4000);
  expect(ms).toBeLessThan(7000);
  expect(logOf(p.data)).toMatch(/ev=tls_error/);
}, 30000);
