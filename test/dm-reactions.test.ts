/**
 * Replies and reactions in direct messages (PROTOCOL.md §10.4 `replyTo`, `react`, `unreact`;
 * README "Direct messages"). Through the local API with real peers: a reply carries its
 * original's preview to every device, and each member's reactions (added, taken back) reach the
 * others, the sender's other device too. From outside, as a raw client that speaks §10 alone
 * (test/outsider/dm-lib.ts): a reaction or a reply that names a message of another conversation,
 * or of someone who is not a member, is refused and changes nothing; a member's reaction to
 * another's message applies, even one that arrives before its message.
 */
import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createTestnet, peerLog, signIn, waitFor, type TestPeer } from './testnet.js';
import { startSwarm } from './swarm.js';
import { mailboxSender, pairId, withDevice } from './outsider/dm-lib.js';
import { registerLogin } from './outsider/lib.js';
import { rawPayload, shown, startDm, type Read } from './dm-views.js';

/** The reactions of message `id` as `read` shows them: `emoji:users` each. */
async function reactionsOf(read: Read, dm: string, id: string): Promise<string[]> {
  const m = (await shown(read, dm)).get(id);
  return ((m?.reactions ?? []) as any[]).map((r) => `${r.emoji}:${r.users.join('+')}`);
}

const enc = encodeURIComponent;

describe('replies and reactions in direct messages', () => {
  it('a reply shows its original on every device, and each member’s reactions come and go everywhere', async () => {
    const s = await startSwarm(['alice', 'alice@2', 'bob']);
    const dm = await startDm((m, r, b) => s.call('alice', m, r, b), ['bob']);
    const read = (who: string) => (route: string) => s.call(who, 'GET', route);
    const first = await s.call('alice', 'POST', `/api/dms/${dm.id}/messages`, {
      text: 'lunch at noon?',
    });
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    const question = first.body.id as string;
    await waitFor(
      async () => (await shown(read('bob'), dm.id)).has(question),
      20_000,
      'bob to get the question',
    );

    // Bob answers it and reacts to it.
    const answer = await s.call('bob', 'POST', `/api/dms/${dm.id}/messages`, {
      text: 'yes, see you there',
      replyTo: question,
    });
    expect(answer.status, JSON.stringify(answer.body)).toBe(201);
    const thumbs = await s.call(
      'bob',
      'PUT',
      `/api/dms/${dm.id}/messages/${question}/reactions/${enc('👍')}`,
    );
    expect(thumbs.status, JSON.stringify(thumbs.body)).toBe(200);
    // Answered as a message is: every device online, so delivered within the 3 s it waits.
    expect(thumbs.body).toEqual({ id: expect.any(String), state: 'delivered' });
    // Bob's own view has them at once.
    expect(await reactionsOf(read('bob'), dm.id, question)).toEqual(['👍:bob']);

    for (const who of ['alice', 'alice@2'])
      await waitFor(
        async () => {
          const v = await shown(read(who), dm.id);
          const a = v.get(answer.body.id);
          return a && v.get(question)?.reactions?.length === 1 ? v : undefined;
        },
        20_000,
        `${who} to get bob's reply and reaction`,
      ).then((v) => {
        expect(v.get(answer.body.id).replyTo).toEqual({
          id: question,
          author: 'alice',
          text: 'lunch at noon?',
        });
        expect(v.get(question).reactions).toEqual([
          { emoji: '👍', count: 1, users: ['bob'], me: false },
        ]);
      });

    // Alice's second device adds hers; bob takes his back and adds another.
    const hers = await s.call(
      'alice@2',
      'PUT',
      `/api/dms/${dm.id}/messages/${question}/reactions/${enc('👍')}`,
    );
    expect(hers.status).toBe(200);
    await waitFor(
      async () =>
        (await reactionsOf(read('bob'), dm.id, question)).join() === '👍:alice+bob' || undefined,
      20_000,
      'bob to see alice’s reaction',
    );
    expect(
      (
        await s.call(
          'bob',
          'DELETE',
          `/api/dms/${dm.id}/messages/${question}/reactions/${enc('👍')}`,
        )
      ).status,
    ).toBe(200);
    expect(
      (await s.call('bob', 'PUT', `/api/dms/${dm.id}/messages/${question}/reactions/${enc('🎉')}`))
        .status,
    ).toBe(200);
    for (const who of ['alice', 'alice@2'])
      await waitFor(
        async () =>
          (await reactionsOf(read(who), dm.id, question)).join() === '👍:alice,🎉:bob' || undefined,
        20_000,
        `${who} to see bob take his 👍 back and add 🎉`,
      );
    const mine = (await shown(read('alice'), dm.id)).get(question).reactions;
    expect(mine).toEqual([
      { emoji: '👍', count: 1, users: ['alice'], me: true },
      { emoji: '🎉', count: 1, users: ['bob'], me: false },
    ]);
    // Reactions are not unread: alice read the conversation, bob's reply is all that came.
    expect((await s.call('alice', 'POST', `/api/dms/${dm.id}/read`)).status).toBe(204);
    expect((await s.call('alice', 'GET', `/api/dms/${dm.id}`)).body.unread).toBe(0);

    // What the API refuses, naming it.
    const none = crypto.randomUUID();
    const bad = [
      await s.call('bob', 'POST', `/api/dms/${dm.id}/messages`, { text: 'x', replyTo: none }),
      await s.call('bob', 'PUT', `/api/dms/${dm.id}/messages/${none}/reactions/${enc('👍')}`),
      await s.call('bob', 'PUT', `/api/dms/${dm.id}/messages/${question}/reactions/${enc('a b')}`),
      await s.call('bob', 'POST', `/api/dms/${dm.id}/messages`, { text: 'x', replyTo: 'nope' }),
    ];
    expect(bad.map((r) => r.status)).toEqual([404, 404, 400, 400]);
    expect(bad[0]!.body.error.message).toBe('no such message in this conversation');
    expect(bad[2]!.body.error.message).toMatch(/emoji/);
    expect(bad[3]!.body.error.message).toMatch(/replyTo/);
    // A deleted message can be neither answered nor reacted to, and shows no reactions.
    expect((await s.call('alice', 'DELETE', `/api/dms/${dm.id}/messages/${question}`)).status).toBe(
      200,
    );
    const gone = await s.call(
      'alice',
      'PUT',
      `/api/dms/${dm.id}/messages/${question}/reactions/${enc('👍')}`,
    );
    expect(gone.status).toBe(404);
    await waitFor(
      async () => {
        const v = await shown(read('bob'), dm.id);
        return v.get(question)?.deleted && v.get(answer.body.id).replyTo.deleted ? v : undefined;
      },
      20_000,
      'bob to see the question deleted, in its reply too',
    ).then((v) => {
      expect(v.get(question).reactions).toEqual([]);
      expect(v.get(answer.body.id).replyTo).toEqual({
        id: question,
        author: 'alice',
        deleted: true,
      });
    });
  });

  it('a reaction or reply naming a message of another conversation, or of a non-member, is refused; a member’s own apply, even before their message', async () => {
    const net = await createTestnet();
    const victim: TestPeer = await net.addPeer('victim');
    await signIn(victim, 'victim');
    const server = { host: net.serverHost, port: net.serverPort };
    const m = await withDevice(await registerLogin(server, 'mallory', 'mallory-pw'));
    await withDevice(await registerLogin(server, 'carol', 'carol-pw'));
    const start = (other: string) => startDm((m, r, b) => victim.call(m, r, b), [other]);
    const dm = await start('mallory');
    const other = await start('carol');
    expect(dm.id).toBe(pairId('mallory', 'victim'));
    const own = await victim.call('POST', `/api/dms/${dm.id}/messages`, { text: 'hello mallory' });
    const elsewhere = await victim.call('POST', `/api/dms/${other.id}/messages`, {
      text: 'for carol only',
    });
    expect([own.status, elsewhere.status]).toEqual([201, 201]);

    const send = await mailboxSender(m, 'victim');
    const head = { conversation: dm.id, members: ['mallory', 'victim'] };
    const read = (route: string) => victim.call('GET', route);
    const onOther = { target: elsewhere.body.id, targetAuthor: 'victim', emoji: '💩' };

    // Refused: a reaction to the victim's message of the conversation with carol, one naming a
    // non-member's message, and a reply quoting the message of the other conversation.
    await send(rawPayload({ t: 'react', ...head, ...onOther }));
    await send(
      rawPayload({ t: 'react', ...head, target: own.body.id, targetAuthor: 'carol', emoji: '💩' }),
    );
    await send(
      rawPayload({
        t: 'msg',
        ...head,
        text: 'quoting what is not mine to see',
        replyTo: { id: elsewhere.body.id, author: 'victim' },
      }),
    );
    // Applied: mallory's reaction to the victim's message, and one sent before mallory's own
    // message it names.
    const early = crypto.randomUUID();
    await send(
      rawPayload({ t: 'react', ...head, target: own.body.id, targetAuthor: 'victim', emoji: '👋' }),
    );
    await send(
      rawPayload({ t: 'react', ...head, target: early, targetAuthor: 'mallory', emoji: '✅' }),
    );
    await send(rawPayload({ t: 'msg', ...head, id: early, text: 'reacted before it came' }));

    const after = await waitFor(
      async () => {
        const v = await shown(read, dm.id);
        return v.get(early)?.reactions?.length && v.get(own.body.id)?.reactions?.length
          ? v
          : undefined;
      },
      20_000,
      "mallory's own reactions to reach the victim",
    );
    expect(after.get(own.body.id).reactions).toEqual([
      { emoji: '👋', count: 1, users: ['mallory'], me: false },
    ]);
    expect(after.get(early).reactions).toEqual([
      { emoji: '✅', count: 1, users: ['mallory'], me: false },
    ]);
    expect([...after.values()].some((x) => x.text === 'quoting what is not mine to see')).toBe(
      false,
    );
    expect(await reactionsOf(read, other.id, elsewhere.body.id)).toEqual([]);
    const refused = peerLog(victim)
      .filter((r) => r.ev === 'dm_refused')
      .map((r) => r.why);
    expect(refused).toEqual([
      'dm: react names a message of its conversation',
      'dm: react names a message of a member',
      'dm: a reply names a message of its conversation',
    ]);
  });
});
