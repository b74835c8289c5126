// Helpers for test/outsider/bot-lifecycle.test.ts, written from docs/REST.md, docs/PROTOCOL.md
// §2, §3, §11 and docs/SECURITY.md only: REST calls, a gateway client, signed channel items, and
// a `bin/hchat server` whose wall clock the test can move forward.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { bodyDigest, idLayout, type Proc } from './lib.js';

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'hchat');

export interface RestAnswer {
  status: number;
  body: any;
  headers: Headers;
}

/** A REST API v1 call with a bearer token (docs/REST.md). */
export async function rest(
  http: string,
  token: string | undefined,
  method: string,
  route: string,
  body?: unknown,
): Promise<RestAnswer> {
  const r = await fetch(new URL('/api/v1' + route, http), {
    method,
    headers: {
      ...(token ? { authorization: 'Bearer ' + token } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  let json: any = text;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: r.status, body: json, headers: r.headers };
}

/** A gateway connection (`GET /api/v1/gateway`): every frame it got, and how it ended. */
export interface Gateway {
  ws: WebSocket;
  frames: any[];
  /** The HTTP status of a refused upgrade, or 101. */
  status: number;
  /** The refused upgrade's body. */
  refusal?: any;
  closeCode?: number;
  closed: Promise<number>;
  ready: Promise<any>;
  events(type?: string): any[];
  close(): void;
}

const gateways: Gateway[] = [];

export function openGateway(http: string, token: string, query = ''): Gateway {
  const url = new URL('/api/v1/gateway' + query, http);
  url.protocol = 'ws:';
  const ws = new WebSocket(url, { headers: { authorization: 'Bearer ' + token } });
  const g: Gateway = {
    ws,
    frames: [],
    status: 0,
    closed: undefined as any,
    ready: undefined as any,
    events: (type) => g.frames.filter((f) => f.t === 'event' && (!type || f.type === type)),
    close: () => ws.terminate(),
  };
  let readyResolve!: (f: any) => void;
  let readyReject!: (e: unknown) => void;
  g.ready = new Promise((res, rej) => ((readyResolve = res), (readyReject = rej)));
  g.ready.catch(() => {});
  g.closed = new Promise((resolve) => {
    ws.on('unexpected-response', (_req, res) => {
      g.status = res.statusCode ?? 0;
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => {
        try {
          g.refusal = JSON.parse(text);
        } catch {
          g.refusal = text;
        }
        g.closeCode = -1;
        readyReject(new Error('refused ' + g.status + ' ' + text));
        resolve(-1);
      });
    });
    ws.on('upgrade', () => (g.status = 101));
    ws.on('error', (e) => readyReject(e));
    ws.on('close', (code) => {
      g.closeCode = code;
      readyReject(new Error('closed ' + code));
      resolve(code);
    });
  });
  ws.on('message', (d) => {
    const f = JSON.parse(String(d));
    g.frames.push(f);
    if (f.t === 'ready' || f.t === 'resumed') readyResolve(f);
  });
  gateways.push(g);
  return g;
}

export function closeGateways() {
  for (const g of gateways.splice(0)) g.close();
}

/** PROTOCOL.md §2.1 digest of a `channel` item's body. */
function channelDigest(change: {
  name?: string;
  topic?: string;
  allowVisitors?: boolean;
  remove?: string;
  deleted?: true;
}) {
  const arr = [
    change.name ?? null,
    change.topic ?? null,
    change.allowVisitors ?? null,
    change.remove ?? null,
    change.deleted ?? null,
  ];
  return crypto
    .createHash('sha256')
    .update(JSON.stringify(['hchat/body/1', null, null, null, null, arr]), 'utf8')
    .digest('base64url');
}

/** A `channel` item (PROTOCOL.md §2.2) signed by `author`. */
export function signChannelItem(
  key: { privateKey: crypto.KeyObject },
  cert: string,
  channelId: string,
  author: string,
  change: { name?: string; remove?: string; deleted?: true; allowVisitors?: boolean },
  ts = Date.now(),
  lc = 0,
) {
  const digest = channelDigest(change);
  const h = crypto
    .createHash('sha256')
    .update(
      JSON.stringify([
        'hchat/item-id/2',
        channelId,
        author.toLowerCase(),
        ts,
        lc,
        'channel',
        null,
        digest,
      ]),
      'utf8',
    )
    .digest();
  const id = idLayout(ts, h);
  const sig = crypto
    .sign(
      null,
      Buffer.from(
        JSON.stringify([
          'hchat/item/2',
          id,
          channelId,
          author.toLowerCase(),
          ts,
          lc,
          'channel',
          null,
          digest,
        ]),
        'utf8',
      ),
      key.privateKey,
    )
    .toString('base64url');
  return { id, channelId, ts, lc, kind: 'channel', change, sig, cert };
}

export { bodyDigest };

/**
 * A `bin/hchat server` whose clock (Date) runs `offset` ms ahead of the real one, the offset read
 * from a file the test writes (`shift(ms)`). Only the server's own reading of the time moves:
 * that is what a token's expiry is judged by.
 */
export async function startShiftedServer(
  extra: string[] = [],
): Promise<Proc & { host: string; port: number; http: string; shift(ms: number): void }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hc-botlife-'));
  const offsetFile = path.join(dir, 'offset');
  fs.writeFileSync(offsetFile, '0');
  const preload = path.join(dir, 'shift.mjs');
  fs.writeFileSync(
    preload,
    `import fs from 'node:fs';
const file = ${JSON.stringify(offsetFile)};
let offset = 0;
const read = () => { try { offset = Number(fs.readFileSync(file, 'utf8')) || 0; } catch {} };
read();
setInterval(read, 50).unref();
const RealDate = Date;
const realNow = RealDate.now.bind(RealDate);
class ShiftedDate extends RealDate {
  constructor(...a) { if (a.length === 0) super(realNow() + offset); else super(...a); }
  static now() { return realNow() + offset; }
}
globalThis.Date = ShiftedDate;
`,
  );
  const data = path.join(dir, 'data');
  const child = spawn(
    process.execPath,
    [
      '--import',
      preload,
      BIN,
      'server',
      '--port',
      '0',
      '--http-port',
      '0',
      ...extra,
      '--data',
      data,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const ready = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no ready line: ' + out + err)), 20000);
    child.stdout!.on('data', (d) => {
      out += d;
      const m = out.match(/^ready .*$/m);
      if (m) {
        clearTimeout(t);
        resolve(m[0]);
      }
    });
    child.on('exit', (c) => reject(new Error('exited ' + c + ' ' + err)));
  });
  const m = ready.match(/tcp=([\d.]+):(\d+) http=(\S+)/)!;
  return {
    child,
    ready,
    data,
    stderr: () => err,
    kill: () =>
      new Promise<void>((r) => {
        if (child.exitCode !== null || child.signalCode) return r();
        child.once('exit', () => {
          fs.rmSync(dir, { recursive: true, force: true });
          r();
        });
        child.kill('SIGKILL');
      }),
    host: m[1]!,
    port: Number(m[2]),
    http: m[3]!,
    shift: (ms: number) => fs.writeFileSync(offsetFile, String(ms)),
  };
}

/**
 * `count` `bin/hchat server` instances of one deployment (a fresh PostgreSQL database, a NATS of their
 * own, one signing key: README "Several server instances"), outside vitest's per-test cleanup so
 * that a scenario may run beside other tests; `stop()` ends all of it.
 */
export async function startDeployment(extra: string[] = [], count = 2) {
  const { createTestDatabase } = await import('../pg-kit.js');
  const { launchNats } = await import('../nats.js');
  const { launchHchat } = await import('../hchat-spawn.js');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hc-botlife-dep-'));
  const key = path.join(dir, 'signing-key.pem');
  const kp = crypto.generateKeyPairSync('ed25519');
  fs.writeFileSync(key, kp.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  const db = await createTestDatabase();
  const nats = await launchNats();
  const ids = Array.from({ length: count }, (_, i) => i);
  const launched = ids.map((i) =>
    launchHchat([
      'server',
      '--port',
      '0',
      '--http-port',
      '0',
      '--data',
      path.join(dir, `srv${i}`),
      '--store',
      db.url,
      '--bus',
      nats.url,
      '--signing-key',
      key,
      ...extra,
    ]),
  );
  // One instance that fails to start (slow under load) must not leave the others, NATS and the
  // database behind: this runs outside vitest's cleanup (three servers outlived a run that way).
  const servers = await Promise.all(launched.map((l) => l.ready)).catch(async (err: unknown) => {
    for (const l of launched) if (l.proc.exitCode === null) l.proc.kill('SIGKILL');
    await Promise.all(launched.map((l) => l.exited));
    await nats.kill();
    await db.drop().catch(() => {});
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  });
  const at = (i: number) => {
    const [host, port] = servers[i]!.ready.tcp!.split(':');
    return { host: host!, port: Number(port), http: servers[i]!.ready.http! };
  };
  const kill = async (i: number) => {
    const l = launched[i]!;
    if (l.proc.exitCode === null && l.proc.signalCode === null) {
      l.proc.kill('SIGKILL');
      await l.exited;
    }
  };
  return {
    at,
    kill,
    async stop() {
      await Promise.all(ids.map(kill));
      await nats.kill();
      await db.drop().catch(() => {});
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
