/**
 * A peer's DM store and trust rules on their own (issue 15; findings of the review): a message
 * is its author's, so another member reusing its id never hides it; a replaced signed prekey
 * stays 30 days after its successor, so messages started with it still open; and a server that
 * empties a contact's device list cannot clear the key-change warning.
 */
import fs from 'node:fs';
import { describe, expect, it, onTestFinished } from 'vitest';
import { tempDir } from './testnet.js';
import { PeerDmStore, type DmMessageRow } from '../src/store/peer-dm-store.js';
import { DmSessions } from '../src/peer/dm-sessions.js';
import { DmTrust } from '../src/peer/dm-trust.js';
import { ed25519KeyPair } from '../src/e2e/primitives.js';

function store(): PeerDmStore {
  const dir = tempDir('hchat-dmstore-');
  const s = new PeerDmStore(dir);
  onTestFinished(() => {
    s.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return s;
}

const message = (author: string, text: string): DmMessageRow => ({
  id: '0190a0b0-0000-4000-8000-000000000001',
  conversation: '0190a0b0-0000-4000-8000-0000000000aa',
  kind: 'message',
  author,
  ts: Date.now(),
  text,
  mentions: [],
  state: 'delivered',
  source: 'server',
});

const key = () => ed25519KeyPair().publicKey.toString('base64url');

describe('a peer’s DM store and trust', () => {
  it('a message is its author’s: another member reusing its id adds its own row and hides nothing', () => {
    const s = store();
    s.addConversation('bob', message('alice', '').conversation, ['alice', 'bob', 'mallory'], 1);
    expect(s.addMessage('bob', message('mallory', 'fake'), { unread: true })).toBe(true);
    expect(s.addMessage('bob', message('alice', 'real'), { unread: true })).toBe(true);
    // The same author's copy again is a duplicate.
    expect(s.addMessage('bob', message('alice', 'real'), { unread: true })).toBe(false);
    const texts = s.messages('bob', message('alice', '').conversation, 10).map((m) => m.text);
    expect(texts.sort()).toEqual(['fake', 'real']);
    expect(s.message('bob', message('alice', '').id, 'alice')?.text).toBe('real');
  });

  it('messages list oldest first by their writers’ clocks, whatever order they arrived in, and page by `before` (outside new user 7)', () => {
    const s = store();
    const conv = message('alice', '').conversation;
    s.addConversation('bob', conv, ['alice', 'bob', 'carol'], 1);
    const at = (author: string, ts: number, n: number): DmMessageRow => ({
      ...message(author, `${author} ${ts}`),
      id: `0190a0b0-0000-4000-8000-${n.toString(16).padStart(12, '0')}`,
      ts,
    });
    // Arrived in another order than written (two devices were offline, say).
    const written = [at('alice', 1000, 5), at('carol', 2000, 3), at('alice', 3000, 1)];
    const arrived = [written[2]!, written[0]!, at('bob', 2500, 9), written[1]!];
    for (const m of arrived) s.addMessage('bob', m, { unread: m.author !== 'bob' });
    const texts = (limit: number, before?: string) =>
      s.messages('bob', conv, limit, before).map((m) => m.text);
    expect(texts(10)).toEqual(['alice 1000', 'carol 2000', 'bob 2500', 'alice 3000']);
    expect(texts(2)).toEqual(['bob 2500', 'alice 3000']);
    const page = s.messages('bob', conv, 2);
    expect(texts(2, page[0]!.id)).toEqual(['alice 1000', 'carol 2000']);
    expect(texts(2, written[0]!.id)).toEqual([]);
  });

  it('a deletion takes back its message’s unread once, however many deletions of it come', () => {
    const s = store();
    const conv = message('alice', '').conversation;
    s.addConversation('bob', conv, ['alice', 'bob'], 1);
    const id = (n: number) => `0190a0b0-0000-4000-8000-00000000020${n}`;
    const msg = (n: number, ts: number): DmMessageRow => ({
      ...message('alice', `text ${n}`),
      id: id(n),
      ts,
    });
    const del = (n: number, target: string, ts: number): DmMessageRow => ({
      ...message('alice', ''),
      id: id(n),
      kind: 'delete',
      ts,
      target,
    });
    s.addMessage('bob', msg(1, 10), { unread: true });
    s.addMessage('bob', msg(2, 20), { unread: true });
    expect(s.conversation('bob', conv)?.unread).toBe(2);
    s.addMessage('bob', del(3, id(1), 30), { unread: false });
    expect(s.conversation('bob', conv)?.unread).toBe(1);
    // The same message deleted again (another delete item of its author's): nothing more.
    s.addMessage('bob', del(4, id(1), 40), { unread: false });
    expect(s.conversation('bob', conv)?.unread).toBe(1);
  });

  it('only its author’s edits and deletion change a message, whichever arrives first', () => {
    const s = store();
    const conv = message('alice', '').conversation;
    s.addConversation('bob', conv, ['alice', 'bob', 'mallory'], 1);
    const change = (
      author: string,
      id: string,
      kind: 'edit' | 'delete',
      text: string,
      ts: number,
    ): DmMessageRow => ({
      ...message(author, text),
      id,
      kind,
      ts,
      target: message('alice', '').id,
    });
    const ids = (n: number) => `0190a0b0-0000-4000-8000-00000000010${n}`;
    // mallory's change of alice's message comes before it: it must never apply.
    s.addMessage('bob', change('mallory', ids(1), 'edit', 'forged', 5), { unread: false });
    s.addMessage('bob', change('mallory', ids(2), 'delete', '', 6), { unread: false });
    s.addMessage('bob', message('alice', 'real'), { unread: true });
    expect(s.message('bob', message('alice', '').id, 'alice')).toMatchObject({ text: 'real' });
    expect(s.message('bob', message('alice', '').id, 'alice')?.deleted).toBeUndefined();
    // alice's own: the latest edit by time shows, whatever order they came in.
    s.addMessage('bob', change('alice', ids(4), 'edit', 'second', 20), { unread: false });
    s.addMessage('bob', change('alice', ids(3), 'edit', 'first', 10), { unread: false });
    expect(s.message('bob', message('alice', '').id, 'alice')).toMatchObject({
      text: 'second',
      edited: 20,
    });
    // Only messages and notices are listed; changes are not unread.
    expect(s.messages('bob', conv, 10).map((m) => m.text)).toEqual(['second']);
    expect(s.conversation('bob', conv)?.unread).toBe(1);
    s.addMessage('bob', change('alice', ids(5), 'delete', '', 30), { unread: false });
    expect(s.message('bob', message('alice', '').id, 'alice')).toMatchObject({
      text: '',
      deleted: true,
    });
    // Nothing of the texts is left in its rows, the edits' included.
    const left = s.db
      .prepare("SELECT count(*) AS n FROM messages WHERE text IN ('real', 'first', 'second')")
      .get() as { n: number };
    expect(left.n).toBe(0);
  });

  it('an own message deleted before it was sealed is never sent, nor is its deletion', () => {
    const s = store();
    const conv = message('alice', '').conversation;
    s.addConversation('alice', conv, ['alice', 'bob'], 1);
    const own = { ...message('alice', 'written offline'), state: 'pending' as const };
    s.addMessage('alice', own, { unread: false, sealed: false });
    s.addMessage(
      'alice',
      {
        ...own,
        id: '0190a0b0-0000-4000-8000-000000000201',
        kind: 'delete',
        text: '',
        target: own.id,
      },
      { unread: false, sealed: false },
    );
    expect(s.unsealed('alice')).toEqual([]);
    expect(s.message('alice', own.id, 'alice')).toMatchObject({ deleted: true, text: '' });
    expect(s.pendingCount('alice')).toBe(0);
  });

  it('reactions fold per member and emoji, newest first-come; they name a message by id and author, and go with its deletion', () => {
    const s = store();
    const conv = message('alice', '').conversation;
    const target = message('alice', '').id;
    s.addConversation('bob', conv, ['alice', 'bob', 'mallory'], 1);
    let n = 0;
    const vote = (
      author: string,
      kind: 'react' | 'unreact',
      emoji: string,
      ts: number,
      of = 'alice',
    ): DmMessageRow => ({
      ...message(author, ''),
      id: `0190a0b0-0000-4000-8000-${(0xf00 + n++).toString(16).padStart(12, '0')}`,
      kind,
      ts,
      target,
      targetAuthor: of,
      emoji,
    });
    // Before the message: kept, and counted once it comes.
    s.addMessage('bob', vote('mallory', 'react', '👍', 10), { unread: true });
    s.addMessage('bob', message('mallory', 'same id, mallory’s own'), { unread: true });
    s.addMessage('bob', message('alice', 'hi'), { unread: true });
    s.addMessage('bob', vote('bob', 'react', '👍', 20), { unread: false });
    s.addMessage('bob', vote('bob', 'react', '🎉', 21), { unread: false });
    // Taken back, then an older react arriving late changes nothing: the newest counts.
    s.addMessage('bob', vote('bob', 'unreact', '🎉', 30), { unread: false });
    s.addMessage('bob', vote('bob', 'react', '🎉', 25), { unread: false });
    // A reaction to mallory's message of the same id is not alice's.
    s.addMessage('bob', vote('bob', 'react', '❤️', 40, 'mallory'), { unread: false });
    const alice = s.message('bob', target, 'alice')!;
    expect(alice.reactions).toEqual([{ emoji: '👍', users: ['bob', 'mallory'] }]);
    expect(s.message('bob', target, 'mallory')!.reactions).toEqual([
      { emoji: '❤️', users: ['bob'] },
    ]);
    // Reactions are neither unread nor activity: two messages counted, nothing else.
    expect(s.conversation('bob', conv)!.unread).toBe(2);
    expect(s.lastVote('bob', conv, { id: target, author: 'alice' }, '🎉')).toBe(30);
    // Deleted by its author: no reactions show.
    s.addMessage(
      'bob',
      {
        ...message('alice', ''),
        id: '0190a0b0-0000-4000-8000-00000000dddd',
        kind: 'delete',
        target,
      },
      { unread: true },
    );
    expect(s.message('bob', target, 'alice')).toMatchObject({ deleted: true });
    expect(s.message('bob', target, 'alice')!.reactions).toBeUndefined();
  });

  it('a notice (a safety number changed) is no activity: the list keeps its order and shows the last message', () => {
    const s = store();
    const conv = message('alice', '').conversation;
    s.addConversation('bob', conv, ['alice', 'bob'], 1);
    s.addMessage('bob', { ...message('alice', 'see you'), ts: 1000 }, { unread: true });
    s.addMessage(
      'bob',
      {
        ...message('alice', 'alice’s safety number changed.'),
        id: '0190a0b0-0000-4000-8000-00000000a071',
        kind: 'notice',
        ts: 2000,
      },
      { unread: false },
    );
    expect(s.conversation('bob', conv)).toMatchObject({ lastTs: 1000, unread: 1 });
    expect(s.lastMessage('bob', conv)?.text).toBe('see you');
    // The notice is in the conversation itself.
    expect(s.messages('bob', conv, 10).map((m) => m.kind)).toEqual(['message', 'notice']);
  });

  it('a reply shows its original as it reads now: edited, deleted, or not held', () => {
    const s = store();
    const conv = message('alice', '').conversation;
    const original = message('alice', '').id;
    s.addConversation('bob', conv, ['alice', 'bob'], 1);
    const reply = (id: string, text: string, to: { id: string; author: string }): DmMessageRow => ({
      ...message('bob', text),
      id,
      replyTo: to,
    });
    const unknown = '0190a0b0-0000-4000-8000-00000000eeee';
    s.addMessage(
      'bob',
      reply('0190a0b0-0000-4000-8000-0000000000b1', 'early', { id: original, author: 'alice' }),
      {
        unread: false,
      },
    );
    s.addMessage(
      'bob',
      reply('0190a0b0-0000-4000-8000-0000000000b2', 'lost', { id: unknown, author: 'alice' }),
      {
        unread: false,
      },
    );
    const shownReply = () => s.message('bob', '0190a0b0-0000-4000-8000-0000000000b1', 'bob')!.reply;
    expect(shownReply()).toEqual({ id: original, author: 'alice' });
    s.addMessage('bob', message('alice', 'lunch at noon?'), { unread: true });
    expect(shownReply()).toEqual({ id: original, author: 'alice', text: 'lunch at noon?' });
    s.addMessage(
      'bob',
      {
        ...message('alice', 'lunch at one?'),
        id: '0190a0b0-0000-4000-8000-00000000ed17',
        kind: 'edit',
        target: original,
      },
      { unread: false },
    );
    expect(shownReply()!.text).toBe('lunch at one?');
    expect(s.messages('bob', conv, 10).find((m) => m.text === 'lost')!.reply).toEqual({
      id: unknown,
      author: 'alice',
    });
    s.addMessage(
      'bob',
      {
        ...message('alice', ''),
        id: '0190a0b0-0000-4000-8000-00000000de1e',
        kind: 'delete',
        target: original,
      },
      { unread: false },
    );
    expect(shownReply()).toEqual({ id: original, author: 'alice', deleted: true });
    expect(s.find('bob', conv, original)).toMatchObject({ deleted: true });
  });

  it('a replaced signed prekey stays 30 days after its successor was made, whatever its own age', () => {
    const s = store();
    const day = 24 * 3600 * 1000;
    const now = Date.now();
    const spk = (id: number, created: number) => ({
      id,
      public: Buffer.alloc(32, id),
      secret: Buffer.alloc(32, id),
      sig: Buffer.alloc(64),
      created,
    });
    s.addSignedPrekey('bob', spk(1, now - 90 * day)); // replaced 10 days ago
    s.addSignedPrekey('bob', spk(2, now - 10 * day)); // current
    s.pruneSignedPrekeys('bob', now - 30 * day);
    expect(s.signedPrekeys('bob').map((k) => k.id)).toEqual([2, 1]);
    s.addSignedPrekey('bob', spk(3, now)); // 2 replaced now; 1 replaced 10 days ago
    s.pruneSignedPrekeys('bob', now - 30 * day);
    expect(s.signedPrekeys('bob').map((k) => k.id)).toEqual([3, 2, 1]);
    s.pruneSignedPrekeys('bob', now - 5 * day); // as if 25 days later: 1's successor is old
    expect(s.signedPrekeys('bob').map((k) => k.id)).toEqual([3, 2]);
  });

  it('a server that empties a contact’s device list, then shows another key, does not clear the warning', () => {
    const s = store();
    const own = { deviceId: 'AAAAAAAAAAAAAAAAAAAAAA', identityKey: key() };
    const notices: string[] = [];
    const trust = new DmTrust(
      s,
      new DmSessions(s),
      (_c, id) => notices.push(id),
      () => own,
    );
    s.addConversation('alice', '0190a0b0-0000-8000-8000-0000000000bb', ['alice', 'bob'], 1);
    const bob = { deviceId: 'BBBBBBBBBBBBBBBBBBBBBB', identityKey: key() };
    expect(trust.update('alice', 'bob', [bob])).toBe(false); // first sight
    trust.setVerified('alice', 'bob', true);
    expect(trust.status('alice', ['bob'])).toEqual({ verified: true, changed: false });
    trust.update('alice', 'bob', []); // the server "forgets" bob's devices
    trust.update('alice', 'bob', [{ ...bob, identityKey: key() }]); // then shows another key
    expect(trust.status('alice', ['bob'])).toEqual({ verified: false, changed: true });
    expect(notices.length).toBeGreaterThanOrEqual(1);
  });
});
