/**
 * What the Node relay's publishers send (bench/relay.ts forwards the bytes unchanged): the push
 * frames Hybrid Chat's server sends a compact link for a stored message (PROTOCOL.md §3.11,
 * server/channel-service.ts push): `m` frames encoded by the same shared/compact-refs.ts, signed
 * by a publisher whose key certificate a made-up server key signed, so that the relay's members
 * parse and check exactly what Hybrid Chat's members do. The `ref` frames of the publishers'
 * certificates and the channel are given to the members as they start.
 */
import crypto from 'node:crypto';
import { randomUUID } from 'node:crypto';
import { encodeFrame } from '../src/protocol/frame.js';
import { messageId } from '../src/shared/message-id.js';
import { newSessionKeys, signMessage, type SessionKeys } from '../src/shared/signing.js';
import { signClaims } from '../src/shared/tokens.js';
import { RefRegistry, compactBatch } from '../src/shared/compact-refs.js';

/** Makes push frames for `channelId`, one publisher each. */
export class PushFrames {
  /** The made-up server's key (SPKI, base64), for members that check signatures. */
  readonly serverKey: string;
  private readonly authors: Array<{ username: string; keys: SessionKeys; cert: string }>;
  private readonly refs = new RefRegistry();

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
    return encodeFrame({
      t: 'm',
      ...compactBatch(this.refs, [this.message(k, seq, text)]).items[0],
    });
  }

  /** Publisher k's message number `seq`, stored and signed. */
  message(k: number, seq: number, text: string) {
    const { username, keys, cert } = this.authors[k]!;
    const content = { channelId: this.channelId, ts: Date.now(), lc: seq & 0xffff, text };
    const fields = { id: messageId({ ...content, author: username }), ...content };
    const sig = signMessage({ ...fields, author: username }, keys);
    return { ...fields, sig, cert, author: username, seq };
  }

  /**
   * The `ref` frames that define the channel and publisher k's certificate, which a compact link
   * gets before k's first message (the relay's members are given them when they start).
   */
  prelude(k: number): Buffer[] {
    const batch = compactBatch(this.refs, [this.message(k, 1, 'x')]);
    return [...batch.channels, ...batch.certs].map((r) => r.def);
  }
}
