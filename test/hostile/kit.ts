/**
 * The hostile-client kit: the other side of each boundary, written from docs/PROTOCOL.md rather
 * than from src/. It speaks frames over raw sockets: a server-side client (ServerLink without a
 * peer behind it), a malicious host (a P2P listener that runs the handshake with its own
 * certificate and then answers whatever it likes), and helpers to sign messages as a user.
 */
import crypto from 'node:crypto';
import type net from 'node:net';
import tls from 'node:tls';
import { channelBinding, selfSignedIdentity } from '../../src/shared/tls.js';
import { onTestFinished } from 'vitest';
import { FrameDecoder, encodeFrame } from '../../src/protocol/frame.js';
import { PROTOCOL_VERSION } from '../../src/protocol/common.js';
import { signMessage } from '../../src/shared/signing.js';
import { messageId, type ItemBody } from '../../src/shared/message-id.js';
import type { ItemKind } from '../../src/protocol/common.js';
import { v7 as uuidv7 } from 'uuid';
import type { ServerLink } from '../../src/peer/server-link.js';
import { rawSession, type RawSession, type TestPeer, type Testnet } from '../testnet.js';

/**
 * An item signed by `s` as its author, with its content-derived id (PROTOCOL.md §2): a message,
 * or with `kind` an edit, delete, reaction or channel change.
 */
export function sign(
  s: RawSession,
  m: { channelId: string; ts?: number; lc?: number; kind?: ItemKind; target?: string } & ItemBody,
  override: Partial<{ id: string; author: string }> = {},
) {
  const { ts, lc, ...rest } = m;
  const fields = { ...rest, ts: ts ?? Date.now(), lc: lc ?? 0 };
  const author = override.author ?? s.username;
  const id = override.id ?? messageId({ ...fields, author });
  const sig = signMessage({ ...fields, id, author }, s.keys);
  return { id, ...fields, sig, cert: s.cert };
}

/** What a hostile host does with each request after the handshake. */
export type HostileHandler = (
  op: string,
  body: any,
  reply: (body: unknown) => void,
  push: (ev: string, body: unknown) => void,
) => void;

/** A connection a hostile host accepted, with everything it received. */
export interface HostileConn {
  socket: tls.TLSSocket;
  /** Every frame the connecting peer sent, in order. */
  frames: Record<string, unknown>[];
  /** Every byte it sent, as text (to look for secrets). */
  raw: () => string;
  push(ev: string, body: unknown): void;
}

/**
 * A malicious host: listens on 127.0.0.1, completes the P2P handshake honestly with its own
 * session (PROTOCOL.md §4.1, so that members accept it), then answers requests with `handler`.
 */
export async function hostileHost(
  s: RawSession,
  handler: HostileHandler,
): Promise<{ port: number; conns: HostileConn[]; close(): void }> {
  const conns: HostileConn[] = [];
  const identity = selfSignedIdentity('hostile host');
  const server = tls.createServer({ key: identity.key, cert: identity.cert }, (socket) => {
    const binding = channelBinding(socket);
    const d = new FrameDecoder();
    const frames: Record<string, unknown>[] = [];
    const chunks: Buffer[] = [];
    const send = (f: object) => socket.write(encodeFrame(f));
    const conn: HostileConn = {
      socket,
      frames,
      raw: () => Buffer.concat(chunks).toString('latin1'),
      push: (ev, body) => send({ t: 'ev', ev, body }),
    };
    conns.push(conn);
    socket.on('error', () => undefined);
    socket.on('data', (b) => {
      chunks.push(b);
      let got: Record<string, unknown>[];
      try {
        got = d.push(b);
      } catch {
        socket.destroy();
        return;
      }
      for (const f of got) {
        frames.push(f);
        if (f.t === 'hello') {
          const nonce = crypto.randomBytes(32).toString('base64url');
          const peerSession = JSON.parse(
            Buffer.from(String(f.cert).split('.')[0]!, 'base64url').toString(),
          ).sid as string;
          const transcript = Buffer.from(
            JSON.stringify([
              'hchat/p2p/3',
              'host',
              f.nonce,
              nonce,
              peerSession,
              s.sessionId,
              binding.toString('base64url'),
            ]),
          );
          send({
            t: 'hello',
            v: PROTOCOL_VERSION,
            role: 'host',
            cert: s.cert,
            nonce,
            sig: crypto.sign(null, transcript, s.keys.privateKey).toString('base64url'),
            heartbeatMs: 2000,
            timeoutMs: 6000,
          });
        } else if (f.t === 'ping') send({ t: 'pong' });
        else if (f.t === 'req') {
          handler(String(f.op), f.body, (body) => send({ t: 'res', id: f.id, body }), conn.push);
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const close = () => {
    for (const c of conns) c.socket.destroy();
    server.close();
  };
  onTestFinished(close);
  return { port: (server.address() as net.AddressInfo).port, conns, close };
}

/** Announces a hostile host in the tracker: `s`'s entry at `port`, hosting `channelIds`. */
export async function announce(
  link: ServerLink,
  port: number,
  channelIds: string[],
): Promise<void> {
  await link.request('submit_info', {
    ip: '127.0.0.1',
    port,
    udpPort: port,
    status: 'online',
    hosts: channelIds,
  });
}

/** A default handler: empty pages, posts acknowledged, subscriptions granted. */
export function quietHost(overrides: Record<string, (body: any) => unknown> = {}): HostileHandler {
  let seq = 0;
  return (op, body, reply) => {
    if (overrides[op]) return reply(overrides[op]!(body));
    switch (op) {
      case 'subscribe':
        return reply({ channelIds: body.channelIds });
      case 'sync':
        return reply({ messages: [], lastSeq: 0 });
      case 'history':
        return reply({ messages: [], hasMore: false });
      case 'post':
        return reply({ id: body.message.id, seq: ++seq, duplicate: false });
      default:
        return reply({});
    }
  };
}

/**
 * mallory, a raw client with an account, owns a private channel that `member` (an honest peer,
 * logged in) joined: the usual stage for a hostile host or a hostile author.
 */
export async function mallorysChannel(
  net: Testnet,
  member: TestPeer,
  name = 'trap',
): Promise<{ raw: ServerLink; mallory: RawSession; ch: string }> {
  const raw = await net.rawLink();
  await raw.request('register', { username: 'mallory', password: 'mallory-pw' });
  const mallory = await rawSession(raw, { username: 'mallory', password: 'mallory-pw' });
  const ch = (await raw.request('channel_create', { id: uuidv7(), name, allowVisitors: false })).id;
  const joined = await member.call('POST', `/api/channels/${ch}/join`);
  if (joined.status !== 200) throw new Error(`join: ${JSON.stringify(joined.body)}`);
  return { raw, mallory, ch };
}
