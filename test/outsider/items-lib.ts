// Signed items of a channel's log (PROTOCOL.md §2.1, §2.2), written from the document alone:
// body digest (`hchat/body/1`), item id (`hchat/item-id/2`), signature (`hchat/item/2`).
// Shared by the outsider tests (rich-items, compact).
import crypto from 'node:crypto';
import { certClaims, idLayout } from './lib.js';

export type Change = {
  name?: string;
  topic?: string;
  allowVisitors?: boolean;
  remove?: string;
  deleted?: true;
};
export interface Body {
  text?: string;
  replyTo?: string;
  mentions?: string[];
  emoji?: string;
  change?: Change;
}
export type Kind = 'message' | 'edit' | 'delete' | 'react' | 'unreact' | 'channel';

const nul = <T>(x: T | undefined) => (x === undefined ? null : x);

/** §2.1 Body digest. */
export function bodyDigest(b: Body): string {
  const change = b.change
    ? [
        nul(b.change.name),
        nul(b.change.topic),
        nul(b.change.allowVisitors),
        nul(b.change.remove),
        nul(b.change.deleted),
      ]
    : null;
  const arr = ['hchat/body/1', nul(b.text), nul(b.replyTo), nul(b.mentions), nul(b.emoji), change];
  return crypto.createHash('sha256').update(JSON.stringify(arr), 'utf8').digest('base64url');
}

/** §2.1 Message ids: UUIDv8 from `hchat/item-id/2`. */
export function itemId(
  channelId: string,
  author: string,
  ts: number,
  lc: number,
  kind: Kind,
  target: string | null,
  digest: string,
): string {
  const h = crypto
    .createHash('sha256')
    .update(
      JSON.stringify([
        'hchat/item-id/2',
        channelId,
        author.toLowerCase(),
        ts,
        lc,
        kind,
        target,
        digest,
      ]),
      'utf8',
    )
    .digest();
  return idLayout(ts, h);
}

export const sigInput = (
  id: string,
  channelId: string,
  author: string,
  ts: number,
  lc: number,
  kind: Kind,
  target: string | null,
  digest: string,
) =>
  Buffer.from(
    JSON.stringify([
      'hchat/item/2',
      id,
      channelId,
      author.toLowerCase(),
      ts,
      lc,
      kind,
      target,
      digest,
    ]),
    'utf8',
  );

/** Verify any item (stored or tombstone) with our own reading of §2.1. */
export function verifyItem(m: any, serverPublicKey?: crypto.KeyObject): string | true {
  const kind: Kind = m.kind ?? 'message';
  // A tombstone carries `digest` in place of its body; any other item has its body (maybe empty).
  const hasBody = ['text', 'replyTo', 'mentions', 'emoji', 'change'].some((k) => k in m);
  const digest: string = hasBody || m.digest === undefined ? bodyDigest(m) : m.digest;
  if (m.digest !== undefined && m.digest !== digest) return 'digest mismatch';
  const target = m.target ?? null;
  const id = itemId(m.channelId, m.author, m.ts, m.lc, kind, target, digest);
  if (id !== m.id) return 'id not derived';
  const claims = certClaims(m.cert);
  if (serverPublicKey) {
    const [a, s] = m.cert.split('.');
    if (!crypto.verify(null, Buffer.from(a, 'ascii'), serverPublicKey, Buffer.from(s, 'base64url')))
      return 'cert signature';
  }
  if (claims.typ !== 'key' || claims.r !== 'user') return 'cert kind';
  if (String(claims.u).toLowerCase() !== String(m.author).toLowerCase()) return 'cert user';
  const pk = crypto.createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: claims.pk },
    format: 'jwk',
  });
  const ok = crypto.verify(
    null,
    sigInput(m.id, m.channelId, m.author, m.ts, m.lc, kind, target, digest),
    pk,
    Buffer.from(m.sig, 'base64url'),
  );
  return ok || 'signature';
}

export interface Signer {
  username: string;
  cert: string;
  key: { privateKey: crypto.KeyObject };
}
let clock = Date.now();
/** An HLC-ish reading: strictly increasing for every author here. */
export const tick = () => {
  clock = Math.max(clock + 1, Date.now());
  return { ts: clock, lc: 0 };
};

export interface MakeOpts {
  kind?: Kind;
  target?: string;
  body?: Body;
  /** members sent on the wire beyond what the body makes (schema attacks) */
  extra?: Record<string, unknown>;
  /** sign as if the author were this name (the id and signature name it) */
  asAuthor?: string;
}

/** Build and sign an item as `who`, exactly as §2.1 says. */
export function makeItem(who: Signer, channelId: string, o: MakeOpts = {}) {
  const kind = o.kind ?? 'message';
  const body = o.body ?? {};
  const { ts, lc } = tick();
  const digest = bodyDigest(body);
  const author = o.asAuthor ?? who.username;
  const target = o.target ?? null;
  const id = itemId(channelId, author, ts, lc, kind, target, digest);
  const sig = crypto
    .sign(null, sigInput(id, channelId, author, ts, lc, kind, target, digest), who.key.privateKey)
    .toString('base64url');
  const msg: Record<string, unknown> = { id, channelId, ts, lc };
  if (kind !== 'message') msg.kind = kind;
  if (o.target) msg.target = o.target;
  for (const k of ['text', 'replyTo', 'mentions', 'emoji', 'change'] as const)
    if (body[k] !== undefined) msg[k] = body[k];
  Object.assign(msg, o.extra ?? {});
  msg.sig = sig;
  msg.cert = who.cert;
  return msg as any;
}
