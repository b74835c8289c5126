/**
 * The central server's frame handler end to end: a real CentralServer in this process, fed each
 * input over a fresh TCP connection on 127.0.0.1. Contract: no input makes the process throw
 * (uncaught exception or unhandled rejection, caught by the engine); every frame the server sends
 * decodes and is an envelope frame; every error it names is in the catalogue and none is
 * E_INTERNAL (a bug caught by the last-resort handler); and while the connection stays open,
 * every well-formed request gets its answer.
 *
 * Input: lines. A line that parses as JSON is sent as one frame; any other line is sent as raw
 * bytes (`#hex:` then hex digits for binary). Before parsing, `$TOKEN` and `$CERT` become the
 * token and certificate of a session of user `fuzzer` made at setup, `$KEY` its public key,
 * `$CHANNEL` the id of a channel it owns, and `$POST` a message freshly signed by it in that
 * channel. A ping frame follows the input; its pong says the server read everything.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { v7 as uuidv7 } from 'uuid';
import { messageId } from '../../src/shared/message-id.js';
import { CentralServer } from '../../src/server/server.js';
import { PROTOCOL_VERSION } from '../../src/protocol/common.js';
import { encodeFrame } from '../../src/protocol/frame.js';
import { OPS, isOpName } from '../../src/protocol/server-link.js';
import { newSessionKeys, signMessage, type SessionKeys } from '../../src/shared/signing.js';
import type { FuzzTarget } from '../engine/target.js';
import { Client, encodeLines, exchange } from '../support/wire.js';

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src') + '/';

const USER = 'fuzzer';
const PASSWORD = 'fuzzer-pw';
/** How long the server may take to answer what it read (scrypt for register/login is slow). */
const ANSWER_MS = 8_000;

let dir = '';
let server: CentralServer | undefined;
let host = '';
let port = 0;
const vars = { token: '', cert: '', key: '', channel: '', sessionId: '' };
let keys: SessionKeys | undefined;

/** Logs in as the fuzzer's user and keeps that session's token and certificate. */
async function login(): Promise<void> {
  const c = new Client(host, port);
  c.socket.write(encodeFrame({ t: 'hello', v: PROTOCOL_VERSION, role: 'peer' }));
  keys = newSessionKeys();
  const r = await c.call(1, 'login', {
    username: USER,
    password: PASSWORD,
    publicKey: keys.publicKey,
  });
  vars.token = r.token as string;
  vars.cert = r.cert as string;
  vars.key = keys.publicKey;
  vars.sessionId = r.sessionId as string;
  c.socket.destroy();
}

async function setup(): Promise<void> {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hchat-fuzz-server-'));
  server = await CentralServer.start({
    host: '127.0.0.1',
    port: 0,
    httpPort: 0,
    dataDir: dir,
    heartbeatMs: 60_000,
    timeoutMs: 120_000,
    // Inputs fail logins all the time; the harness's own logins must not be locked out by them.
    loginMaxFailures: 1_000_000_000,
  });
  [host, port] = [server.tcpAddress.split(':')[0]!, Number(server.tcpAddress.split(':')[1])];
  const c = new Client(host, port);
  c.socket.write(encodeFrame({ t: 'hello', v: PROTOCOL_VERSION, role: 'peer' }));
  await c.call(1, 'register', { username: USER, password: PASSWORD });
  c.socket.destroy();
  await login();
  const c2 = new Client(host, port);
  c2.socket.write(encodeFrame({ t: 'hello', v: PROTOCOL_VERSION, role: 'peer' }));
  await c2.call(1, 'resume', { token: vars.token });
  vars.channel = uuidv7();
  await c2.call(2, 'channel_create', { id: vars.channel, name: 'fuzz', allowVisitors: true });
  c2.socket.destroy();
}

async function teardown(): Promise<void> {
  await server?.close();
  fs.rmSync(dir, { recursive: true, force: true });
}

function signedPost(): string {
  const fields = { channelId: vars.channel, ts: Date.now(), lc: 0, text: `fuzz ${Math.random()}` };
  const m = { id: messageId({ ...fields, author: USER }), ...fields };
  return JSON.stringify({ ...m, sig: signMessage({ ...m, author: USER }, keys!), cert: vars.cert });
}

async function run(data: Buffer): Promise<void> {
  const bytes = encodeLines(data, {
    TOKEN: vars.token,
    CERT: vars.cert,
    KEY: vars.key,
    CHANNEL: vars.channel,
    POST: signedPost,
  });
  try {
    await exchange(host, port, bytes, isOpName, ANSWER_MS);
  } finally {
    // A logout revokes the shared session: make a new one for the next inputs.
    if ((await server!.store.getSession(vars.sessionId))?.revoked) await login();
  }
}

const HELLO = `{"t":"hello","v":${PROTOCOL_VERSION},"role":"peer"}`;
const req = (id: number, op: string, body: unknown) => JSON.stringify({ t: 'req', id, op, body });
const RESUME = req(1, 'resume', { token: '$TOKEN' });

function seeds(): Buffer[] {
  const lines: string[][] = [
    [HELLO, req(1, 'register', { username: 'someone', password: 'secret-pw' })],
    [HELLO, req(1, 'login', { username: USER, password: 'wrong-pw', publicKey: '$KEY' })],
    [HELLO, req(1, 'visitor', { name: 'guest', publicKey: '$KEY' }), req(2, 'directory', {})],
    [HELLO, RESUME, req(2, 'post', { message: '$POST' }).replace('"$POST"', '$POST')],
    [HELLO, RESUME, req(2, 'forward', { messages: ['$POST'] }).replace('"$POST"', '$POST')],
    [
      HELLO,
      RESUME,
      req(2, 'history', { channelId: '$CHANNEL', limit: 50 }),
      req(3, 'sync', { channelId: '$CHANNEL', since: 0, limit: 10 }),
    ],
    [
      HELLO,
      RESUME,
      req(2, 'subscribe', { channelIds: ['$CHANNEL'] }),
      req(3, 'members', { channelId: '$CHANNEL' }),
    ],
    [
      HELLO,
      RESUME,
      req(2, 'submit_info', {
        ip: '127.0.0.1',
        port: 4000,
        udpPort: 4001,
        status: 'online',
        hosts: ['$CHANNEL'],
        live: [{ streamId: '$CHANNEL', channelId: '$CHANNEL' }],
      }),
      req(3, 'get_list', {}),
      req(4, 'set_status', { status: 'invisible' }),
    ],
    [
      HELLO,
      RESUME,
      req(2, 'channel_create', {
        id: '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b',
        name: 'x',
        allowVisitors: false,
      }),
      req(3, 'channel_join', { channelId: '$CHANNEL' }),
      req(4, 'my_channels', {}),
    ],
    [HELLO, RESUME, req(2, 'logout', {}), req(3, 'get_list', {})],
    [HELLO, '{"t":"pong"}', '{"t":"ev","ev":"x","body":{}}'],
    ['{"t":"req","id":1,"op":"login","body":{}}'],
    [`{"t":"hello","v":${PROTOCOL_VERSION},"role":"peer"}`],
    [HELLO, '#hex:0000000000'],
    [HELLO, '#hex:ffffffff'],
  ];
  return lines.map((l) => Buffer.from(l.join('\n')));
}

const target: FuzzTarget = {
  name: 'server',
  description:
    'a real CentralServer fed frames over TCP: never throws, answers every request, no E_INTERNAL',
  cover: [SRC],
  json: true,
  maxLen: 4096,
  timeoutMs: 20_000,
  dictionary: [
    ...Object.keys(OPS),
    'hello',
    'req',
    'res',
    'ping',
    'ev',
    'error',
    '$TOKEN',
    '$CERT',
    '$KEY',
    '$CHANNEL',
    '$POST',
    'op',
    'body',
    't',
    'id',
    'v',
    'role',
    'token',
    'channelId',
    'channelIds',
    'message',
    'messages',
    'limit',
    'since',
    'before',
    'ip',
    'port',
    'udpPort',
    'status',
    'hosts',
    'live',
    'publicKey',
    'name',
    'text',
    'ts',
    'lc',
    'sig',
    'cert',
    'author',
    'username',
    'password',
    'allowVisitors',
    'streamId',
  ],
  seeds,
  setup,
  run,
  teardown,
};
export default target;
