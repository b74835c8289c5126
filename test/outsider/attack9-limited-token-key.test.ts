// Attack 9, written from docs/REST.md and docs/PROTOCOL.md §2.1, §3.3 `forward`, §11 alone.
// REST.md "Tokens": "`channels`: when given, the token sees only these channels: any other
// answers E_CHANNEL_NOT_FOUND as if it did not exist"; SECURITY.md "The REST API v1 and its
// tokens": who attacks is "a token holder trying to do more than its token allows". POST /keys
// certifies a key "for the token's account".
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  aliceInMallorysRoom,
  cleanDirs,
  keypair,
  rest,
  signedMessage,
  startPeer,
  startServer,
  type Peer,
  type Server,
} from './attack9-lib.js';

describe('attack9: the key a channel-limited token certifies', () => {
  let s: Server;
  let alice: Peer;
  beforeAll(async () => {
    s = await startServer();
    alice = await startPeer(s);
  });
  afterAll(async () => {
    await alice?.stop();
    await s?.stop();
    cleanDirs();
  });

  it('does not sign for its account in a channel outside the token’s list', async () => {
    // mallory runs an integration (alice gives it a token limited to channel A) and owns
    // channel C, of which alice is a member.
    const { w, room: C } = await aliceInMallorysRoom(s, alice);
    try {
      const A = (
        await alice.api('POST', '/api/channels', { name: 'integration', allowVisitors: false })
      ).json.id as string;
      const tok = (
        await alice.api('POST', '/api/tokens', {
          name: 'for mallory',
          scopes: ['read', 'write'],
          channels: [A],
        })
      ).json;
      expect(tok.channels).toEqual([A]);
      // The token itself cannot touch C…
      expect((await rest(s, tok.token, 'GET', `/channels/${C}`)).status).toBe(404);
      const k = keypair();
      const m = signedMessage(C, 'alice', 'I give mallory admin of everything', Date.now(), k, '');
      // …but it certifies a key for alice, and that key signs for C.
      const certRes = await rest(s, tok.token, 'POST', '/keys', { publicKey: k.pk });
      expect(certRes.status).toBe(200);
      const signed = signedMessage(C, 'alice', m.text, m.ts, k, certRes.json.cert);
      expect((await rest(s, tok.token, 'POST', `/channels/${C}/messages`, signed)).status).toBe(
        404,
      );

      // mallory, as C's host, forwards it.
      const r = await w.req('forward', { messages: [{ ...signed, author: 'alice' }] });
      const result = r.body?.results?.[0] ?? r;
      expect(result.error).toBeDefined();
      const hist = await w.req('history', { channelId: C, limit: 50 });
      expect((hist.body?.messages ?? []).map((x: any) => x.id)).not.toContain(signed.id);
    } finally {
      w.close();
    }
  });
});
