// §1 / §3.3 / §3.11: pages cut to maxFrame, in full and compact form.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import {
  startServer,
  Conn,
  connectUser,
  makeItem,
  uuidv7,
  uname,
  CompactTables,
  type ServerProc,
  type Session,
} from './implementer3-client.js';

let srv: ServerProc;
let w: Session;
let full: Session; // maxFrame 65536, full form
let comp: Session; // maxFrame 65536, compact
const chan = uuidv7();
const ids: string[] = [];

beforeAll(async () => {
  srv = await startServer();
  w = await connectUser(srv, uname('w'));
  await w.conn.ok('channel_create', { id: chan, name: 'pages', allowVisitors: true });
  for (let i = 0; i < 60; i++) {
    const it = makeItem(w, chan, { text: `${i} ` + 'long words here '.repeat(180) });
    await w.conn.ok('post', { message: it });
    ids.push(it.id);
  }
  full = await connectUser(srv, uname('f'));
  comp = await connectUser(srv, uname('c'), { compact: 1 });
  // maxFrame must be given in hello; reconnect both with it
  for (const s of [full, comp]) {
    s.conn.close();
    s.conn = await Conn.open(srv);
    await s.conn.hello({ maxFrame: 65536, ...(s === comp ? { compact: 1 } : {}) });
    await s.conn.ok('resume', { token: s.token });
    await s.conn.ok('channel_join', { channelId: chan });
  }
}, 60_000);
afterAll(async () => {
  for (const s of [w, full, comp]) s?.conn.close();
  await srv?.stop();
});

const frameLen = (c: Conn) => Buffer.byteLength(c.raw[c.raw.length - 1]!, 'utf8');

describe('implementer3 pages cut to maxFrame', () => {
  it('sync keeps the oldest, fits 65536, and the peer goes on until lastSeq', async () => {
    const r = await full.conn.ok('sync', { channelId: chan, since: 0, limit: 500 });
    expect(frameLen(full.conn)).toBeLessThanOrEqual(65536);
    expect(r.messages.length).toBeGreaterThan(0);
    expect(r.messages.length).toBeLessThan(60);
    expect(r.messages[0].seq).toBe(1);
    expect(r.lastSeq).toBe(60);
  });
  it('history keeps the newest, hasMore true', async () => {
    const r = await full.conn.ok('history', { channelId: chan, limit: 500 });
    expect(frameLen(full.conn)).toBeLessThanOrEqual(65536);
    expect(r.hasMore).toBe(true);
    expect(r.messages[r.messages.length - 1].id).toBe(ids[59]);
  });
  it('a compact page is cut by its full size: same count as the full-form page', async () => {
    const tabs = new CompactTables();
    const f1 = await full.conn.ok('sync', { channelId: chan, since: 0, limit: 500 });
    const c1 = await comp.conn.req('sync', { channelId: chan, since: 0, limit: 500 });
    comp.conn.frames.filter((f) => f.t === 'ref').forEach((f) => tabs.take(f));
    expect(c1.body.messages.length).toBe(f1.messages.length);
    expect(c1.body.messages.map((m: any) => tabs.rebuild(m))).toEqual(f1.messages);
    const f2 = await full.conn.ok('history', { channelId: chan, limit: 500 });
    const c2 = await comp.conn.req('history', { channelId: chan, limit: 500 });
    expect(c2.body.messages.length).toBe(f2.messages.length);
    expect(c2.body.hasMore).toBe(true);
  });
  it('search is cut to the frame too (hasMore) and before pages on', async () => {
    const r = await full.conn.ok('search', { query: 'long words', channelIds: [chan], limit: 50 });
    expect(frameLen(full.conn)).toBeLessThanOrEqual(65536);
    expect(r.hasMore).toBe(true);
    expect(r.messages[0].id).toBe(ids[59]); // newest first
    const last = r.messages[r.messages.length - 1].id;
    const r2 = await full.conn.ok('search', {
      query: 'long',
      channelIds: [chan],
      limit: 50,
      before: last,
    });
    expect(r2.messages[0].id).toBe(ids[ids.indexOf(last) - 1]);
    const r3 = await full.conn.ok('search', {
      query: 'long',
      channelIds: [chan],
      limit: 5,
      before: uuidv7(),
    });
    expect(r3.messages).toEqual([]);
    const r4 = await full.conn.ok('search', { query: '"*" OR ()', channelIds: [chan], limit: 5 });
    expect(r4.messages).toEqual([]);
  });
});
