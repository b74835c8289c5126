// A stranger at a host's P2P port (docs/PROTOCOL.md §1, §4.1; SPEC §7: "Limits everywhere an
// attacker could spend others' resources: … connections before authentication"): the server
// caps connections without a session per address group (§3.2); a host's P2P port is as open to
// the network. Real `bin/hchat` processes on 127.0.0.1; the member comes from another /24 of
// the loopback (127.0.1.1), as a member elsewhere on the network would.
import crypto from 'node:crypto';
import tls from 'node:tls';
import { afterAll, expect, test } from 'vitest';
import {
  Raw,
  b64u,
  certClaims,
  dialSig,
  dialTarget,
  killAll,
  registerLogin,
  sleep,
  startPeer,
  startServer,
  type DialTarget,
} from './lib.js';

afterAll(killAll);

/** The §4.1 handshake as `me`, from `localAddress`. */
async function dial(to: DialTarget, me: { cert: string; key: any }, localAddress: string) {
  const { port, sessionId } = await dialTarget(to);
  const c = new Raw('127.0.0.1', port, { localAddress });
  await c.connected();
  const nonce = b64u(crypto.randomBytes(32));
  const binding = c.sock
    .exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0))
    .toString('base64url');
  const dial = dialSig(me.key.privateKey, nonce, certClaims(me.cert).sid, sessionId, binding);
  c.send({ t: 'hello', v: 4, role: 'peer', cert: me.cert, nonce, dial });
  const h = await c.nextFrame(8000);
  if (h.t !== 'hello') return { c, hello: h };
  const t = [
    'hchat/p2p/3',
    'peer',
    nonce,
    h.nonce,
    certClaims(me.cert).sid,
    certClaims(h.cert).sid,
    binding,
  ];
  c.send({
    t: 'auth',
    sig: b64u(crypto.sign(null, Buffer.from(JSON.stringify(t)), me.key.privateKey)),
  });
  return { c, hello: h };
}

test('one address group holds a bounded number of P2P connections before their handshake; a member from elsewhere still gets in', async () => {
  const srv = await startServer(['--max-registrations-per-address', '10000']);
  const host = await startPeer(srv);
  await host.api('POST', '/api/register', { username: 'hostess', password: 'pw-hostess' });
  await host.api('POST', '/api/login', { username: 'hostess', password: 'pw-hostess' });
  const ch = (await host.api('POST', '/api/channels', { name: 'club', allowVisitors: false })).body
    .id as string;
  await host.api('POST', `/api/channels/${ch}/messages`, { text: 'welcome' });
  const member = await registerLogin(srv, 'member');
  await member.c.req('channel_join', { channelId: ch });
  await sleep(500);

  // A stranger opens 400 TLS connections and says nothing (each may wait 5 s for its hello).
  const held: tls.TLSSocket[] = [];
  let open = 0;
  await Promise.all(
    Array.from({ length: 400 }, async () => {
      const s = tls.connect({ host: '127.0.0.1', port: host.p2pPort, rejectUnauthorized: false });
      s.on('error', () => {});
      s.on('data', () => {}); // reads what comes, the close included
      held.push(s);
      await new Promise<void>((r) => {
        s.once('secureConnect', () => (open++, r()));
        s.once('close', () => r());
      });
      s.once('close', () => open--);
    }),
  );
  await sleep(1000);
  const stillOpen = held.filter((s) => !s.destroyed && s.readyState === 'open').length;
  // Meanwhile a member from another address group completes its handshake and reads.
  const { c, hello } = await dial(host, member, '127.0.1.1');
  const page =
    hello.t === 'hello' ? await c.req('history', { channelId: ch, limit: 10 }, 5000) : hello;
  c.close();
  for (const s of held) s.destroy();
  expect({
    stillOpen: stillOpen <= 64,
    member: page.body?.messages?.map((m: any) => m.text),
  }).toEqual({ stillOpen: true, member: ['welcome'] });
}, 60_000);
