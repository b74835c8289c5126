// Readers who are not members of a visitors' channel (§3.3) and avatars (§9.5).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import {
  startServer,
  connectUser,
  makeItem,
  uuidv7,
  uname,
  b64u,
  type ServerProc,
  type Session,
} from './implementer3-client.js';

let srv: ServerProc;
let a: Session;
let b: Session;
let open: string;

beforeAll(async () => {
  srv = await startServer();
  a = await connectUser(srv, uname('va'));
  b = await connectUser(srv, uname('vb'));
  open = uuidv7();
  await a.conn.ok('channel_create', { id: open, name: 'public', allowVisitors: true });
  await a.conn.ok('post', { message: makeItem(a, open, { text: 'public words' }) });
}, 60_000);
afterAll(async () => {
  a?.conn.close();
  b?.conn.close();
  await srv?.stop();
});

function png1x1() {
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(td) >>> 0);
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.from([0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0]);
  const idat = zlib.deflateSync(Buffer.from([0, 255, 0, 0]));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', idat),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

describe('implementer3 non-member readers', () => {
  it('a user who is not a member reads a visitors channel (history, sync, members, search, subscribe) but cannot post or type', async () => {
    expect((await b.conn.req('history', { channelId: open, limit: 5 })).error).toBeUndefined();
    expect(
      (await b.conn.req('sync', { channelId: open, since: 0, limit: 5 })).error,
    ).toBeUndefined();
    expect((await b.conn.ok('members', { channelId: open })).members).toEqual([a.username]);
    expect(
      (await b.conn.ok('search', { query: 'public', channelIds: [open] })).messages.length,
    ).toBe(1);
    expect(await b.conn.ok('subscribe', { channelIds: [open] })).toEqual({ channelIds: [open] });
    expect(
      (await b.conn.req('post', { message: makeItem(b, open, { text: 'nope' }) })).error?.code,
    ).toBe('E_NOT_MEMBER');
    expect((await b.conn.req('typing', { channelId: open })).error?.code).toBe('E_NOT_MEMBER');
    // search without channelIds covers memberships only
    expect((await b.conn.ok('search', { query: 'public' })).messages).toEqual([]);
  });
});

describe('implementer3 §9.5 avatars', () => {
  it('avatar_set answers {username, hash, ts}; avatar_get gives it back; avatars lists the hash; an avatar event goes to co-members', async () => {
    await b.conn.ok('channel_join', { channelId: open });
    const pic = png1x1();
    const ts = Date.now();
    const hash = b64u(crypto.createHash('sha256').update(pic).digest());
    const sig = b64u(
      crypto.sign(
        null,
        Buffer.from(
          JSON.stringify(['hchat/avatar/1', a.username.toLowerCase(), 'image/png', hash, ts]),
          'utf8',
        ),
        a.priv,
      ),
    );
    const avatar = {
      username: a.username,
      type: 'image/png',
      data: pic.toString('base64'),
      ts,
      sig,
      cert: a.cert,
    };
    const r = await a.conn.ok('avatar_set', { avatar });
    expect(r).toEqual({ username: a.username, hash: expect.any(String), ts });
    console.log('avatar hash', r.hash, 'sha256 b64url', hash);
    expect(r.hash).toBe(hash);
    expect((await b.conn.ok('avatar_get', { username: a.username })).avatar).toEqual(avatar);
    expect(await b.conn.ok('avatars', { usernames: [a.username, b.username] })).toEqual({
      avatars: [{ username: a.username, hash: r.hash, ts }],
    });
    const ev = await b.conn.next((f) => f.t === 'ev' && f.ev === 'avatar');
    console.log(
      'avatar event raw',
      b.conn.raw.find((x) => x.includes('"ev":"avatar"')),
    );
    expect(ev.body).toEqual({ username: a.username, hash: r.hash, ts });
    expect((await b.conn.req('avatar_get', { username: b.username })).error?.code).toBe(
      'E_NOT_FOUND',
    );
  });
  it('avatar_set: bad signature E_BAD_SIGNATURE; truncated PNG E_BAD_REQUEST; for another user E_FORBIDDEN', async () => {
    const pic = png1x1();
    const mk = (bytes: Buffer, who = a.username, key = a.priv, cert = a.cert) => {
      const ts = Date.now() + 1;
      const hash = b64u(crypto.createHash('sha256').update(bytes).digest());
      const sig = b64u(
        crypto.sign(
          null,
          Buffer.from(
            JSON.stringify(['hchat/avatar/1', who.toLowerCase(), 'image/png', hash, ts]),
            'utf8',
          ),
          key,
        ),
      );
      return { username: who, type: 'image/png', data: bytes.toString('base64'), ts, sig, cert };
    };
    const badSig = { ...mk(pic), sig: b64u(crypto.sign(null, Buffer.from('x'), a.priv)) };
    expect((await a.conn.req('avatar_set', { avatar: badSig })).error?.code).toBe(
      'E_BAD_SIGNATURE',
    );
    expect(
      (await a.conn.req('avatar_set', { avatar: mk(pic.subarray(0, pic.length - 3)) })).error?.code,
    ).toBe('E_BAD_REQUEST');
    expect(
      (await a.conn.req('avatar_set', { avatar: mk(pic, b.username, b.priv, b.cert) })).error?.code,
    ).toBe('E_FORBIDDEN');
  });
});
