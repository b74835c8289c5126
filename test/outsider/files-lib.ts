// Outsider helpers for files (docs/PROTOCOL.md §9), written from the document alone: manifests
// and file ids (§9.1), messages that carry file references (§2.1 body digest with `files`),
// grants (§9.3) read as server-signed claims (§2.1), and a hostile seeder: a P2P listener that
// completes the §4.1 handshake as its own user and then answers file operations as it likes.
import crypto from 'node:crypto';
import tls from 'node:tls';
import type net from 'node:net';
import { frame, certClaims, b64u } from './lib.js';
import { makeCert, bindingOf, hostHello } from './tls.js';

export const CHUNK = 262144;

export interface Image {
  width: number;
  height: number;
  preview?: string;
}
export interface Manifest {
  name: string;
  size: number;
  type: string;
  image?: Image;
  chunkBytes: number;
  chunks: string[];
}

const sha = (b: Buffer | string) => crypto.createHash('sha256').update(b).digest('base64url');

/** §9.1: the file's id, the SHA-256 of ["hchat/file/1", name, size, type, width, height, preview, chunkBytes, chunks]. */
export function fileIdOf(m: Manifest): string {
  return sha(
    Buffer.from(
      JSON.stringify([
        'hchat/file/1',
        m.name,
        m.size,
        m.type,
        m.image?.width ?? null,
        m.image?.height ?? null,
        m.image?.preview ?? null,
        m.chunkBytes,
        m.chunks,
      ]),
      'utf8',
    ),
  );
}

/** §9.1: cut `data` into 256 KiB chunks, hash each, and build the manifest. */
export function manifestOf(data: Buffer, name: string, type: string, image?: Image) {
  const parts: Buffer[] = [];
  for (let o = 0; o < data.length; o += CHUNK) parts.push(data.subarray(o, o + CHUNK));
  const manifest: Manifest = {
    name,
    size: data.length,
    type,
    ...(image ? { image } : {}),
    chunkBytes: CHUNK,
    chunks: parts.map((p) => sha(p)),
  };
  return { manifest, id: fileIdOf(manifest), parts };
}

/** §9.1: a message's reference, the manifest without its chunk list. */
export function refOf(m: Manifest, id = fileIdOf(m)) {
  return { id, name: m.name, size: m.size, type: m.type, ...(m.image ? { image: m.image } : {}) };
}

type Ref = ReturnType<typeof refOf>;

/** §2.1 body digest of a message with `files` (and maybe `text`). */
function bodyDigest(text: string | null, files: Ref[]) {
  return sha(
    Buffer.from(
      JSON.stringify([
        'hchat/body/1',
        text,
        null,
        null,
        null,
        null,
        files.map((f) => [
          f.id,
          f.name,
          f.size,
          f.type,
          f.image?.width ?? null,
          f.image?.height ?? null,
          f.image?.preview ?? null,
        ]),
      ]),
      'utf8',
    ),
  );
}

/** A `message` item carrying file references, id derived and signed as §2.1 says. */
export function signFilesMessage(
  me: { key: { privateKey: crypto.KeyObject }; cert: string; username: string },
  channelId: string,
  files: Ref[],
  text?: string,
  ts = Date.now(),
  item: { kind?: string; target?: string } = {},
) {
  const kind = item.kind ?? 'message';
  const target = item.target ?? null;
  const { id, sig } = signItem(me, channelId, ts, kind, target, bodyDigest(text ?? null, files));
  return {
    id,
    channelId,
    ts,
    lc: 0,
    ...(item.kind ? { kind: item.kind } : {}),
    ...(item.target ? { target: item.target } : {}),
    ...(text !== undefined ? { text } : {}),
    files,
    sig,
    cert: me.cert,
  };
}

/** A grant's claims (§9.3: base64url(JSON claims) "." base64url(signature)). */
export const grantClaims = (g: string) => certClaims(g);

/** A token whose claims are re-encoded with `patch`, the signature kept (a tampered grant). */
export function tamper(g: string, patch: Record<string, unknown>) {
  const [, sig] = g.split('.');
  const claims = { ...grantClaims(g), ...patch };
  return b64u(Buffer.from(JSON.stringify(claims))) + '.' + sig;
}

/** Checks a server-signed token with the server's key from its hello (`publicKey`, SPKI DER base64). */
export function verifiesWith(serverKey: string, token: string) {
  const [claims, sig] = token.split('.');
  const key = crypto.createPublicKey({
    key: Buffer.from(serverKey, 'base64'),
    format: 'der',
    type: 'spki',
  });
  return crypto.verify(null, Buffer.from(claims!, 'ascii'), key, Buffer.from(sig!, 'base64url'));
}

/** One connection to the hostile seeder, after the handshake. */
export interface SeederConn {
  sock: tls.TLSSocket;
  /** Sends a frame (anything: it is the seeder's choice). */
  send(obj: unknown): void;
  reply(id: number, body: unknown): void;
  replyError(id: number, code: string): void;
  /** The connecting member's user, from its certificate. */
  user: string;
}

export type SeederHandler = (op: string, body: any, id: number, conn: SeederConn) => void;

/**
 * A hostile seeder: a TLS listener on 127.0.0.1 that answers §4.1's handshake as `me` (so that
 * a member that dialled `me`'s tracker entry accepts it), then hands every request to `handler`.
 */
export async function hostileSeeder(
  me: { cert: string; sessionId: string; key: { privateKey: crypto.KeyObject } },
  handler: SeederHandler,
  /** Members merged into the seeder's hello (e.g. a huge timeoutMs); changeable between links. */
  hello: Record<string, unknown> = {},
) {
  const cred = makeCert();
  const ops: { op: string; body: any; user: string }[] = [];
  const socks = new Set<tls.TLSSocket>();
  const srv = tls.createServer({ key: cred.key, cert: cred.cert, minVersion: 'TLSv1.3' }, (s) => {
    socks.add(s);
    s.on('error', () => {});
    s.on('close', () => socks.delete(s));
    let buf = Buffer.alloc(0);
    let user = '';
    const conn: SeederConn = {
      sock: s,
      send: (o) => {
        if (!s.destroyed) s.write(frame(o));
      },
      reply: (id, body) => conn.send({ t: 'res', id, body }),
      replyError: (id, code) => conn.send({ t: 'res', id, error: { code, message: code } }),
      get user() {
        return user;
      },
    };
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 4) {
        const n = buf.readUInt32BE(0);
        if (buf.length < 4 + n) break;
        const f = JSON.parse(buf.subarray(4, 4 + n).toString('utf8'));
        buf = buf.subarray(4 + n);
        if (f.t === 'hello') {
          user = certClaims(f.cert).u;
          conn.send({ ...hostHello(me, f, b64u(crypto.randomBytes(32)), bindingOf(s)), ...hello });
        } else if (f.t === 'ping') conn.send({ t: 'pong' });
        else if (f.t === 'req') {
          ops.push({ op: f.op, body: f.body, user });
          handler(f.op, f.body, f.id, conn);
        }
      }
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  return {
    port: (srv.address() as net.AddressInfo).port,
    ops,
    hello,
    close: () => {
      for (const s of socks) s.destroy();
      srv.close();
    },
  };
}

/** A base64url SHA-256, as chunk hashes are written. */
export const sha256 = sha;

/** The length of every frame that arrives on `sock` (§1 framing), parsed alongside its reader. */
export function frameSizes(sock: tls.TLSSocket): number[] {
  const sizes: number[] = [];
  let buf = Buffer.alloc(0);
  sock.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 4) {
      const n = buf.readUInt32BE(0);
      if (buf.length < 4 + n) break;
      sizes.push(n);
      buf = buf.subarray(4 + n);
    }
  });
  return sizes;
}

/**
 * RFC 6266 Content-Disposition, read strictly: the type, then `; name=value` parameters whose
 * values are tokens or RFC 9110 quoted-strings (backslash escapes). Throws on anything else.
 */
export function parseDisposition(h: string) {
  let i = 0;
  const ws = () => {
    while (h[i] === ' ' || h[i] === '\t') i++;
  };
  const token = () => {
    const m = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+/.exec(h.slice(i));
    if (!m) throw new Error('token expected at ' + i + ' in ' + h);
    i += m[0].length;
    return m[0];
  };
  const type = token().toLowerCase();
  const params: [string, string][] = [];
  for (;;) {
    ws();
    if (i >= h.length) break;
    if (h[i] !== ';') throw new Error('; expected at ' + i + ' in ' + h);
    i++;
    ws();
    const k = token().toLowerCase();
    if (h[i] !== '=') throw new Error('= expected at ' + i + ' in ' + h);
    i++;
    let v = '';
    if (h[i] === '"') {
      i++;
      for (;;) {
        if (i >= h.length) throw new Error('unterminated quoted-string in ' + h);
        const c = h[i]!;
        if (c === '"') {
          i++;
          break;
        }
        if (c === '\\') {
          v += h[i + 1];
          i += 2;
        } else {
          v += c;
          i++;
        }
      }
    } else v = token();
    params.push([k, v]);
  }
  return { type, params };
}

/** The name a browser takes from a disposition: filename* (RFC 8187) first, else filename. */
export function dispositionName(params: [string, string][]) {
  const star = params.find(([k]) => k === 'filename*')?.[1];
  if (star) {
    const m = /^UTF-8''(.*)$/i.exec(star);
    if (!m) throw new Error('filename* not UTF-8: ' + star);
    return decodeURIComponent(m[1]!);
  }
  return params.find(([k]) => k === 'filename')?.[1];
}

/** A `channel` item deleting the channel (§2.2), signed by its owner as §2.1 says. */
export function signChannelDelete(
  me: { key: { privateKey: crypto.KeyObject }; cert: string; username: string },
  channelId: string,
  ts = Date.now(),
) {
  const digest = sha(
    Buffer.from(
      JSON.stringify(['hchat/body/1', null, null, null, null, [null, null, null, null, true]]),
    ),
  );
  const { id, sig } = signItem(me, channelId, ts, 'channel', null, digest);
  return {
    id,
    channelId,
    ts,
    lc: 0,
    kind: 'channel',
    change: { deleted: true },
    sig,
    cert: me.cert,
  };
}

/** A `delete` item taking `target` away (§2.1: a delete has no body), signed by its author. */
export function signMessageDelete(
  me: { key: { privateKey: crypto.KeyObject }; cert: string; username: string },
  channelId: string,
  target: string,
  ts = Date.now(),
) {
  const digest = sha(Buffer.from(JSON.stringify(['hchat/body/1', null, null, null, null, null])));
  const { id, sig } = signItem(me, channelId, ts, 'delete', target, digest);
  return { id, channelId, ts, lc: 0, kind: 'delete', target, sig, cert: me.cert };
}

/** §2.1: an item's id (UUIDv8 from `hchat/item-id/2`) and its author's signature (lc 0). */
function signItem(
  me: { key: { privateKey: crypto.KeyObject }; username: string },
  channelId: string,
  ts: number,
  kind: string,
  target: string | null,
  digest: string,
) {
  const author = me.username.toLowerCase();
  const h = crypto
    .createHash('sha256')
    .update(JSON.stringify(['hchat/item-id/2', channelId, author, ts, 0, kind, target, digest]))
    .digest();
  const b = Buffer.alloc(16);
  b.writeUIntBE(ts, 0, 6);
  b[6] = 0x80 | (h[0]! & 0x0f);
  b[7] = h[1]!;
  b[8] = 0x80 | (h[2]! & 0x3f);
  h.copy(b, 9, 3, 10);
  const x = b.toString('hex');
  const id = `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
  const sig = crypto
    .sign(
      null,
      Buffer.from(
        JSON.stringify(['hchat/item/2', id, channelId, author, ts, 0, kind, target, digest]),
      ),
      me.key.privateKey,
    )
    .toString('base64url');
  return { id, sig };
}
