// Attack 9, written from docs/REST.md "Signing: bots write like everyone" and docs/PROTOCOL.md
// §2.1, §3.3 `forward`, §11 alone. REST.md said: "once the token is revoked, the server refuses
// what the key signs after the revocation, E_BAD_SIGNATURE, on every instance" (it now says:
// anything the key signed that reaches it from then on, whatever time the item claims).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  aliceInMallorysRoom,
  cleanDirs,
  keypair,
  rest,
  signedMessage,
  sleep,
  startPeer,
  startServer,
  type Peer,
  type Server,
} from './attack9-lib.js';

describe('attack9: a revoked API token’s certified key', () => {
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

  it('cannot put words in its account’s mouth after the revocation (an item signed after it, stamped a few seconds before, forwarded by a host)', async () => {
    // mallory, on a raw link, owns (hosts) a channel alice joins.
    const { w, room: channelId } = await aliceInMallorysRoom(s, alice);
    try {
      // alice's token leaks to mallory, who certifies a key of her own with it (POST /keys).
      const tok = (
        await alice.api('POST', '/api/tokens', { name: 'ci', scopes: ['read', 'write'] })
      ).json;
      const k = keypair();
      const certRes = await rest(s, tok.token, 'POST', '/keys', { publicKey: k.pk });
      expect(certRes.status).toBe(200);
      const cert = certRes.json.cert as string;

      // alice notices and revokes it.
      const revokedAt = Date.now();
      expect((await alice.api('DELETE', `/api/tokens/${tok.id}`)).status).toBe(204);
      expect((await rest(s, tok.token, 'GET', '/users/@me')).status).toBe(401);
      await sleep(200);

      // After the revocation, mallory signs as alice with that key and forwards it as the host.
      // The item is made and signed now, after the revocation; only its clock reading is set a
      // few seconds back (PROTOCOL.md §2.1: "A message stamped in the past is accepted").
      const m = signedMessage(
        channelId,
        'alice',
        'I, alice, resign (signed after my token was revoked)',
        revokedAt - 5_000,
        k,
        cert,
      );
      const r = await w.req('forward', { messages: [{ ...m, author: 'alice' }] });
      const result = r.body?.results?.[0] ?? r.error;
      // The safe behaviour REST.md promises: E_BAD_SIGNATURE, nothing stored.
      expect(result?.error?.code ?? result?.code).toBe('E_BAD_SIGNATURE');
      const hist = await w.req('history', { channelId, limit: 50 });
      expect((hist.body?.messages ?? []).map((x: any) => x.id)).not.toContain(m.id);
    } finally {
      w.close();
    }
  });
});
