// Outsider helpers for the server's P2P relay, written from docs/PROTOCOL.md §3.10 only: the
// 37-byte header, a raw TCP end on the relay port that records every byte and when it closed,
// and a "world" of raw clients (a host with an online entry and a member sharing its channel).
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Raw, newKey, serverHello, sleep, uuid7 } from './lib.js';

/** §3.10: "HCRL", version 0x01, then the 32 raw bytes of the base64url token. */
export function relayHeader(token: string | Buffer): Buffer {
  const t = typeof token === 'string' ? Buffer.from(token, 'base64url') : token;
  return Buffer.concat([Buffer.from('HCRL', 'latin1'), Buffer.from([0x01]), t]);
}

/** A plain TCP connection to the relay port that keeps what it receives. */
export class RelayEnd {
  readonly sock: net.Socket;
  readonly openedAt = Date.now();
  closedAt = 0;
  private chunks: Buffer[] = [];
  received = 0;
  private waiters: (() => void)[] = [];
  readonly ready: Promise<void>;
  readonly closeP: Promise<void>;

  constructor(port: number) {
    this.sock = net.connect(port, '127.0.0.1');
    this.sock.setNoDelay(true);
    this.sock.on('error', () => {});
    this.ready = new Promise((r) => this.sock.once('connect', () => r()));
    this.closeP = new Promise((r) =>
      this.sock.once('close', () => {
        this.closedAt = Date.now();
        this.kick();
        r();
      }),
    );
    this.sock.on('data', (d: Buffer) => {
      this.chunks.push(d);
      this.received += d.length;
      this.kick();
    });
  }

  private kick() {
    for (const w of this.waiters.splice(0)) w();
  }

  get closed() {
    return this.closedAt !== 0;
  }

  /** Everything received so far. */
  data(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0] ?? Buffer.alloc(0);
  }

  write(b: Buffer) {
    if (!this.sock.destroyed) this.sock.write(b);
  }

  /** Resolves true once `pred` holds, false after `ms`. */
  until(pred: () => boolean, ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const check = () => {
        if (pred()) return (clearTimeout(t), resolve(true));
        this.waiters.push(check);
      };
      const t = setTimeout(() => {
        const i = this.waiters.indexOf(check);
        if (i >= 0) this.waiters.splice(i, 1);
        resolve(pred());
      }, ms);
      check();
    });
  }

  /** True if the relay closed this connection within `ms`. */
  closedWithin(ms: number) {
    return this.until(() => this.closed, ms);
  }

  destroy() {
    this.sock.destroy();
  }
}

/** Open a relay connection and send `first` (a header, or anything) once connected. */
export async function relayConnect(port: number, first?: Buffer | null) {
  const e = new RelayEnd(port);
  await e.ready;
  if (first) e.write(first);
  return e;
}

/** A logged-in raw client on the framed port. */
export interface Client {
  c: Raw;
  key: ReturnType<typeof newKey>;
  cert: string;
  token: string;
  sessionId: string;
  username: string;
}

/**
 * Send `op` until it is not E_RATE_LIMITED: §3.3 runs at most 2 password checks at once per
 * budget and answers the others E_RATE_LIMITED at once, which tests running side by side meet.
 */
async function patiently(c: Raw, op: string, body: unknown) {
  for (let i = 0; ; i++) {
    const r = await c.req(op, body);
    if (r.error?.code !== 'E_RATE_LIMITED' || i === 40) return r;
    await sleep(Math.min(r.error.retryAfterMs ?? 200, 1000) + Math.random() * 100);
  }
}

/** Register and log in `username` on a fresh framed connection (lib.ts's registerLogin, patient). */
export async function account(
  srv: { host: string; port: number },
  username: string,
): Promise<Client> {
  const { c } = await serverHello(srv);
  const password = 'pw-' + username;
  const reg = await patiently(c, 'register', { username, password });
  if (!reg.body) throw new Error('register failed ' + JSON.stringify(reg));
  const key = newKey();
  const l = await patiently(c, 'login', { username, password, publicKey: key.pk });
  if (!l.body) throw new Error('login failed ' + JSON.stringify(l));
  return { c, key, cert: l.body.cert, token: l.body.token, sessionId: l.body.sessionId, username };
}

let seq = 0;
/** A fresh username: letters and digits only, unique within this run. */
export const uname = (tag: string) =>
  `${tag}${++seq}${crypto.randomBytes(3).toString('hex')}`.slice(0, 24);

/** An entry online in the tracker (§3.3 submit_info), hosting `hosts`. */
export async function goOnline(c: Client, hosts: string[] = [], status = 'online') {
  const r = await c.c.req('submit_info', {
    ip: '127.0.0.1',
    port: 9,
    udpPort: 9,
    status,
    ...(hosts.length ? { hosts } : {}),
  });
  if (!r.body) throw new Error('submit_info failed ' + JSON.stringify(r));
  return r;
}

/** A host online with a channel, and a member of it: each may see the other's entry (§3.5). */
export async function hostAndMember(srv: { host: string; port: number }) {
  const [host, member] = await Promise.all([account(srv, uname('h')), account(srv, uname('m'))]);
  const channelId = uuid7();
  const cc = await host.c.req('channel_create', {
    id: channelId,
    name: 'relay',
    allowVisitors: true,
  });
  if (!cc.body) throw new Error('channel_create failed ' + JSON.stringify(cc));
  const j = await member.c.req('channel_join', { channelId });
  if (!j.body) throw new Error('channel_join failed ' + JSON.stringify(j));
  await goOnline(host, [channelId]);
  await goOnline(member);
  return { host, member, channelId };
}

/** `to` of a relay request naming `c`'s session. */
export const toOf = (c: Client) => ({ username: c.username, sessionId: c.sessionId });

/** A fresh relay id (§3.10: 8–32 characters of A-Z a-z 0-9 _ -). */
export const relayId = () => crypto.randomBytes(12).toString('base64url');

/** Wait for the `relay` event with this `id` on `c` (null after `ms`). */
export function relayEvent(c: Raw, id: string, ms = 3000): Promise<any | null> {
  return new Promise((resolve) => {
    const hit = () => c.events.find((f) => f.ev === 'relay' && f.body?.id === id);
    const found = hit();
    if (found) return resolve(found.body);
    const t = setTimeout(() => resolve(hit()?.body ?? null), ms);
    const prev = c.onEvent;
    c.onEvent = (f) => {
      prev?.(f);
      if (f.ev === 'relay' && f.body?.id === id) {
        clearTimeout(t);
        resolve(f.body);
      }
    };
  });
}

/** Ask a relay from `member` to `host`; the answer and the host's event. */
export async function askRelay(member: Client, host: Client, id = relayId()) {
  const res = await member.c.req('relay', { to: toOf(host), id });
  const ev = res.body ? await relayEvent(host.c, id) : null;
  return { res, ev, id, port: res.body?.port as number, tm: res.body?.token, th: ev?.token };
}

/**
 * A paired link: both ends connected with their headers, the member's 0x01 read off.
 * `hostFirst` chooses who comes first.
 */
export async function pairUp(port: number, tm: string, th: string, hostFirst = false) {
  const a = await relayConnect(port, relayHeader(hostFirst ? th : tm));
  const b = await relayConnect(port, relayHeader(hostFirst ? tm : th));
  const [m, h] = hostFirst ? [b, a] : [a, b];
  const paired = await m.until(() => m.received >= 1, 5000);
  return { m, h, paired, signal: m.data().subarray(0, 1) };
}

/** A fresh connection to the framed port answers `reflect` (§3.3) within `ms`. */
export async function framedAnswers(srv: { host: string; port: number }, ms = 5000) {
  const t0 = Date.now();
  const probe = (async () => {
    const { c } = await serverHello(srv);
    const r = await c.req('reflect', {}, ms);
    c.close();
    return !!r.body && r.body.ip === '127.0.0.1';
  })();
  const ok = await Promise.race([
    probe,
    new Promise<boolean>((r) => setTimeout(() => r(false), ms)),
  ]);
  return { ok, ms: Date.now() - t0 };
}

/** The server's connection log (§6), as records of key=value. */
export function logRecords(data: string): Record<string, string>[] {
  const f = path.join(data, 'connections.log');
  if (!fs.existsSync(f)) return [];
  return fs
    .readFileSync(f, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const rec: Record<string, string> = {};
      for (const kv of line.split(' ')) {
        const i = kv.indexOf('=');
        if (i > 0) rec[kv.slice(0, i)] = decodeURIComponent(kv.slice(i + 1));
      }
      return rec;
    });
}
