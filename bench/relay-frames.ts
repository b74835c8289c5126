/**
 * What the Node relay's publishers send (bench/relay.ts forwards the bytes unchanged): the push
 * frame Hybrid Chat's server sends for a stored message (`ev` `message`, server/channel-service.ts
 * deliverMessage), signed by a publisher whose key certificate a made-up server key signed, so
 * that the relay's members parse and check exactly what Hybrid Chat's members do.
 */
import crypto from 'node:crypto';
import { randomUUID } from 'node:crypto';
import { encodeFrame } from '../src/protocol/frame.js';
import { messageId } from '../src/shared/message-id.js';
import { newSessionKeys, signMessage, type SessionKeys } from '../src/shared/signing.js';
import { signClaims } from '../src/shared/tokens.js';

/** Makes push frames for `channelId`, one publisher each. */
export class PushFrames {
  /** The made-up server's key (SPKI, base64), for members that check signatures. */
  readonly serverKey: string;
  private readonly authors: Array<{ username: string; keys: SessionKeys; cert: string }>;

  constructor(
    private readonly channelId: string,
    publishers: number,
  ) {
    const server = crypto.generateKeyPairSync('ed25519');
    this.serverKey = server.publicKey.export({ format: 'der', type: 'spki' }).toString('base64');
    const iat = Date.now();
    this.authors = Array.from({ length: publishers }, (_, k) => {
      const username = `publisher${k}`;
      const keys = newSessionKeys();
      // The claims the server's certificates carry (server/sessions.ts certify).
      const cert = signClaims(
        {
          typ: 'key',
          sid: randomUUID(),
          u: username,
          r: 'user',
          pk: keys.publicKey,
          iat,
          exp: iat + 24 * 3600_000,
        },
        server.privateKey,
      );
      return { username, keys, cert };
    });
  }

  /** Publisher k's message number `seq`, with `text`, as the server would push it. */
  frame(k: number, seq: number, text: string): Buffer {
    const { username, keys, cert } = this.authors[k]!;
    const content = { channelId: this.channelId, ts: Date.now(), lc: seq & 0xffff, text };
    const fields = { id: messageId({ ...content, author: username }), ...content };
    const sig = signMessage({ ...fields, author: username }, keys);
    const message = { ...fields, sig, cert, author: username, seq };
    return encodeFrame({ t: 'ev', ev: 'message', body: { channelId: this.channelId, message } });
  }
}
