/**
 * Direct messages through real peers' local APIs (issue 15): safety numbers both sides read
 * alike, a server that substitutes a device key seen as a changed safety number and a warning,
 * blocking, visitors, group conversations, and one 1:1 conversation per pair.
 */
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { createTestnet, signIn, waitFor, type TestPeer } from './testnet.js';
import { ed25519KeyPair, x25519KeyPair } from '../src/e2e/primitives.js';
import { signPrekey } from '../src/e2e/x3dh.js';

/** Starts a DM once the peer's device is published at the server. */
async function startDm(p: TestPeer, members: string[]): Promise<any> {
  return waitFor(async () => {
    const r = await p.call('POST', '/api/dms', { members });
    if (r.status === 404) throw new Error(JSON.stringify(r.body));
    return r.status === 201 || r.status === 200 ? r.body : undefined;
  }, 10_000);
}

async function texts(p: TestPeer, id: string): Promise<string[]> {
  const r = await p.call('GET', `/api/dms/${id}/messages?limit=500`);
  return (r.body.messages as any[]).filter((m) => m.kind === 'message').map((m) => m.text);
}

async function shows(p: TestPeer, id: string, text: string): Promise<void> {
  await waitFor(async () => (await texts(p, id)).includes(text), 10_000, `${text} to show`);
}

async function pair() {
  const net = await createTestnet({ peers: 2 });
  const [alice, bob] = net.peers as [TestPeer, TestPeer];
  await signIn(alice, 'alice');
  await signIn(bob, 'bob');
  return { net, alice, bob };
}

describe('direct messages: trust, blocks, groups', () => {
  it('both sides read the same safety number; a server that swaps a device key changes it, warns in the conversation and clears the verification', async () => {
    const { net, alice, bob } = await pair();
    const dm = await startDm(alice, ['bob']);
    expect(
      (await alice.call('POST', `/api/dms/${dm.id}/messages`, { text: 'hi bob' })).status,
    ).toBe(201);
    await shows(bob, dm.id, 'hi bob');
    const a1 = (await alice.call('GET', `/api/dms/${dm.id}/safety`)).body.members[0];
    const b1 = (await bob.call('GET', `/api/dms/${dm.id}/safety`)).body.members[0];
    expect(a1.username).toBe('bob');
    expect(b1.username).toBe('alice');
    expect(a1.safetyNumber).toMatch(/^(\d{5} ){11}\d{5}$/);
    expect(b1.safetyNumber).toBe(a1.safetyNumber);
    const v = await alice.call('PUT', `/api/dms/${dm.id}/safety`, {
      username: 'bob',
      verified: true,
    });
    expect(v.body.members[0]).toMatchObject({ verified: true, changed: false });
    expect((await alice.call('GET', `/api/dms/${dm.id}`)).body).toMatchObject({
      verified: true,
      keyChanged: false,
    });

    // The server lies: bob's device now shows a key (and prekey) of someone else's.
    const mallory = ed25519KeyPair();
    const spk = x25519KeyPair();
    const db = new Database(path.join(net.dir, 'server', 'dms.db'));
    const changed = db
      .prepare(
        `UPDATE devices SET identity_key = ?, spk_key = ?, spk_sig = ? WHERE username_lc = 'bob'`,
      )
      .run(
        mallory.publicKey.toString('base64url'),
        spk.publicKey.toString('base64url'),
        signPrekey(mallory.secretKey, spk.publicKey).toString('base64url'),
      ).changes;
    db.prepare(
      `DELETE FROM prekeys WHERE device_id IN (SELECT device_id FROM devices WHERE username_lc = 'bob')`,
    ).run();
    db.close();
    expect(changed).toBe(1);

    const a2 = (await alice.call('GET', `/api/dms/${dm.id}/safety`)).body.members[0];
    expect(a2.safetyNumber).not.toBe(a1.safetyNumber);
    expect(a2).toMatchObject({ changed: true, verified: false });
    const conv = (await alice.call('GET', '/api/dms')).body.find((c: any) => c.id === dm.id);
    expect(conv).toMatchObject({ keyChanged: true, verified: false });
    const notices = (await alice.call('GET', `/api/dms/${dm.id}/messages`)).body.messages.filter(
      (m: any) => m.kind === 'notice',
    );
    expect(notices).toHaveLength(1);
    expect(notices[0]).toMatchObject({ author: 'bob' });
    expect(notices[0].text).toMatch(/bob's safety number changed/);
    // bob's own view never matched the substituted key: the two numbers now differ.
    const b2 = (await bob.call('GET', `/api/dms/${dm.id}/safety`)).body.members[0];
    expect(b2.safetyNumber).not.toBe(a2.safetyNumber);

    // Verifying again acknowledges the change.
    const again = await alice.call('PUT', `/api/dms/${dm.id}/safety`, {
      username: 'bob',
      verified: true,
    });
    expect(again.body.members[0]).toMatchObject({ verified: true, changed: false });
    expect((await alice.call('GET', `/api/dms/${dm.id}`)).body.keyChanged).toBe(false);
  });

  it('a blocked user reaches none of the blocker’s devices, by any path, until unblocked', async () => {
    const { net, alice, bob } = await pair();
    const bob2 = await net.addPeer('bob2');
    await bob2.call('POST', '/api/login', { username: 'bob', password: 'bob-pw' });
    const dm = await startDm(alice, ['bob']);
    await alice.call('POST', `/api/dms/${dm.id}/messages`, { text: 'one' });
    await shows(bob, dm.id, 'one');
    await shows(bob2, dm.id, 'one');
    // bob answers, so alice may reach bob's devices directly from now on.
    await bob.call('POST', `/api/dms/${dm.id}/messages`, { text: 'two' });
    await shows(alice, dm.id, 'two');

    expect((await bob.call('PUT', '/api/blocks/alice')).body).toEqual({ blocked: ['alice'] });
    await waitFor(async () => (await bob2.call('GET', '/api/blocks')).body.blocked?.length === 1);
    const r = await alice.call('POST', `/api/dms/${dm.id}/messages`, { text: 'three' });
    expect(r.status).toBe(201);
    // alice cannot tell: her message is delivered as any other.
    await waitFor(async () => {
      const ms = (await alice.call('GET', `/api/dms/${dm.id}/messages`)).body.messages;
      return ms.find((m: any) => m.text === 'three')?.state === 'delivered';
    });
    // bob's peer refuses to write to alice while she is blocked.
    expect((await bob.call('POST', `/api/dms/${dm.id}/messages`, { text: 'x' })).status).toBe(403);

    expect((await bob.call('DELETE', '/api/blocks/alice')).body).toEqual({ blocked: [] });
    await alice.call('POST', `/api/dms/${dm.id}/messages`, { text: 'four' });
    await shows(bob, dm.id, 'four');
    await shows(bob2, dm.id, 'four');
    for (const p of [bob, bob2]) expect(await texts(p, dm.id)).not.toContain('three');
  });

  it('visitors have no DMs; unknown users and bad member lists are refused with reasons', async () => {
    const { net, alice } = await pair();
    const visitor = await net.addPeer('visitor');
    await visitor.call('POST', '/api/visitor', { name: 'Guest' });
    for (const [m, route, body] of [
      ['GET', '/api/dms'],
      ['POST', '/api/dms', { members: ['alice'] }],
      ['GET', '/api/blocks'],
    ] as const) {
      const r = await visitor.call(m, route, body);
      expect(r.status, route).toBe(403);
      expect(r.body.error.message).toMatch(/visitors/);
    }
    await startDm(alice, ['bob']);
    const unknown = await alice.call('POST', '/api/dms', { members: ['nobody-here'] });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.message).toMatch(/nobody-here/);
    expect((await alice.call('POST', '/api/dms', { members: ['alice'] })).status).toBe(400);
    expect((await alice.call('POST', '/api/dms', { members: ['bob', 'BOB'] })).status).toBe(400);
    expect((await alice.call('POST', '/api/dms', { members: [] })).status).toBe(400);
    const many = Array.from({ length: 10 }, (_, i) => `user${i}`);
    expect((await alice.call('POST', '/api/dms', { members: many })).status).toBe(400);
  });

  it('a group of three: each member’s message reaches the others once; two users share one 1:1 conversation however it was started', async () => {
    const { net, alice, bob } = await pair();
    const carol = await net.addPeer('carol');
    await signIn(carol, 'carol');
    // Both start the same 1:1 at once: one conversation.
    const [x, y] = await Promise.all([startDm(alice, ['bob']), startDm(bob, ['alice'])]);
    expect(x.id).toBe(y.id);
    expect((await alice.call('POST', '/api/dms', { members: ['bob'] })).status).toBe(200);

    const g = await startDm(alice, ['bob', 'carol']);
    expect(g.members).toEqual(['alice', 'bob', 'carol']);
    expect(g.id).not.toBe(x.id);
    await alice.call('POST', `/api/dms/${g.id}/messages`, { text: 'hello @carol and bob' });
    await shows(carol, g.id, 'hello @carol and bob');
    await shows(bob, g.id, 'hello @carol and bob');
    const cl = (await carol.call('GET', '/api/dms')).body.find((c: any) => c.id === g.id);
    expect(cl).toMatchObject({ unread: 1, mentions: 1, title: 'alice, bob' });
    expect((await bob.call('GET', '/api/dms')).body.find((c: any) => c.id === g.id)).toMatchObject({
      unread: 1,
      mentions: 0,
    });
    await bob.call('POST', `/api/dms/${g.id}/messages`, { text: 'from bob' });
    await carol.call('POST', `/api/dms/${g.id}/messages`, { text: 'from carol' });
    for (const p of [alice, bob, carol]) {
      await shows(p, g.id, 'from bob');
      await shows(p, g.id, 'from carol');
      expect((await texts(p, g.id)).sort()).toEqual(
        ['from bob', 'from carol', 'hello @carol and bob'].sort(),
      );
    }
    expect((await carol.call('POST', `/api/dms/${g.id}/read`)).status).toBe(204);
    expect((await carol.call('GET', `/api/dms/${g.id}`)).body).toMatchObject({
      unread: 0,
      mentions: 0,
    });
  });
});
