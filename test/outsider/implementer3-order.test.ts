// Orders documented in §2.1 and §3.3: history by (ts, lc, id), sync by seq, search by arrival, related by message then (ts, lc, id).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import {
  startServer,
  connectUser,
  makeItem,
  uuidv7,
  uname,
  type ServerProc,
  type Session,
} from './implementer3-client.js';

let srv: ServerProc;
let a: Session;
let chan: string;
const now = Date.now();
let m1: any, m2: any, m3: any;

beforeAll(async () => {
  srv = await startServer();
  a = await connectUser(srv, uname('oa'));
  chan = uuidv7();
  await a.conn.ok('channel_create', { id: chan, name: 'order', allowVisitors: false });
  m1 = makeItem(a, chan, { text: 'apple one' }, now - 1000);
  m2 = makeItem(a, chan, { text: 'apple two' }, now - 50_000); // older ts, arrives second
  m3 = makeItem(a, chan, { text: 'apple three' }, now - 20_000);
  for (const m of [m1, m2, m3]) await a.conn.ok('post', { message: m });
  // related: on m1 then m3, out of ts order
  const items = [
    makeItem(a, chan, { kind: 'react', target: m1.id, emoji: '🅰' }, now - 100),
    makeItem(a, chan, { kind: 'react', target: m3.id, emoji: '🅱' }, now - 900),
    makeItem(a, chan, { kind: 'edit', target: m1.id, text: 'apple uno' }, now - 500),
    makeItem(a, chan, { kind: 'react', target: m3.id, emoji: '🅲' }, now - 800),
  ];
  for (const i of items) await a.conn.ok('post', { message: i });
}, 60_000);
afterAll(async () => {
  a?.conn.close();
  await srv?.stop();
});

const key = (m: any) => [m.ts, m.lc, m.id] as const;
const cmp = (x: any, y: any) => {
  const [p, q] = [key(x), key(y)];
  return p[0] - q[0] || p[1] - q[1] || (p[2] < q[2] ? -1 : p[2] > q[2] ? 1 : 0);
};

describe('implementer3 orders', () => {
  it('sync ascending by seq', async () => {
    const s = await a.conn.ok('sync', { channelId: chan, since: 0, limit: 500 });
    expect(s.messages.map((m: any) => m.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });
  it('history ascending by (ts, lc, id), related by message (page order) then (ts, lc, id)', async () => {
    const h = await a.conn.ok('history', { channelId: chan, limit: 10 });
    expect(h.messages.map((m: any) => m.id)).toEqual([m2.id, m3.id, m1.id]);
    const rel = h.related;
    const expected = [...rel].sort((x: any, y: any) => {
      const order = [m2.id, m3.id, m1.id];
      return order.indexOf(x.target) - order.indexOf(y.target) || cmp(x, y);
    });
    expect(rel.map((r: any) => r.id)).toEqual(expected.map((r: any) => r.id));
  });
  it('search newest first by arrival (seq), shown text is the edit', async () => {
    const s = await a.conn.ok('search', { query: 'apple', channelIds: [chan] });
    expect(s.messages.map((m: any) => m.id)).toEqual([m3.id, m2.id, m1.id]);
    const s2 = await a.conn.ok('search', { query: 'uno', channelIds: [chan] });
    expect(s2.messages.map((m: any) => m.id)).toEqual([m1.id]);
    const s3 = await a.conn.ok('search', { query: 'ONE', channelIds: [chan] });
    expect(s3.messages).toEqual([]); // edited away
  });
  it('history before m3 gives the messages before it by (ts, lc, id)', async () => {
    const h = await a.conn.ok('history', { channelId: chan, limit: 10, before: m3.id });
    expect(h.messages.map((m: any) => m.id)).toEqual([m2.id]);
  });
});
