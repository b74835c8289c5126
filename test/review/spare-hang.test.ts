/**
 * Review proof: a login while logged in opens a spare connection with no connect/hello timeout
 * (ServerLink never sets connectTimeoutMs), inside the session turn. A server address that
 * accepts the connection but never answers (frozen instance, half-dead balancer) hangs the
 * login for ever, and every later logout/login/resume queues behind it.
 */
import net from 'node:net';
import { expect, it } from 'vitest';
import { createTestnet, signIn, stablePort } from '../testnet.js';

it('a login whose spare connection is never answered settles (it hangs for ever)', async () => {
  const tn = await createTestnet();
  let frozen = false;
  const held: net.Socket[] = [];
  const proxy = net.createServer((c) => {
    if (frozen) return void held.push(c); // accepted, never answered
    const up = net.connect(tn.serverPort, tn.serverHost);
    c.pipe(up).pipe(c);
    c.on('error', () => up.destroy());
    up.on('error', () => c.destroy());
  });
  const port = await stablePort();
  await new Promise<void>((r) => proxy.listen(port, '127.0.0.1', r));
  try {
    const p = await tn.addPeer('p', { serverPort: port, serverFingerprint: tn.server.fingerprint });
    await p.call('POST', '/api/register', { username: 'bob', password: 'bob-pw' });
    await signIn(p, 'alice');
    frozen = true; // the live connection keeps working; new ones are never answered
    const t0 = Date.now();
    const timeout = (ms: number) => new Promise((r) => setTimeout(() => r('no answer'), ms));
    const login = p.call('POST', '/api/login', { username: 'bob', password: 'bob-pw' });
    const first = await Promise.race([login, timeout(20_000)]);
    // A logout asked now waits behind the login's turn.
    const logout = await Promise.race([p.call('POST', '/api/logout'), timeout(3_000)]);
    const me = (await p.call('GET', '/api/me')).body;
    console.log('after', Date.now() - t0, 'ms: login ->', first, '; logout ->', logout, '; me', me);
    expect(first).not.toBe('no answer');
    expect(logout).not.toBe('no answer');
  } finally {
    for (const s of held) s.destroy();
    proxy.close();
  }
}, 60_000);
