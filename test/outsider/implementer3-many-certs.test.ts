// §3.11: more than 128 certificates in one page, and the 256-entry receiver table.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import {
  startServer,
  connectUser,
  newKey,
  makeItem,
  uuidv7,
  uname,
  CompactTables,
  checkStored,
  type ServerProc,
  type Session,
} from './implementer3-client.js';

let srv: ServerProc;
let owner: Session;
let reader: Session; // compact, subscribed while the certs arrive
const chan = uuidv7();
const N = Number(process.env.IMPL3_N ?? 300);
const ids: string[] = [];

beforeAll(async () => {
  srv = await startServer();
  owner = await connectUser(srv, uname('own'));
  await owner.conn.ok('channel_create', { id: chan, name: 'many', allowVisitors: false });
  reader = await connectUser(srv, uname('rd'), { compact: 1 });
  await reader.conn.ok('channel_join', { channelId: chan });
  // one writer account, N sessions one after another: N distinct key certificates
  const w = await connectUser(srv, uname('wr'));
  await w.conn.ok('channel_join', { channelId: chan });
  await w.conn.ok('logout', {});
  const t0 = Date.now();
  for (let i = 0; i < N; i++) {
    const k = newKey();
    const l = await w.conn.ok('login', {
      username: w.username,
      password: 'secret-pass',
      publicKey: k.pub,
    });
    const item = makeItem({ username: l.username, priv: k.priv, cert: l.cert }, chan, {
      text: `msg ${i}`,
    });
    await w.conn.ok('post', { message: item });
    ids.push(item.id);
    await w.conn.ok('logout', {});
  }
  console.log('logins took', Date.now() - t0);
  w.conn.close();
}, 120_000);

afterAll(async () => {
  owner?.conn.close();
  reader?.conn.close();
  await srv?.stop();
});

describe('implementer3 §3.11 many certificates', () => {
  const tabs = new CompactTables();
  it('every push rebuilds with a 256-entry receiver table (numbers held when read)', async () => {
    const got: string[] = [];
    while (got.length < N) {
      const f = await reader.conn.next((x) => x.t === 'ref' || x.t === 'm', 10_000);
      if (f.t === 'ref') tabs.take(f);
      else got.push(tabs.rebuild(f).id);
    }
    expect(got).toEqual(ids);
  });

  it('a sync page of 300 items by 300 certificates names at most 128 by number, the others carry cert; all rebuild', async () => {
    reader.conn.frames = [];
    const r = await reader.conn.req('sync', { channelId: chan, since: 0, limit: 500 }, 20_000);
    const refs = reader.conn.frames.filter((f) => f.t === 'ref');
    refs.forEach((f) => tabs.take(f));
    const msgs = r.body.messages;
    const ks = new Set(msgs.filter((m: any) => m.k !== undefined).map((m: any) => m.k));
    const whole = msgs.filter((m: any) => m.cert !== undefined);
    console.log(
      'distinct k',
      ks.size,
      'whole',
      whole.length,
      'refs',
      refs.length,
      'msgs',
      msgs.length,
    );
    expect(ks.size).toBeLessThanOrEqual(128);
    const rebuilt = msgs.map((m: any) => tabs.rebuild(m));
    const full = await owner.conn.ok('sync', { channelId: chan, since: 0, limit: 500 });
    expect(rebuilt).toEqual(full.messages);
    expect(checkStored(rebuilt[0], reader.serverKey)).toEqual([]);
    expect(ks.size).toBe(128); // "names the first 128 certificates by number"
    expect(msgs.slice(0, 128).every((m: any) => m.k !== undefined)).toBe(true);
    expect(msgs.slice(128).every((m: any) => m.cert !== undefined && m.k === undefined)).toBe(true);
  });

  it('random sync and history pages keep rebuilding with the 256-entry table (cascading evictions)', async () => {
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const full = await owner.conn.ok('sync', { channelId: chan, since: 0, limit: 500 });
    const pages: Array<[string, any]> = [['sync', { channelId: chan, since: 171, limit: 128 }]];
    for (let i = 0; i < 25; i++) {
      if (rnd(2)) pages.push(['sync', { channelId: chan, since: rnd(N), limit: 1 + rnd(128) }]);
      else
        pages.push([
          'history',
          { channelId: chan, limit: 1 + rnd(128), before: full.messages[1 + rnd(N - 1)].id },
        ]);
    }
    for (const [op, body] of pages) {
      reader.conn.frames = [];
      const r = await reader.conn.req(op, body, 20_000);
      reader.conn.frames.filter((f) => f.t === 'ref').forEach((f) => tabs.take(f));
      const rebuilt = r.body.messages.map((m: any) => tabs.rebuild(m));
      const want = await owner.conn.ok(op, body);
      expect(rebuilt, op + JSON.stringify(body)).toEqual(want.messages);
    }
  }, 60_000);
});
