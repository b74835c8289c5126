/**
 * A peer's P2P port end to end (src/peer/p2p.ts, host-service.ts, live.ts): a real PeerNode that
 * hosts a channel, fed each input over a fresh TCP connection, as a member or viewer would. The
 * contract is the one every framed listener owes (fuzz/support/wire.ts): the process never
 * throws, what comes back decodes, error codes are in the catalogue and never E_INTERNAL, and
 * every request is answered while the link is open.
 *
 * Input: lines, as for the `server` target. Unless the input starts with its own hello, the
 * connection first runs the P2P handshake (PROTOCOL.md §4.1) as user `fuzzer` (a member of the
 * hosted channel), so the input reaches the operations; an input that starts with a hello fuzzes
 * the handshake itself (`$CERT` is fuzzer's certificate). `$CHANNEL` is the channel's id, `$POST`
 * a message freshly signed by `fuzzer` in it.
 */
import { channelBinding } from '../../src/shared/tls.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CentralServer } from '../../src/server/server.js';
import { PeerNode } from '../../src/peer/node.js';
import { encodeFrame } from '../../src/protocol/frame.js';
import { PROTOCOL_VERSION } from '../../src/protocol/common.js';
import { messageId } from '../../src/shared/message-id.js';
import {
  dialTranscript,
  newNonce,
  signTranscript,
  transcript,
} from '../../src/shared/handshake.js';
import { P2P_OPS } from '../../src/protocol/peer-link.js';
import { newSessionKeys, signMessage, type SessionKeys } from '../../src/shared/signing.js';
import type { FuzzTarget } from '../engine/target.js';
import { Client, encodeLines, exchange } from '../support/wire.js';

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src') + '/';
const ANSWER_MS = 8_000;

let dir = '';
let server: CentralServer | undefined;
let host: PeerNode | undefined;
let p2p = { ip: '', port: 0 };
const vars = { token: '', cert: '', channel: '', sessionId: '' };
let keys: SessionKeys | undefined;

async function setup(): Promise<void> {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hchat-fuzz-p2p-'));
  server = await CentralServer.start({
    host: '127.0.0.1',
    port: 0,
    httpPort: 0,
    dataDir: path.join(dir, 's'),
    loginMaxFailures: 1_000_000_000,
  });
  const [sHost, sPort] = server.tcpAddress.split(':');
  host = await PeerNode.start({
    serverHost: sHost!,
    serverPort: Number(sPort),
    serverFingerprint: server.fingerprint,
    host: '127.0.0.1',
    p2pPort: 0,
    udpPort: 0,
    dataDir: path.join(dir, 'host'),
    minBackoffMs: 20,
    maxBackoffMs: 200,
  });
  await host.register('host', 'host-pw');
  await host.login('host', 'host-pw');
  vars.channel = (await host.createChannel('fuzz', true)).id;
  const adv = host.p2p.advertised;
  p2p = { ip: adv.ip, port: adv.port };
  // The member: a raw client of the server, so that its token and key are the harness's own.
  const c = new Client(sHost!, Number(sPort));
  c.socket.write(encodeFrame({ t: 'hello', v: PROTOCOL_VERSION, role: 'peer' }));
  await c.call(1, 'register', { username: 'fuzzer', password: 'fuzzer-pw' });
  keys = newSessionKeys();
  const r = await c.call(2, 'login', {
    username: 'fuzzer',
    password: 'fuzzer-pw',
    publicKey: keys.publicKey,
  });
  vars.token = r.token as string;
  vars.cert = r.cert as string;
  vars.sessionId = r.sessionId as string;
  await c.call(3, 'channel_join', { channelId: vars.channel });
  c.socket.destroy();
}

async function teardown(): Promise<void> {
  await host?.close();
  await server?.close();
  fs.rmSync(dir, { recursive: true, force: true });
}

function signedPost(): string {
  const fields = { channelId: vars.channel, ts: Date.now(), lc: 0, text: `fuzz ${Math.random()}` };
  const m = { id: messageId({ ...fields, author: 'fuzzer' }), ...fields };
  return JSON.stringify({
    ...m,
    sig: signMessage({ ...m, author: 'fuzzer' }, keys!),
    cert: vars.cert,
  });
}

/** The P2P handshake as `fuzzer`: hello with its certificate, the host's hello, our auth. */
async function handshake(c: Client): Promise<void> {
  await c.ready;
  if (c.closed) return;
  const binding = channelBinding(c.socket);
  const nonce = newNonce();
  const dial = dialTranscript({
    peerNonce: nonce,
    peerSession: vars.sessionId,
    hostSession: host!.session!.sessionId,
    binding,
  });
  c.socket.write(
    encodeFrame({
      t: 'hello',
      v: PROTOCOL_VERSION,
      role: 'peer',
      cert: vars.cert,
      nonce,
      dial: signTranscript(keys!, dial),
    }),
  );
  await c.until(() => c.frames.some((f) => f.t === 'hello'), ANSWER_MS);
  const ack = c.frames.find((f) => f.t === 'hello');
  if (!ack) return;
  const hostSession = JSON.parse(
    Buffer.from(String(ack.cert).split('.')[0]!, 'base64url').toString(),
  ).sid as string;
  const parts = {
    peerNonce: nonce,
    hostNonce: String(ack.nonce),
    peerSession: vars.sessionId,
    hostSession,
    binding,
  };
  c.socket.write(encodeFrame({ t: 'auth', sig: signTranscript(keys!, transcript('peer', parts)) }));
}

async function run(data: Buffer): Promise<void> {
  const bytes = encodeLines(data, {
    TOKEN: vars.token,
    CERT: vars.cert,
    CHANNEL: vars.channel,
    POST: signedPost,
  });
  const ownHello = data.toString('latin1').trimStart().startsWith('{"t":"hello"');
  await exchange(
    p2p.ip,
    p2p.port,
    bytes,
    (op) => Object.hasOwn(P2P_OPS, op),
    ANSWER_MS,
    ownHello ? undefined : handshake,
  );
}

/** Inputs that start after the handshake (the harness runs it) begin with a harmless ping. */
const HELLO = '{"t":"ping"}';
const req = (id: number, op: string, body: unknown) =>
  JSON.stringify({ t: 'req', id, op, body }).replace('"$POST"', '$POST');

function seeds(): Buffer[] {
  const lines: string[][] = [
    [HELLO, req(1, 'history', { channelId: '$CHANNEL', limit: 50 })],
    [HELLO, req(1, 'sync', { channelId: '$CHANNEL', since: 0, limit: 10 })],
    [
      HELLO,
      req(1, 'post', { message: '$POST' }),
      req(2, 'history', { channelId: '$CHANNEL', limit: 5 }),
    ],
    [
      HELLO,
      req(1, 'subscribe', { channelIds: ['$CHANNEL'] }),
      req(2, 'post', { message: '$POST' }),
    ],
    [HELLO, req(1, 'stream_list', {}), req(2, 'watch', { streamId: '$CHANNEL', udpPort: 5000 })],
    [
      HELLO,
      req(1, 'unwatch', { streamId: '$CHANNEL' }),
      req(2, 'stalled', { streamId: '$CHANNEL' }),
    ],
    [HELLO, '{"t":"ev","ev":"message","body":{}}'],
    [
      `{"t":"hello","v":${PROTOCOL_VERSION},"role":"peer","cert":"$CERT","nonce":"${'A'.repeat(43)}","dial":"${'A'.repeat(86)}"}`,
    ],
    ['{"t":"hello","v":1,"role":"peer","token":"x.y"}'],
    [req(1, 'history', {})],
  ];
  return lines.map((l) => Buffer.from(l.join('\n')));
}

const target: FuzzTarget = {
  name: 'p2p',
  description: "a peer's P2P port fed frames over TCP: never throws, answers every request",
  cover: [SRC],
  json: true,
  maxLen: 4096,
  timeoutMs: 20_000,
  dictionary: [
    ...Object.keys(P2P_OPS),
    ...['hello', 'req', 'ping', 'ev', '$TOKEN', '$CHANNEL', '$POST', 'op', 'body', 't', 'id'],
    ...['channelId', 'channelIds', 'message', 'limit', 'since', 'before', 'streamId', 'udpPort'],
  ],
  seeds,
  setup,
  run,
  teardown,
};
export default target;
