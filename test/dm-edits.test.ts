/**
 * Editing and deleting direct messages (PROTOCOL.md §10.4 `edit` and `delete`; README "Direct
 * messages"). Through the local API with real peers: an author's edit and deletion reach every
 * device of the conversation, the sender's other device included, and a deleted text is gone
 * from each device's store. From outside, as a raw client that speaks §10 alone
 * (test/outsider/dm-lib.ts): a member's edit or deletion of another member's message is refused
 * and changes nothing, its own apply, and a deletion that arrives before its message still
 * deletes it.
 */
import crypto from 'node:crypto';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { createTestnet, peerLog, signIn, waitFor, type TestPeer } from './testnet.js';
import { startSwarm } from './swarm.js';
import { mailboxSender, pairId, withDevice } from './outsider/dm-lib.js';
import { registerLogin } from './outsider/lib.js';
import { rawPayload, shown, startDm } from './dm-views.js';

/** The texts of `dms.db` rows in a peer's data folder that contain `needle`. */
function storedWith(dataDir: string, needle: string): string[] {
  const db = new Database(path.join(dataDir, 'dms.db'), { readonly: true });
  try {
    return (
      db.prepare('SELECT text FROM messages WHERE instr(text, ?) > 0').all(needle) as Array<{
        text: string;
      }>
    ).map((r) => r.text);
  } finally {
    db.close();
  }
}

describe('editing and deleting direct messages', () => {
  it("an author's edit and deletion reach every device of the conversation, its own other device too; nobody else may make them", async () => {
    const s = await startSwarm(['alice', 'alice@2', 'bob']);
    const dm = await startDm((m, r, b) => s.call('alice', m, r, b), ['bob']);
    const post = async (text: string) => {
      const r = await s.call('alice', 'POST', `/api/dms/${dm.id}/messages`, { text });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      return r.body.id as string;
    };
    const typo = await post('see you at 5 tomorow');
    const secret = await post('the door code is SECRET-4471');
    const others = ['alice@2', 'bob'] as const;
    for (const d of others)
      await waitFor(
        async () => (await shown((r) => s.call(d, 'GET', r), dm.id)).has(secret),
        20_000,
        `${d} to get both messages`,
      );

    const edit = await s.call('alice', 'PATCH', `/api/dms/${dm.id}/messages/${typo}`, {
      text: 'see you at 5 tomorrow',
    });
    expect(edit.status, JSON.stringify(edit.body)).toBe(200);
    // The writer's own view changes at once.
    const here = (await shown((r) => s.call('alice', 'GET', r), dm.id)).get(typo);
    expect(here).toMatchObject({ text: 'see you at 5 tomorrow', edited: expect.any(Number) });
    const del = await s.call('alice', 'DELETE', `/api/dms/${dm.id}/messages/${secret}`);
    expect(del.status, JSON.stringify(del.body)).toBe(200);
    expect((await shown((r) => s.call('alice', 'GET', r), dm.id)).get(secret)).toMatchObject({
      deleted: true,
      text: '',
    });

    for (const d of others) {
      await waitFor(
        async () => {
          const m = await shown((r) => s.call(d, 'GET', r), dm.id);
          return m.get(typo)?.text === 'see you at 5 tomorrow' && m.get(secret)?.deleted === true;
        },
        20_000,
        `${d} to show the edit and the deletion`,
      );
      const m = await shown((r) => s.call(d, 'GET', r), dm.id);
      expect(m.get(typo).edited, d).toBe(here.edited);
      expect(m.get(secret).text, d).toBe('');
      // The list's preview is the last message still there.
      const list = await s.call(d, 'GET', '/api/dms');
      expect(list.body.find((c: any) => c.id === dm.id).last.text, d).toBe('see you at 5 tomorrow');
    }
    // Nothing of the deleted text stays in any device's store.
    for (const d of ['alice', ...others])
      expect(storedWith(s.peers[d]!.data, 'SECRET-4471'), d).toEqual([]);

    // bob may neither edit nor delete alice's message; alice may not edit a deleted one.
    const forged = await s.call('bob', 'PATCH', `/api/dms/${dm.id}/messages/${typo}`, {
      text: 'forged',
    });
    expect([forged.status, forged.body.error?.code]).toEqual([403, 'E_FORBIDDEN']);
    const gone = await s.call('bob', 'DELETE', `/api/dms/${dm.id}/messages/${typo}`);
    expect([gone.status, gone.body.error?.code]).toEqual([403, 'E_FORBIDDEN']);
    const late = await s.call('alice', 'PATCH', `/api/dms/${dm.id}/messages/${secret}`, {
      text: 'back',
    });
    expect([late.status, late.body.error?.code]).toEqual([404, 'E_NOT_FOUND']);
    const none = await s.call(
      'alice',
      'DELETE',
      `/api/dms/${dm.id}/messages/${crypto.randomUUID()}`,
    );
    expect([none.status, none.body.error?.code]).toEqual([404, 'E_NOT_FOUND']);
    const bad = await s.call('alice', 'PATCH', `/api/dms/${dm.id}/messages/${typo}`, { text: '' });
    expect([bad.status, bad.body.error?.code]).toEqual([400, 'E_BAD_REQUEST']);
    for (const d of ['alice', ...others])
      expect((await shown((r) => s.call(d, 'GET', r), dm.id)).get(typo).text, d).toBe(
        'see you at 5 tomorrow',
      );
  });

  it("a member's edit or deletion of another member's message is refused and changes nothing; its own apply, even a deletion that comes before its message", async () => {
    const net = await createTestnet();
    const victim: TestPeer = await net.addPeer('victim');
    await signIn(victim, 'victim');
    const m = await withDevice(
      await registerLogin({ host: net.serverHost, port: net.serverPort }, 'mallory', 'mallory-pw'),
    );
    const dm = await startDm((m, r, b) => victim.call(m, r, b), ['mallory']);
    expect(dm.id).toBe(pairId('mallory', 'victim'));
    const own = await victim.call('POST', `/api/dms/${dm.id}/messages`, {
      text: 'I owe mallory nothing',
    });
    expect(own.status).toBe(201);

    const send = await mailboxSender(m, 'victim');
    const head = { conversation: dm.id, members: ['mallory', 'victim'] };
    const read = (route: string) => victim.call('GET', route);

    // The victim's message: mallory's edit and deletion of it are refused.
    await send(rawPayload({ t: 'edit', ...head, target: own.body.id, text: 'I owe mallory $500' }));
    await send(rawPayload({ t: 'delete', ...head, target: own.body.id }));
    // Mallory's own: a message, then its edit; and a deletion sent before the message it deletes.
    const mine = crypto.randomUUID();
    const early = crypto.randomUUID();
    await send(rawPayload({ t: 'msg', ...head, id: mine, text: 'hello victim' }));
    await send(rawPayload({ t: 'edit', ...head, target: mine, text: 'hello, victim' }));
    await send(rawPayload({ t: 'delete', ...head, target: early }));
    await send(rawPayload({ t: 'msg', ...head, id: early, text: 'EARLY-SECRET words' }));

    const after = await waitFor(
      async () => {
        const v = await shown(read, dm.id);
        return v.get(mine)?.text === 'hello, victim' && v.has(early) ? v : undefined;
      },
      20_000,
      "mallory's own messages and changes to reach the victim",
    );
    expect(after.get(own.body.id)).toMatchObject({ text: 'I owe mallory nothing' });
    expect(after.get(own.body.id).edited).toBeUndefined();
    expect(after.get(own.body.id).deleted).toBeUndefined();
    expect(after.get(mine).edited).toEqual(expect.any(Number));
    expect(after.get(early)).toMatchObject({ deleted: true, text: '' });
    expect(storedWith(victim.dataDir, 'EARLY-SECRET')).toEqual([]);
    const refused = peerLog(victim)
      .filter((r) => r.ev === 'dm_refused')
      .map((r) => r.why);
    expect(refused).toEqual([
      'dm: only its author may edit a message',
      'dm: only its author may delete a message',
    ]);
  });
});
