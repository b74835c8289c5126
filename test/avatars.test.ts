/**
 * Avatars (issue 14 item 5) through real peers' local APIs: set one, and a co-member hears of it
 * and shows it; a change reaches it too; nobody sets another's; a cached avatar tampered with on
 * disk is not shown; visitors have none. The pictures are real ones (test/pictures.ts): bytes that
 * are no picture of their type are refused.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  authHeaders,
  collectEvents,
  createTestnet,
  rawSession,
  signIn,
  waitFor,
  type TestPeer,
} from './testnet.js';
import { signAvatar } from '../src/shared/avatar-sig.js';
import type { AvatarStore } from '../src/store/avatar-store.js';
import { png, WEBP_LOSSY_12x8 } from './pictures.js';
import { FILE_LIMITS } from '../src/shared/limits.js';

async function setAvatar(p: TestPeer, data: Buffer, type = 'image/png') {
  const res = await fetch(new URL('/api/me/avatar', p.uiUrl), {
    method: 'PUT',
    headers: { ...authHeaders(p.uiUrl), 'content-type': type },
    body: new Uint8Array(data),
  });
  return { status: res.status, body: await res.json() };
}

async function getAvatar(p: TestPeer, user: string) {
  const res = await fetch(new URL(`/api/avatars/${user}`, p.uiUrl), {
    headers: authHeaders(p.uiUrl),
  });
  return { status: res.status, data: Buffer.from(await res.arrayBuffer()), headers: res.headers };
}

async function pair() {
  const net = await createTestnet({ peers: 2 });
  const [alice, bob] = net.peers as [TestPeer, TestPeer];
  await signIn(alice, 'alice');
  await signIn(bob, 'bob');
  const ch = (await alice.call('POST', '/api/channels', { name: 'general' })).body.id as string;
  await bob.call('POST', `/api/channels/${ch}/join`);
  return { net, alice, bob, ch };
}

describe('avatars', () => {
  it('set by its user, shown to a co-member, who hears when it changes', async () => {
    const { alice, bob } = await pair();
    const events = collectEvents(bob.uiUrl);
    await events.ready;
    const first = png(64, 64, 1);
    const set = await setAvatar(alice, first);
    expect(set.status, JSON.stringify(set.body)).toBe(200);
    expect(set.body).toMatchObject({ username: 'alice' });
    await waitFor(
      () => events.events.some((e) => e.event === 'avatar' && e.data.hash === set.body.hash),
      5000,
      'bob hears of it',
    );
    const got = await getAvatar(bob, 'alice');
    expect(got.status).toBe(200);
    expect(got.data.equals(first)).toBe(true);
    expect(got.headers.get('content-type')).toBe('image/png');
    expect(got.headers.get('x-content-type-options')).toBe('nosniff');
    expect((await bob.call('GET', '/api/avatars?users=alice,bob')).body).toEqual([
      { username: 'alice', hash: set.body.hash, ts: set.body.ts },
    ]);
    expect((await getAvatar(bob, 'bob')).status).toBe(404);
    // A new one: bob hears of it and shows it at once (not the cached one).
    const second = WEBP_LOSSY_12x8;
    const again = await setAvatar(alice, second, 'image/webp');
    await waitFor(
      () => events.events.some((e) => e.event === 'avatar' && e.data.hash === again.body.hash),
      5000,
      'the change',
    );
    const now = await getAvatar(bob, 'alice');
    expect(now.data.equals(second)).toBe(true);
    expect(now.headers.get('content-type')).toBe('image/webp');
    // Too big, or not a picture type: refused with the reason.
    expect((await setAvatar(alice, crypto.randomBytes(256 * 1024 + 1))).body.error.code).toBe(
      'E_FILE_TOO_LARGE',
    );
    expect((await setAvatar(alice, first, 'image/svg+xml')).body.error.code).toBe('E_BAD_REQUEST');
    // Bytes that are not a whole picture of the type they are sent as: refused before signing.
    const notJpeg = await setAvatar(alice, first, 'image/jpeg');
    expect(notJpeg.status).toBe(400);
    expect(notJpeg.body.error).toMatchObject({ code: 'E_BAD_REQUEST' });
    expect(notJpeg.body.error.message).toMatch(/image\/jpeg.*not a JPEG/);
    expect((await getAvatar(bob, 'alice')).data.equals(second)).toBe(true);
  });

  // README "Avatars": a page shows a new avatar at once by asking for it by its hash
  // (`/api/avatars/<user>?v=<hash>`). A page can hear of the change (another tab, another
  // device, the user's own page) before its peer does: a co-member's peer holding the old one,
  // not yet told, answered the old bytes to the new version's address (CI, under load).
  it("asked for by its hash, a co-member's peer answers that version even before it hears of the change", async () => {
    const { net, alice, bob } = await pair();
    expect((await setAvatar(alice, png(32, 32, 3))).status).toBe(200);
    await waitFor(
      async () => (await getAvatar(bob, 'alice')).status === 200,
      10_000,
      'bob has one',
    );
    // alice's next avatar reaches the server's store, its push to bob not yet sent (as while it is
    // on its way): signed by a session of hers and stored as the server stores it.
    const link = await net.rawLink();
    const s = await rawSession(link, { username: 'alice', password: 'alice-pw' });
    const next = png(32, 32, 11);
    const record = signAvatar(
      { username: 'alice', type: 'image/png', data: next, ts: Date.now() },
      s.keys,
      s.cert,
    );
    const stored = await (net.server as unknown as { avatarStore: AvatarStore }).avatarStore.put(
      record,
    );
    const res = await fetch(new URL(`/api/avatars/alice?v=${stored.hash}`, bob.uiUrl), {
      headers: authHeaders(bob.uiUrl),
    });
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(next)).toBe(true);
    // Without a version, the copy checked a moment ago is still answered (no server request).
    expect((await getAvatar(bob, 'alice')).data.equals(next)).toBe(true);
    link.stop();
  });

  it("nobody sets another's avatar; a tampered cached one is not shown", async () => {
    const { net, alice, bob } = await pair();
    const real = png(48, 48, 2);
    await setAvatar(alice, real);
    expect((await getAvatar(bob, 'alice')).data.equals(real)).toBe(true);
    // mallory signs a record claiming alice, with her own session (the certificate is hers).
    const raw = await net.rawLink();
    await raw.request('register', { username: 'mallory', password: 'mallory-pw' });
    const mallory = await rawSession(raw, { username: 'mallory', password: 'mallory-pw' });
    const forged = signAvatar(
      { username: 'alice', type: 'image/png', data: crypto.randomBytes(100), ts: Date.now() },
      mallory.keys,
      mallory.cert,
    );
    await expect(raw.request('avatar_set', { avatar: forged })).rejects.toMatchObject({
      code: 'E_FORBIDDEN',
    });
    // Her own, with a signature that does not match the picture.
    const own = signAvatar(
      { username: 'mallory', type: 'image/png', data: Buffer.from('a'), ts: Date.now() },
      mallory.keys,
      mallory.cert,
    );
    await expect(
      raw.request('avatar_set', { avatar: { ...own, data: Buffer.from('b').toString('base64') } }),
    ).rejects.toMatchObject({
      code: 'E_BAD_SIGNATURE',
    });
    expect((await getAvatar(bob, 'alice')).data.equals(real)).toBe(true);
    // bob's cached copy changed on disk while bob is down: it is not shown; the server's is.
    const file = path.join(bob.dataDir, 'avatars', 'alice.json');
    const rec = JSON.parse(fs.readFileSync(file, 'utf8'));
    fs.writeFileSync(
      file,
      JSON.stringify({ ...rec, data: crypto.randomBytes(3000).toString('base64') }),
    );
    const bob2 = await net.restartPeer(bob);
    await waitFor(
      async () => (await bob2.call('GET', '/api/me')).body.connection === 'connected',
      5000,
      'bob back',
    );
    expect((await getAvatar(bob2, 'alice')).data.equals(real)).toBe(true);
  });

  // SECURITY.md "Files and avatars": each change is told to every co-member, whose pages fetch
  // the new picture from the server; a user changing it in a loop would have the server send
  // 256 KiB to each of them every time. FILE_LIMITS.avatarBurst changes at once, then one per
  // avatarEveryMs.
  it('avatar changes are budgeted per user: the one past the burst is 429 and changes nothing', async () => {
    const { alice, bob } = await pair();
    const events = collectEvents(bob.uiUrl);
    await events.ready;
    let last = '';
    for (let i = 0; i < FILE_LIMITS.avatarBurst; i++) {
      const r = await setAvatar(alice, png(40, 40, 10 + i));
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      last = r.body.hash;
    }
    const over = await setAvatar(alice, png(40, 40, 99));
    expect(over.status, JSON.stringify(over.body)).toBe(429);
    expect(over.body.error.code).toBe('E_RATE_LIMITED');
    expect(over.body.error.message).toMatch(/avatar/);
    // What everyone sees is the last one taken; bob heard of no more than the burst.
    expect((await bob.call('GET', '/api/avatars?users=alice')).body).toMatchObject([
      { username: 'alice', hash: last },
    ]);
    expect(
      (await getAvatar(bob, 'alice')).data.equals(png(40, 40, 10 + FILE_LIMITS.avatarBurst - 1)),
    ).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    expect(events.events.filter((e) => e.event === 'avatar').length).toBe(FILE_LIMITS.avatarBurst);
    // Another user's budget is their own; alice's session goes on (she still posts).
    expect((await setAvatar(bob, png(40, 40, 7))).status).toBe(200);
    const ch = (await alice.call('GET', '/api/channels')).body[0].id as string;
    expect(
      (await alice.call('POST', `/api/channels/${ch}/messages`, { text: 'still here' })).status,
    ).toBe(201);
  });

  it('visitors have no avatar to set, and hear of a change of a member of a channel they view', async () => {
    const net = await createTestnet({ peers: 2 });
    const [alice, v] = net.peers as [TestPeer, TestPeer];
    await signIn(alice, 'alice');
    const ch = (await alice.call('POST', '/api/channels', { name: 'open', allowVisitors: true }))
      .body.id as string;
    expect((await v.call('POST', '/api/visitor', { name: 'guest' })).status).toBe(200);
    expect((await v.call('POST', `/api/channels/${ch}/join`)).status).toBe(200);
    expect((await setAvatar(v, Buffer.from('x'))).body.error.code).toBe('E_VISITOR_READ_ONLY');
    const events = collectEvents(v.uiUrl);
    await events.ready;
    const pic = png(32, 32, 3);
    const set = await setAvatar(alice, pic);
    await waitFor(
      () => events.events.some((e) => e.event === 'avatar' && e.data.hash === set.body.hash),
      5000,
      'the visitor hears of it',
    );
    expect((await getAvatar(v, 'alice')).data.equals(pic)).toBe(true);
  });
});
