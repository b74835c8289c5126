// Attack 9, written from docs/PROTOCOL.md §9.5 and docs/SECURITY.md "Files and avatars" alone.
// PROTOCOL.md §9.5 `avatar_set`: "an older `ts` than the one held changes nothing"; §6/§3.5
// event `avatar`: "a user set a new avatar". SECURITY.md: each change "is told to every
// co-member, and their pages fetch the new picture … from the server".
import { randomUUID } from 'node:crypto';
import { deflateSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cleanDirs,
  signedAvatar,
  sleep,
  startServer,
  wireUser,
  type Server,
} from './attack9-lib.js';

function crc32(buf: Buffer): number {
  let crc = 0xffffffff;
  for (const b of buf) {
    let c = (crc ^ b) & 0xff;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    crc = (crc >>> 8) ^ c;
  }
  return (crc ^ 0xffffffff) >>> 0;
}
function chunk(t: string, d: Buffer): Buffer {
  const l = Buffer.alloc(4);
  l.writeUInt32BE(d.length);
  const td = Buffer.concat([Buffer.from(t, 'latin1'), d]);
  const c = Buffer.alloc(4);
  c.writeUInt32BE(crc32(td));
  return Buffer.concat([l, td, c]);
}
export function png(seed: number): Buffer {
  const ih = Buffer.alloc(13);
  ih.writeUInt32BE(4, 0);
  ih.writeUInt32BE(4, 4);
  ih[8] = 8;
  ih[9] = 2;
  const raw = Buffer.alloc(13 * 4);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * seed) & 0xff;
  for (let y = 0; y < 4; y++) raw[y * 13] = 0;
  return Buffer.concat([
    Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk('IHDR', ih),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

describe('attack9: avatar_set that changes nothing', () => {
  let s: Server;
  beforeAll(async () => {
    s = await startServer();
  });
  afterAll(async () => {
    await s?.stop();
    cleanDirs();
  });

  it('is not pushed to every co-member as a new avatar', async () => {
    const a = await wireUser(s, 'alice');
    const b = await wireUser(s, 'bob');
    try {
      const ch = randomUUID();
      expect(
        (await a.w.req('channel_create', { id: ch, name: 'room', allowVisitors: false })).error,
      ).toBeUndefined();
      expect((await b.w.req('channel_join', { channelId: ch })).error).toBeUndefined();
      const now = Date.now();
      const first = await a.w.req('avatar_set', {
        avatar: signedAvatar('alice', 'image/png', png(7), now, a.k, a.cert),
      });
      expect(first.error).toBeUndefined();
      await sleep(500);
      const heard = () =>
        b.w.events.filter((e) => e.ev === 'avatar' || e.body?.kind === 'avatar').length;
      expect(heard()).toBe(1);

      // Three sets that, by §9.5, change nothing: an older picture, the same one again, and
      // another picture under the very same ts.
      await a.w.req('avatar_set', {
        avatar: signedAvatar('alice', 'image/png', png(11), now - 10_000, a.k, a.cert),
      });
      await a.w.req('avatar_set', {
        avatar: signedAvatar('alice', 'image/png', png(7), now, a.k, a.cert),
      });
      await a.w.req('avatar_set', {
        avatar: signedAvatar('alice', 'image/png', png(13), now - 1, a.k, a.cert),
      });
      await sleep(800);
      const held = await b.w.req('avatars', { usernames: ['alice'] });
      expect(held.body.avatars[0].hash).toBe(first.body.hash); // indeed nothing changed
      // Bob's connection was told of one new avatar, not four.
      expect(heard()).toBe(1);
    } finally {
      a.w.close();
      b.w.close();
    }
  });
});
