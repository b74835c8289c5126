/**
 * Attack 7: a REST token limited to some channels (docs/REST.md "channels: when given, the token
 * sees only these channels") has its key certified with `POST /keys`. The certificate names the
 * token's account (PROTOCOL.md §2.1 key certificate), and a peer's P2P port takes any key
 * certificate of a user (§4.1): the token's holder must not read or write, through the account's
 * hosts, a channel its token does not open.
 */
import { describe, expect, it } from 'vitest';
import { createTestnet, signIn, waitFor } from '../testnet.js';
import { certClaims, newKey, p2pConnect, signMessage } from './lib.js';

describe('attack7: a channel-limited token’s key opens no other channel over P2P', () => {
  it('its certificate reads and posts nothing of a channel outside the token at the account’s own host', async () => {
    const net = await createTestnet({ peers: 1 });
    const [alice] = net.peers as [any];
    await signIn(alice, 'alice');
    const open = (await alice.call('POST', '/api/channels', { name: 'open', allowVisitors: false }))
      .body.id as string;
    const secret = (
      await alice.call('POST', '/api/channels', { name: 'secret', allowVisitors: false })
    ).body.id as string;
    await alice.call('POST', `/api/channels/${secret}/messages`, { text: 'the secret plan' });
    const t = await alice.call('POST', '/api/tokens', {
      name: 'integration',
      scopes: ['read', 'write'],
      channels: [open],
    });
    expect(t.status).toBe(201);
    const rest = async (method: string, route: string, body?: unknown) => {
      const r = await fetch(new URL(`/api/v1${route}`, net.server.httpUrl), {
        method,
        headers: {
          authorization: `Bearer ${t.body.token}`,
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
        body: body ? JSON.stringify(body) : undefined,
      });
      return { status: r.status, body: await r.json() };
    };
    // The token itself is kept to its channel.
    expect((await rest('GET', `/channels/${secret}/messages`)).status).toBe(404);
    const key = newKey();
    const certified = await rest('POST', '/keys', { publicKey: key.pk });
    expect(certified.status).toBe(200);
    const cert = certified.body.cert as string;
    expect(certClaims(cert)).toMatchObject({ typ: 'key', u: 'alice', r: 'user' });
    // The account's own entry is visible to its token: the host's P2P port.
    const entry = await waitFor(
      async () => {
        const p = await rest('GET', '/presence');
        return (p.body.entries ?? p.body.peers ?? []).find((e: any) => e.username === 'alice');
      },
      10000,
      'alice in presence',
    );
    // Its session is the token (sid = the token's id), which no host takes for a live session:
    // refused at the handshake, or refused at every request past it.
    const { c, ok } = await p2pConnect(entry, { cert, key });
    if (ok) {
      const h = await c.req('history', { channelId: secret, limit: 50 });
      expect(JSON.stringify(h)).not.toContain('the secret plan');
      expect(h.error, 'history of a channel outside the token').toBeDefined();
      const post = await c.req('post', {
        message: signMessage(
          { privateKey: key.privateKey },
          cert,
          secret,
          'alice',
          'from the token',
        ),
      });
      expect(post.error, 'a post to a channel outside the token').toBeDefined();
    }
    c.close();
    const page = await alice.call('GET', `/api/channels/${secret}/messages`);
    expect(page.body.messages.map((m: any) => m.text)).toEqual(['the secret plan']);
  }, 60000);
});
