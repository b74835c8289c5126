/**
 * Scoped presence at scale (issue 16; docs/PROTOCOL.md §3.5 "Tracker visibility"): with
 * thousands of online sessions in small channels, a presence change is pushed to the sessions
 * that share a channel with it and to nobody else, so the pushes it costs grow with the channel,
 * not with the number of sessions. One real `bin/hchat server`; every session is a raw TLS client
 * that counts every frame it receives.
 *
 * Opening thousands of sessions through `login` would spend most of the budget in scrypt, so the
 * accounts, channels and sessions are written through the store's API before the server starts
 * on that data, with a signing key made here (`--signing-key`), and each client `resume`s with a
 * session token signed by that key, as the server signs them. Everything after that is the real
 * server's path: resume, submit_info, channel_join, close, and the pushes they cause.
 *
 * `HCHAT_PRESENCE_SESSIONS` sets the number of sessions (default 5,000, in channels of 10).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteServerStore } from '../src/store/server-store.js';
import { signClaims } from '../src/shared/tokens.js';
import { killAll, startServer, uuid7 } from './outsider/lib.js';
import { newKeyPair } from '../src/shared/keygen.js';

const SESSIONS = Number(process.env.HCHAT_PRESENCE_SESSIONS ?? 5000);
const CHANNEL_SIZE = 10;
const CHANNELS = Math.floor(SESSIONS / CHANNEL_SIZE);
/** Connections opened at once while setting up. */
const BATCH = 250;

const userOf = (i: number) => `u${String(i).padStart(5, '0')}`;

/** A session's connection: frames counted from the last `mark`, requests answered by id. */
class Line {
  readonly sock: tls.TLSSocket;
  private buf: Buffer = Buffer.alloc(0);
  private nextId = 1;
  private readonly waiters = new Map<number, (f: any) => void>();
  private helloWaiter?: (f: any) => void;
  /** Every frame since the last mark, answers included. */
  frames: any[] = [];
  closed = false;

  constructor(port: number) {
    this.sock = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
    this.sock.setNoDelay(true);
    this.sock.on('error', () => {});
    this.sock.on('close', () => (this.closed = true));
    this.sock.on('data', (d: Buffer) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
      while (this.buf.length >= 4) {
        const n = this.buf.readUInt32BE(0);
        if (this.buf.length < 4 + n) break;
        const f = JSON.parse(this.buf.subarray(4, 4 + n).toString('utf8'));
        this.buf = this.buf.subarray(4 + n);
        this.frames.push(f);
        if (f.t === 'hello' && this.helloWaiter) this.helloWaiter(f);
        if (f.t === 'res') this.waiters.get(f.id)?.(f);
      }
    });
  }

  private write(obj: unknown): void {
    const body = Buffer.from(JSON.stringify(obj), 'utf8');
    const h = Buffer.alloc(4);
    h.writeUInt32BE(body.length);
    this.sock.write(Buffer.concat([h, body]));
  }

  hello(): Promise<any> {
    return new Promise((resolve) => {
      this.helloWaiter = resolve;
      this.write({ t: 'hello', v: 4, role: 'peer', agent: 'presence-scale' });
    });
  }

  async req(op: string, body: unknown): Promise<any> {
    const id = this.nextId++;
    const f = await new Promise<any>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${op}: no answer`)), 30_000);
      this.waiters.set(id, (x) => (clearTimeout(t), this.waiters.delete(id), resolve(x)));
      this.write({ t: 'req', id, op, body });
    });
    if (f.error) throw new Error(`${op}: ${JSON.stringify(f.error)}`);
    return f.body;
  }

  mark(): void {
    this.frames = [];
  }

  /** Frames since the mark that are neither the server's hello nor answers to this line. */
  pushes(): any[] {
    return this.frames.filter((f) => f.t !== 'res' && f.t !== 'hello');
  }
}

interface World {
  server: Awaited<ReturnType<typeof startServer>>;
  key: crypto.KeyObject;
  /** Session id of each user (one session each). */
  sid: string[];
  /** Channel ids; channel k holds users k*10 … k*10+9, the first its owner. */
  channels: string[];
  lines: Map<number, Line>;
}

let w: World;

/** A session token for user i, signed as the server signs them (sessions.ts Sessions.open). */
function tokenOf(i: number): string {
  return signClaims(
    { typ: 'session', sid: w.sid[i]!, u: userOf(i), r: 'user', iat: Date.now() },
    w.key,
  );
}

/** Opens user i's session: hello, resume, and (online) an entry in the tracker. */
async function online(i: number): Promise<Line> {
  const line = new Line(w.server.port);
  await line.hello();
  await line.req('resume', { token: tokenOf(i) });
  await line.req('submit_info', {
    ip: '127.0.0.1',
    port: 20_000 + (i % 40_000),
    udpPort: 20_000 + (i % 40_000),
    status: 'online',
  });
  w.lines.set(i, line);
  return line;
}

/** Resolves once no line has received a frame for `quietMs`. */
async function settle(quietMs = 400): Promise<void> {
  let last = -1;
  for (;;) {
    let n = 0;
    for (const l of w.lines.values()) n += l.frames.length;
    if (n === last) return;
    last = n;
    await new Promise((r) => setTimeout(r, quietMs));
  }
}

function markAll(): void {
  for (const l of w.lines.values()) l.mark();
}

/** Pushes received since the mark, by user index (users that got none left out). */
function received(except?: number): Map<number, any[]> {
  const got = new Map<number, any[]>();
  for (const [i, l] of w.lines) {
    const p = i === except ? l.pushes() : l.frames;
    if (p.length) got.set(i, p);
  }
  return got;
}

/** The counter `hchat_pushes_total` summed over event types, read off /metrics. */
async function pushesTotal(): Promise<number> {
  const http = w.server.ready.match(/http=(\S+)/)![1];
  const text = await (await fetch(new URL('/metrics', http!))).text();
  let sum = 0;
  for (const m of text.matchAll(/^hchat_pushes_total\{[^}]*\} (\d+)/gm)) sum += Number(m[1]);
  return sum;
}

/** Members of channel k (user indices). */
const membersOf = (k: number) =>
  Array.from({ length: CHANNEL_SIZE }, (_, j) => k * CHANNEL_SIZE + j);

/** The user index that stays offline during setup (a member of LATE_CHANNEL), and the newcomer. */
const LATE_CHANNEL = 7;
const LATE = LATE_CHANNEL * CHANNEL_SIZE + 3;
const NEWBIE = CHANNELS * CHANNEL_SIZE;
const JOINED_CHANNEL = Math.min(42, CHANNELS - 1);

beforeAll(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hc-presence-'));
  const { privateKey } = newKeyPair('ed25519');
  const keyFile = path.join(dir, 'signing-key.pem');
  fs.writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  // The data, through the store's public API, before the server opens it.
  const store = new SqliteServerStore(path.join(dir, 'server.db'));
  const sid: string[] = [];
  const channels: string[] = [];
  const publicKey = crypto.randomBytes(32).toString('base64url');
  const now = Date.now();
  for (let i = 0; i <= NEWBIE; i++) {
    await store.createUser({ username: userOf(i), passHash: 'unused: sessions are resumed' });
    sid.push(crypto.randomBytes(16).toString('base64url'));
    await store.createSession({
      sessionId: sid[i]!,
      username: userOf(i),
      role: 'user',
      createdAt: now,
      publicKey,
    });
  }
  for (let k = 0; k < CHANNELS; k++) {
    const id = uuid7();
    channels.push(id);
    const [owner, ...rest] = membersOf(k);
    await store.createChannel({
      id,
      name: `room-${k}`,
      owner: userOf(owner!),
      allowVisitors: false,
      createdAt: now + k,
    });
    for (const j of rest) await store.addMember(id, userOf(j));
  }
  await store.close();
  const many = String(SESSIONS * 2);
  const server = await startServer(
    [
      '--signing-key',
      keyFile,
      '--peer-timeout-ms',
      '600000',
      '--hello-timeout-ms',
      '60000',
      '--max-unauthenticated-per-address',
      many,
      '--max-unauthenticated',
      many,
      '--max-tracker-entries-per-address',
      many,
    ],
    { data: dir },
  );
  w = { server, key: privateKey, sid, channels, lines: new Map() };
  // Every user online but LATE, in batches of connections opened in the same turn.
  const todo = Array.from({ length: NEWBIE + 1 }, (_, i) => i).filter((i) => i !== LATE);
  for (let b = 0; b < todo.length; b += BATCH)
    await Promise.all(todo.slice(b, b + BATCH).map((i) => online(i)));
  await settle();
}, 180_000);

afterAll(async () => {
  for (const l of w?.lines.values() ?? []) l.sock.destroy();
  await killAll();
});

describe(`presence with ${SESSIONS} sessions in ${CHANNELS} channels of ${CHANNEL_SIZE}`, () => {
  it('setting up told each session of its co-members only', () => {
    // Each online user heard peer_joined from at most its 9 co-members (those that came online
    // after it), and nothing else but its own answers.
    for (const [i, l] of w.lines) {
      const evs = l.pushes();
      const mates = i === NEWBIE ? [] : membersOf(Math.floor(i / CHANNEL_SIZE));
      expect(evs.length).toBeLessThanOrEqual(CHANNEL_SIZE - 1);
      for (const f of evs) {
        expect(f).toMatchObject({ t: 'ev', ev: 'peer_joined' });
        expect(mates.map(userOf)).toContain(f.body.entry.username);
      }
    }
  });

  it('get_list answers a session with its co-members only', async () => {
    const i = 3 * CHANNEL_SIZE + 5;
    const l = w.lines.get(i)!;
    const { peers, next } = await l.req('get_list', {});
    expect(next).toBeUndefined();
    expect(peers.map((e: { username: string }) => e.username).sort()).toEqual(
      membersOf(3).map(userOf),
    );
  });

  it('a member coming online is pushed to its channel and to nobody else', async () => {
    markAll();
    const before = await pushesTotal();
    const late = await online(LATE);
    await settle();
    const got = received(LATE);
    const mates = membersOf(LATE_CHANNEL).filter((i) => i !== LATE);
    expect([...got.keys()].sort((a, b) => a - b)).toEqual(mates);
    for (const i of mates) {
      expect(got.get(i)).toEqual([
        {
          t: 'ev',
          ev: 'peer_joined',
          body: { entry: expect.objectContaining({ username: userOf(LATE) }) },
        },
      ]);
    }
    expect(late.pushes()).toEqual([]);
    // The server's own count agrees: the join cost one push per co-member, not one per session.
    expect((await pushesTotal()) - before).toBe(mates.length);
  });

  it('a user joining a channel is pushed to that channel and to nobody else', async () => {
    markAll();
    const before = await pushesTotal();
    const newbie = w.lines.get(NEWBIE)!;
    await newbie.req('channel_join', { channelId: w.channels[JOINED_CHANNEL] });
    await settle();
    const got = received(NEWBIE);
    const members = membersOf(JOINED_CHANNEL);
    const owner = members[0]!;
    expect([...got.keys()].sort((a, b) => a - b)).toEqual([...members, NEWBIE]);
    for (const i of members) {
      const evs = got.get(i)!;
      const joined = evs.filter((f) => f.ev === 'peer_joined');
      expect(joined.map((f) => f.body.entry.username)).toEqual([userOf(NEWBIE)]);
      // The owner also hears of the new member (member_joined), the others hear nothing more.
      const rest = evs.filter((f) => f.ev !== 'peer_joined');
      expect(rest).toEqual(
        i === owner
          ? [
              {
                t: 'ev',
                ev: 'member_joined',
                body: { channelId: w.channels[JOINED_CHANNEL], username: userOf(NEWBIE) },
              },
            ]
          : [],
      );
    }
    // The newcomer hears of the channel's online members, once each.
    const toNewbie = got.get(NEWBIE)!;
    expect(toNewbie.every((f) => f.ev === 'peer_joined')).toBe(true);
    expect(toNewbie.map((f) => f.body.entry.username).sort()).toEqual(members.map(userOf));
    const pushes = (await pushesTotal()) - before;
    expect(pushes).toBe(2 * members.length + 1);
    expect(pushes).toBeLessThan(4 * (CHANNEL_SIZE + 1));
  });

  it('a session closing is pushed as peer_left to its channels and to nobody else', async () => {
    markAll();
    const before = await pushesTotal();
    const newbie = w.lines.get(NEWBIE)!;
    w.lines.delete(NEWBIE);
    newbie.sock.destroy();
    await settle();
    const got = received();
    const members = membersOf(JOINED_CHANNEL);
    expect([...got.keys()].sort((a, b) => a - b)).toEqual(members);
    for (const i of members)
      expect(got.get(i)!.map((f) => [f.ev, f.body.entry.username])).toEqual([
        ['peer_left', userOf(NEWBIE)],
      ]);
    expect((await pushesTotal()) - before).toBe(members.length);
  });
});
