// §3.11: more than 256 channel numbers on one compact link.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import {
  startServer,
  connectUser,
  makeItem,
  uuidv7,
  uname,
  CompactTables,
  type ServerProc,
  type Session,
} from './implementer3-client.js';

let srv: ServerProc;
let o1: Session, o2: Session, rd: Session;
const chans: string[] = [];
const ids: string[] = [];

beforeAll(async () => {
  srv = await startServer();
  o1 = await connectUser(srv, uname('o1'));
  o2 = await connectUser(srv, uname('o2'));
  rd = await connectUser(srv, uname('rd'), { compact: 1 });
  for (let i = 0; i < 270; i++) {
    const o = i % 2 ? o1 : o2;
    const id = uuidv7();
    await o.conn.ok('channel_create', { id, name: `c${i}`, allowVisitors: false });
    await rd.conn.ok('channel_join', { channelId: id });
    chans.push(id);
  }
  for (let i = 0; i < 270; i++) {
    const o = i % 2 ? o1 : o2;
    const it = makeItem(o, chans[i]!, { text: `in ${i}` });
    await o.conn.ok('post', { message: it });
    ids.push(it.id);
  }
}, 60_000);
afterAll(async () => {
  for (const s of [o1, o2, rd]) s?.conn.close();
  await srv?.stop();
});

describe('implementer3 §3.11 channel numbers past 256', () => {
  const tabs = new CompactTables();
  it('270 pushes in 270 channels all rebuild with a 256-entry table', async () => {
    const got: string[] = [];
    while (got.length < 270) {
      const f = await rd.conn.next((x) => x.t === 'ref' || x.t === 'm', 10_000);
      if (f.t === 'ref') tabs.take(f);
      else {
        const m = tabs.rebuild(f);
        expect(m.channelId).toBe(chans[ids.indexOf(m.id)]);
        got.push(m.id);
      }
    }
    expect(got).toEqual(ids);
  });
  it('syncing the first channels again re-defines their numbers', async () => {
    for (const i of [0, 1, 2, 13, 100]) {
      rd.conn.frames = [];
      const r = await rd.conn.req('sync', { channelId: chans[i], since: 0, limit: 10 });
      rd.conn.frames.filter((f) => f.t === 'ref').forEach((f) => tabs.take(f));
      const m = tabs.rebuild(r.body.messages[0]);
      expect(m.channelId).toBe(chans[i]);
      expect(m.id).toBe(ids[i]);
    }
  });
});
