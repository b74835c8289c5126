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
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { v7 as uuidv7 } from 'uuid';
import { CentralServer } from '../../src/server/server.js';
import { FrameDecoder, encodeFrame } from '../../src/protocol/frame.js';
import { isErrorCode } from '../../src/protocol/errors.js';
import { OPS, Request, isOpName } from '../../src/protocol/server-link.js';
import { newSessionKeys, signMessage, type SessionKeys } from '../../src/shared/signing.js';
import { ContractViolation, type FuzzTarget } from '../engine/target.js';

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

/** One connection: the frames received, and whether the server closed it. */
class Client {
  readonly frames: Array<Record<string, unknown>> = [];
  closed = false;
  private readonly decoder = new FrameDecoder();
  private waiters: Array<() => void> = [];
  readonly socket: net.Socket;
  decodeError: unknown;

  constructor() {
    this.socket = net.connect(port, host);
    this.socket.on('data', (b) => {
      try {
        this.frames.push(...this.decoder.push(b));
      } catch (err) {
        this.decodeError ??= err;
      }
      this.wake();
    });
    this.socket.on('error', () => {});
    this.socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Waits until `done()` holds or the connection closes, at most `ms`; true when done held. */
  async until(done: () => boolean, ms: number): Promise<boolean> {
    const end = Date.now() + ms;
    while (!done() && !this.closed) {
      const left = end - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return done();
  }

  /** Sends a request and waits for its answer's body (setup only). */
  async call(id: number, op: string, body: unknown): Promise<Record<string, unknown>> {
    this.socket.write(encodeFrame({ t: 'req', id, op, body }));
    await this.until(() => this.frames.some((f) => f.t === 'res' && f.id === id), 30_000);
    const res = this.frames.find((f) => f.t === 'res' && f.id === id);
    if (!res || res.error) throw new Error(`setup ${op} failed: ${JSON.stringify(res)}`);
    return res.body as Record<string, unknown>;
  }
}

/** Logs in as the fuzzer's user and keeps that session's token and certificate. */
async function login(): Promise<void> {
  const c = new Client();
  c.socket.write(encodeFrame({ t: 'hello', v: 1, role: 'peer' }));
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
  const c = new Client();
  c.socket.write(encodeFrame({ t: 'hello', v: 1, role: 'peer' }));
  await c.call(1, 'register', { username: USER, password: PASSWORD });
  c.socket.destroy();
  await login();
  const c2 = new Client();
  c2.socket.write(encodeFrame({ t: 'hello', v: 1, role: 'peer' }));
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
  const m = { id: uuidv7(), channelId: vars.channel, ts: Date.now(), lc: 0, text: 'fuzz' };
  return JSON.stringify({ ...m, sig: signMessage({ ...m, author: USER }, keys!), cert: vars.cert });
}

/** The bytes an input stands for. */
function encodeInput(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (const raw of data.toString('utf8').split('\n')) {
    if (raw.startsWith('#hex:')) {
      parts.push(
        Buffer.from(
          raw
            .slice(5)
            .replace(/[^0-9a-f]/gi, '')
            .replace(/^((?:..)*).?$/, '$1'),
          'hex',
        ),
      );
      continue;
    }
    const line = raw
      .replaceAll('$TOKEN', vars.token)
      .replaceAll('$CERT', vars.cert)
      .replaceAll('$KEY', vars.key)
      .replaceAll('$CHANNEL', vars.channel)
      .replaceAll('$POST', () => signedPost());
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      if (line.length > 0) parts.push(Buffer.from(line));
      continue;
    }
    parts.push(
      value !== null && typeof value === 'object' ? encodeFrame(value) : Buffer.from(line),
    );
  }
  return Buffer.concat(parts);
}

const ENVELOPE = new Set(['hello', 'res', 'ev', 'pong', 'ping', 'error']);

async function run(data: Buffer): Promise<void> {
  const bytes = encodeInput(data);
  // What the server will decode, exactly: the requests it owes an answer while the link is open.
  const sent: Array<Record<string, unknown>> = [];
  const local = new FrameDecoder();
  let whole = true; // the stream ends on a frame boundary: the ping after it will be read
  try {
    sent.push(...local.push(bytes));
    whole = local.pending === 0;
  } catch {
    whole = false; // the server refuses the stream at that point and closes
  }
  const owed = new Map<number, number>();
  for (const f of sent) {
    const r = Request.safeParse(f);
    if (r.success && isOpName(r.data.op)) owed.set(r.data.id, (owed.get(r.data.id) ?? 0) + 1);
  }
  const c = new Client();
  c.socket.write(Buffer.concat([bytes, encodeFrame({ t: 'ping' })]));
  try {
    const answered = () => {
      const got = new Map<number, number>();
      for (const f of c.frames)
        if (f.t === 'res') got.set(f.id as number, (got.get(f.id as number) ?? 0) + 1);
      return [...owed].every(([id, n]) => (got.get(id) ?? 0) >= n);
    };
    const ponged = whole && (await c.until(() => c.frames.some((f) => f.t === 'pong'), ANSWER_MS));
    if (whole && !ponged && !c.closed) {
      throw new ContractViolation(`no pong after ${ANSWER_MS} ms to a ping on a whole stream`);
    }
    const all = await c.until(answered, ANSWER_MS);
    if (!all && !c.closed) {
      throw new ContractViolation(`requests left unanswered after ${ANSWER_MS} ms on an open link`);
    }
    if (c.decodeError)
      throw new ContractViolation('server sent bytes that do not decode', String(c.decodeError));
    for (const f of c.frames) {
      if (typeof f.t !== 'string' || !ENVELOPE.has(f.t)) {
        throw new ContractViolation(
          'server sent a frame of unknown type',
          JSON.stringify(f).slice(0, 200),
        );
      }
      const err =
        (f.t === 'error' ? f : (f.error as Record<string, unknown> | undefined)) ?? undefined;
      if (err) {
        if (!isErrorCode(err.code))
          throw new ContractViolation('error code not in the catalogue', JSON.stringify(err));
        if (err.code === 'E_INTERNAL')
          throw new ContractViolation('server answered E_INTERNAL', JSON.stringify(f));
      }
    }
  } finally {
    c.socket.destroy();
    // A logout revokes the shared session: make a new one for the next inputs.
    if (server!.store.getSession(vars.sessionId)?.revoked) await login();
  }
}

const HELLO = '{"t":"hello","v":1,"role":"peer"}';
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
    ['{"t":"hello","v":2,"role":"peer"}'],
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
