/**
 * The search index follows the messages in batches (store/search-index.ts, issue 19 item 3):
 * a message is noted in the transaction that stores it and indexed a moment later with others.
 * Whatever the order of posts, edits, deletes, batches of indexing, restarts and searches from
 * another store object on the same file, a search finds exactly the messages that show its word,
 * by their newest text; and the index does catch up by itself, without a search.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import type { NewMessage } from '../src/protocol/common.js';
import { HchatError } from '../src/protocol/errors.js';
import { searchWords } from '../src/shared/search-text.js';
import { DRAIN_MS, INDEX_PENDING } from '../src/store/search-index.js';
import { PeerStore } from '../src/store/peer-store.js';
import { SqliteServerStore } from '../src/store/sqlite-server-store.js';
import { SERVER_MIGRATIONS } from '../src/store/sqlite-server-schema.js';
import { openDatabase } from '../src/store/sqlite.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hchat-search-index-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
let files = 0;

const C = '00000000-0000-4000-8000-00000000000c';
const WORDS = ['apple', 'banana', 'cherry', 'damson', 'elder', 'fig'] as const;
const AUTHORS = ['bob', 'carol'] as const;

type Op =
  | { op: 'post'; author: number; words: number[] }
  | { op: 'edit'; target: number; words: number[] }
  | { op: 'delete'; target: number }
  | { op: 'drain' }
  | { op: 'reopen' }
  | { op: 'search'; word: number; other: boolean };

const words = fc.array(fc.nat(WORDS.length - 1), { minLength: 1, maxLength: 3 });
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ op: fc.constant('post' as const), author: fc.nat(1), words }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant('edit' as const), target: fc.nat(), words }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('delete' as const), target: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('drain' as const) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('reopen' as const) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('search' as const),
      word: fc.nat(WORDS.length - 1),
      other: fc.boolean(),
    }),
  },
);

/** What a message shows in the model: its author, newest text, or nothing once deleted. */
interface Shown {
  id: string;
  author: string;
  text: string;
  deleted: boolean;
}

async function openStore(file: string, fresh: boolean): Promise<SqliteServerStore> {
  const store = new SqliteServerStore(file);
  if (fresh) {
    await store.createUser({ username: 'alice', passHash: 'x' });
    await store.createChannel({
      id: C,
      name: 'fruit',
      owner: 'alice',
      allowVisitors: false,
      createdAt: 1,
    });
    for (const a of AUTHORS) await store.addMember(C, a);
  }
  return store;
}

function must<T>(r: T | HchatError): T {
  if (r instanceof HchatError) throw r;
  return r;
}

describe('search index in batches', () => {
  it('finds exactly what messages show, whatever the order of writes, batches and restarts', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 40 }), async (ops) => {
        const file = path.join(dir, `p${files++}.db`);
        let store = await openStore(file, true);
        const other = new SqliteServerStore(file);
        const model: Shown[] = [];
        let clock = 1000;
        let n = 0;
        const insert = async (author: string, fields: Partial<NewMessage>) => {
          const message = {
            id: `m${n++}`,
            channelId: C,
            ts: clock++,
            lc: 0,
            sig: 's',
            cert: 'c',
            ...fields,
          } as NewMessage;
          must((await store.insertMessages([{ message, author }]))[0]!);
          return message.id;
        };
        try {
          for (const o of ops) {
            if (o.op === 'post') {
              const author = AUTHORS[o.author]!;
              const text = o.words.map((w) => WORDS[w]).join(' ');
              model.push({ id: await insert(author, { text }), author, text, deleted: false });
            } else if (o.op === 'edit' && model.length) {
              const m = model[o.target % model.length]!;
              const text = o.words.map((w) => WORDS[w]).join(' ');
              await insert(m.author, { kind: 'edit', target: m.id, text });
              if (!m.deleted) m.text = text;
            } else if (o.op === 'delete' && model.length) {
              const m = model[o.target % model.length]!;
              await insert('alice', { kind: 'delete', target: m.id });
              m.deleted = true;
            } else if (o.op === 'drain') {
              // What the timer does DRAIN_MS after a write.
              (store as unknown as { index: { drain(): void } }).index.drain();
            } else if (o.op === 'reopen') {
              await store.close();
              store = await openStore(file, false);
            } else if (o.op === 'search') {
              const word = WORDS[o.word]!;
              const by = o.other ? other : store;
              const found = (await by.search(searchWords(word), [C], 1000)).map((m) => m.id);
              const want = model
                .filter((m) => !m.deleted && m.text.split(' ').includes(word))
                .map((m) => m.id)
                .reverse();
              expect(found, `search '${word}'`).toEqual(want);
            }
          }
        } finally {
          await other.close();
          await store.close();
        }
      }),
      { numRuns: 60 },
    );
  });

  it('a message is indexed within DRAIN_MS of being stored, with no search to ask for it', async () => {
    const file = path.join(dir, `t${files++}.db`);
    const store = await openStore(file, true);
    // Another connection reads the index as it is on disk, without draining anything.
    const reader = new Database(file, { readonly: true });
    const indexed = () =>
      (reader.prepare('SELECT count(*) AS n FROM message_fts').get() as { n: number }).n;
    try {
      for (let i = 0; i < 20; i++)
        must(
          (
            await store.insertMessages([
              {
                message: {
                  id: `t${i}`,
                  channelId: C,
                  ts: 2000 + i,
                  lc: 0,
                  sig: 's',
                  cert: 'c',
                  text: `cherry ${i}`,
                } as NewMessage,
                author: 'bob',
              },
            ])
          )[0]!,
        );
      // Stored, not indexed yet: the writes did not pay for the index.
      expect(indexed()).toBe(0);
      const t0 = Date.now();
      while (indexed() < 20 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 10));
      expect(indexed()).toBe(20);
      expect(Date.now() - t0).toBeLessThan(DRAIN_MS + 1000);
    } finally {
      reader.close();
      await store.close();
    }
  });
  it('a search while the index cannot be written answers from what is indexed; it catches up after', async () => {
    const file = path.join(dir, `b${files++}.db`);
    const store = await openStore(file, true);
    (store as unknown as { db: Database.Database }).db.pragma('busy_timeout = 50');
    const post = async (id: string, text: string) =>
      must(
        (
          await store.insertMessages([
            {
              message: {
                id,
                channelId: C,
                ts: 3000,
                lc: 0,
                sig: 's',
                cert: 'c',
                text,
              } as NewMessage,
              author: 'bob',
            },
          ])
        )[0]!,
      );
    const found = async () =>
      (await store.search(searchWords('fig'), [C], 10)).map((m) => m.id).sort();
    // Another process holds the write lock: the index cannot take what is pending.
    const other = new Database(file);
    try {
      await post('f1', 'fig one');
      expect(await found()).toEqual(['f1']);
      await post('f2', 'fig two');
      other.prepare('BEGIN IMMEDIATE').run();
      expect(await found()).toEqual(['f1']);
      other.prepare('COMMIT').run();
      expect(await found()).toEqual(['f1', 'f2']);
    } finally {
      other.close();
      await store.close();
    }
  });
  it('a store made before the index followed in batches keeps finding its messages, old and new', async () => {
    const file = path.join(dir, `u${files++}.db`);
    // The schema as it was (migrations 1–6), a message in it indexed by the old trigger.
    const before = openDatabase(file, SERVER_MIGRATIONS.slice(0, 6));
    before.exec(`INSERT INTO users (username, pass_hash, created_at) VALUES ('bob', 'x', 1);
      INSERT INTO channels (id, name, owner, allow_visitors, created_at) VALUES ('${C}', 'f', 'bob', 0, 1);
      INSERT INTO messages (id, channel_id, seq, author, ts, lc, text, received_at)
        VALUES ('old', '${C}', 1, 'bob', 1, 0, 'banana bread', 1);
      UPDATE channels SET last_seq = 1 WHERE id = '${C}';`);
    before.close();
    const store = await openStore(file, false);
    const ids = async (w: string) => (await store.search(searchWords(w), [C], 10)).map((m) => m.id);
    try {
      expect(await ids('banana')).toEqual(['old']);
      const item = (id: string, f: Partial<NewMessage>) =>
        ({ id, channelId: C, ts: 10, lc: 0, sig: 's', cert: 'c', ...f }) as NewMessage;
      must(
        (
          await store.insertMessages([
            { message: item('new', { text: 'banana split' }), author: 'bob' },
          ])
        )[0]!,
      );
      // An edit of the message stored before re-indexes it at once.
      must(
        (
          await store.insertMessages([
            {
              message: item('e', { kind: 'edit', target: 'old', text: 'cherry bread' }),
              author: 'bob',
            },
          ])
        )[0]!,
      );
      expect(await ids('banana')).toEqual(['new']);
      expect(await ids('cherry')).toEqual(['old']);
    } finally {
      await store.close();
    }
  });
  it('indexing a batch reads the pending rows and looks each message up, never every message stored', async () => {
    const server = await openStore(path.join(dir, `q${files++}.db`), true);
    const peer = new PeerStore(path.join(dir, `q${files++}.db`));
    const dbOf = (s: unknown) => (s as { db: Database.Database }).db;
    try {
      for (const db of [dbOf(server), dbOf(peer)]) {
        const plan = (
          db.prepare(`EXPLAIN QUERY PLAN ${INDEX_PENDING}`).all() as { detail: string }[]
        )
          .map((r) => r.detail)
          .filter((d) => /^(SCAN|SEARCH) (m|p)\b/.test(d));
        // A full scan of messages (through any of its indexes) cost a pass about 40 ms at 200,000
        // messages stored, whatever the batch.
        expect(plan).toEqual(['SCAN p', 'SEARCH m USING INTEGER PRIMARY KEY (rowid=?)']);
      }
    } finally {
      peer.close();
      await server.close();
    }
  });

  it('a store closes while another process holds the write lock; what was pending is indexed after', async () => {
    const file = path.join(dir, `l${files++}.db`);
    const store = await openStore(file, true);
    (store as unknown as { db: Database.Database }).db.pragma('busy_timeout = 50');
    const other = new Database(file);
    must(
      (
        await store.insertMessages([
          {
            message: {
              id: 'p1',
              channelId: C,
              ts: 5,
              lc: 0,
              sig: 's',
              cert: 'c',
              text: 'elder',
            } as NewMessage,
            author: 'bob',
          },
        ])
      )[0]!,
    );
    other.prepare('BEGIN IMMEDIATE').run();
    await store.close();
    expect((store as unknown as { db: Database.Database }).db.open).toBe(false);
    other.prepare('COMMIT').run();
    other.close();
    const again = await openStore(file, false);
    try {
      expect((await again.search(searchWords('elder'), [C], 10)).map((m) => m.id)).toEqual(['p1']);
    } finally {
      await again.close();
    }
  });
});
