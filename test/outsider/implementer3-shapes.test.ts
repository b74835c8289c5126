// §2.1 shapes and ranges of a new message, and a few request limits.
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
let alice: Session;
let chan: string;

beforeAll(async () => {
  srv = await startServer();
  alice = await connectUser(srv, uname('sa'));
  chan = uuidv7();
  await alice.conn.ok('channel_create', { id: chan, name: 'shapes', allowVisitors: false });
}, 60_000);
afterAll(async () => {
  alice?.conn.close();
  await srv?.stop();
});

const post = (body: any, ts?: number) =>
  alice.conn.req('post', { message: makeItem(alice, chan, body, ts) });

describe('implementer3 shapes', () => {
  it('an unknown member of an item is ignored (accepted)', async () => {
    const it1 = { ...makeItem(alice, chan, { text: 'with a future member' }), futureMember: 'x' };
    const r = await alice.conn.req('post', { message: it1 });
    expect(r.error).toBeUndefined();
    const h = await alice.conn.ok('sync', { channelId: chan, since: r.body.seq - 1, limit: 1 });
    expect(h.messages[0].futureMember).toBeUndefined();
  });
  it('text: 4000 code points outside the BMP are taken (16,000 bytes); 4001 characters are not', async () => {
    expect((await post({ text: '😀'.repeat(4000) })).error).toBeUndefined();
    expect((await post({ text: 'a'.repeat(4001) })).error?.code).toBe('E_BAD_REQUEST');
  });
  it('mentions: 51 names or a duplicate are E_BAD_REQUEST; 50 distinct are taken', async () => {
    const names = Array.from({ length: 51 }, (_, i) => `user${i}`);
    expect((await post({ text: 'hi', mentions: names })).error?.code).toBe('E_BAD_REQUEST');
    expect((await post({ text: 'hi', mentions: ['abc', 'abc'] })).error?.code).toBe(
      'E_BAD_REQUEST',
    );
    expect((await post({ text: 'hi', mentions: names.slice(0, 50) })).error).toBeUndefined();
    expect((await post({ text: 'hi', mentions: ['UPPER'] })).error?.code).toBe('E_BAD_REQUEST');
  });
  it('lc 65536 and ts 2^48 are E_BAD_REQUEST', async () => {
    const it1 = makeItem(alice, chan, { text: 'lc' });
    it1.lc = 65536;
    expect((await alice.conn.req('post', { message: it1 })).error?.code).toBe('E_BAD_REQUEST');
    const it2 = makeItem(alice, chan, { text: 'ts' }, 2 ** 48 - 1);
    it2.ts = 2 ** 48;
    expect((await alice.conn.req('post', { message: it2 })).error?.code).toBe('E_BAD_REQUEST');
  });
  it('emoji with a space, react without emoji: E_BAD_REQUEST', async () => {
    const m = makeItem(alice, chan, { text: 'target' });
    await alice.conn.ok('post', { message: m });
    expect((await post({ kind: 'react', target: m.id, emoji: 'a b' })).error?.code).toBe(
      'E_BAD_REQUEST',
    );
    expect((await post({ kind: 'react', target: m.id })).error?.code).toBe('E_BAD_REQUEST');
    const react = makeItem(alice, chan, { kind: 'react', target: m.id, emoji: '🎉' });
    await alice.conn.ok('post', { message: react });
    // a react targeting a react is E_NOT_FOUND
    expect((await post({ kind: 'react', target: react.id, emoji: '👍' })).error?.code).toBe(
      'E_NOT_FOUND',
    );
  });
  it('history before = the id of a reaction (no message of this channel) is E_NOT_FOUND', async () => {
    const m = makeItem(alice, chan, { text: 'target two' });
    await alice.conn.ok('post', { message: m });
    const react = makeItem(alice, chan, { kind: 'react', target: m.id, emoji: '🎉' });
    await alice.conn.ok('post', { message: react });
    const r = await alice.conn.req('history', { channelId: chan, limit: 5, before: react.id });
    console.log('history before=react id ->', JSON.stringify(r).slice(0, 300));
    expect(r.error?.code).toBe('E_NOT_FOUND');
  });
  it('search before = the id of a reaction answers as an unknown id: no messages', async () => {
    const m = makeItem(alice, chan, { text: 'target three' });
    await alice.conn.ok('post', { message: m });
    const react = makeItem(alice, chan, { kind: 'react', target: m.id, emoji: '🎉' });
    await alice.conn.ok('post', { message: react });
    // search: 'before' must be a message of a searched channel; any other id answers as an unknown one (no messages)
    const s = await alice.conn.req('search', {
      query: 'target',
      channelIds: [chan],
      before: react.id,
    });
    console.log('search before=react id ->', JSON.stringify(s).slice(0, 300));
    expect(s.body?.messages).toEqual([]);
  });
  it('req id 2^32-1 is a valid envelope; op of 65 characters', async () => {
    alice.conn.send({ t: 'req', id: 2 ** 32 - 1, op: 'reflect', body: {} });
    const r = await alice.conn.next((f) => f.t === 'res' && f.id === 2 ** 32 - 1);
    expect(r.body.ip).toBe('127.0.0.1');
    expect(Number.isInteger(r.body.udpPort)).toBe(true);
  });
  it('search: query over 200 characters and limit 51 are E_BAD_REQUEST; subscribe over 1,000 ids too', async () => {
    expect((await alice.conn.req('search', { query: 'a'.repeat(201) })).error?.code).toBe(
      'E_BAD_REQUEST',
    );
    expect((await alice.conn.req('search', { query: 'a', limit: 51 })).error?.code).toBe(
      'E_BAD_REQUEST',
    );
    const ids = Array.from({ length: 1001 }, () => uuidv7());
    expect((await alice.conn.req('subscribe', { channelIds: ids })).error?.code).toBe(
      'E_BAD_REQUEST',
    );
  });
  it('a frame over 1 MiB with a session is fatal E_FRAME_TOO_LARGE', async () => {
    const s = await connectUser(srv, alice.username, { register: false });
    const h = Buffer.alloc(4);
    h.writeUInt32BE(1048577);
    s.conn.sock.write(h);
    const e = await s.conn.next((f) => f.t === 'error');
    expect(e.code).toBe('E_FRAME_TOO_LARGE');
  });

  it('before = a message of another channel: history E_NOT_FOUND, search (not searching that channel) no messages', async () => {
    const other = uuidv7();
    await alice.conn.ok('channel_create', { id: other, name: 'other', allowVisitors: false });
    const m = makeItem(alice, other, { text: 'target elsewhere' });
    await alice.conn.ok('post', { message: m });
    expect(
      (await alice.conn.req('history', { channelId: chan, limit: 5, before: m.id })).error?.code,
    ).toBe('E_NOT_FOUND');
    const s = await alice.conn.ok('search', { query: 'target', channelIds: [chan], before: m.id });
    expect(s.messages).toEqual([]);
  });
});
