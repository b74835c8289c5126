/**
 * Full-text search (issue 13 item 6) end to end on a real testnet: alice and bob share a
 * channel; search finds by word and prefix, ignoring case and accents; an edited message by its
 * new text only; a deleted one never; only channels the user may read, through the local API
 * and through the server's `search` op played by a raw client; a visitor searches a channel
 * that allows visitors at the server. Plus a fuzz run: no query string ever fails a search.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createTestnet, rawSession, signIn, waitFor, type TestPeer } from './testnet.js';
import { ftsMatch, searchWords, snippet } from '../src/shared/search-text.js';
import { PeerStore } from '../src/store/peer-store.js';
import { tempDir } from './testnet.js';

type Result = {
  channelId: string;
  channelName: string;
  message: { id: string; author: string; text: string };
  snippet: Array<{ text: string; match: boolean }>;
};

async function search(p: TestPeer, q: string, extra = '') {
  const r = await p.call('GET', `/api/search?q=${encodeURIComponent(q)}${extra}`);
  return r as { status: number; body: { results: Result[]; source: string; error?: any } };
}
const texts = (rs: Result[]) => rs.map((r) => r.message.text);

async function pair() {
  const net = await createTestnet({ peers: 2 });
  const [alice, bob] = net.peers as [TestPeer, TestPeer];
  await signIn(alice, 'alice');
  await signIn(bob, 'bob');
  const ch = (await alice.call('POST', '/api/channels', { name: 'general', allowVisitors: false }))
    .body.id as string;
  expect((await bob.call('POST', `/api/channels/${ch}/join`)).status).toBe(200);
  const post = async (p: TestPeer, text: string, channel = ch) => {
    const r = await p.call('POST', `/api/channels/${channel}/messages`, { text });
    expect(r.status).toBe(201);
    return r.body.id as string;
  };
  return { net, alice, bob, ch, post };
}

describe('search', () => {
  it('finds by word and prefix, any case and accents, newest first, with marked words', async () => {
    const { alice, bob, ch, post } = await pair();
    await post(alice, 'The quick brown fox');
    await post(alice, 'Un café à Zürich, très über');
    const last = await post(alice, 'QUICKSILVER is a metal');
    const r = await waitFor(async () => {
      const s = await search(bob, 'quick');
      return s.body.results.length === 2 ? s : undefined;
    });
    expect(r.status).toBe(200);
    expect(r.body.source).toBe('local');
    expect(texts(r.body.results)).toEqual(['QUICKSILVER is a metal', 'The quick brown fox']);
    expect(r.body.results[0]!.message.id).toBe(last);
    expect(r.body.results[0]).toMatchObject({ channelId: ch, channelName: 'general' });
    expect(r.body.results[0]!.snippet).toEqual([
      { text: 'QUICKSILVER', match: true },
      { text: ' is a metal', match: false },
    ]);
    // Unicode words, with or without their accents, and a prefix of them.
    for (const q of ['café', 'CAFE', 'zurich', 'Zür', 'über', 'uber', 'très'])
      expect(texts((await search(bob, q)).body.results), q).toEqual([
        'Un café à Zürich, très über',
      ]);
    // Every word must be there.
    expect(texts((await search(bob, 'quick fox')).body.results)).toEqual(['The quick brown fox']);
    expect((await search(bob, 'quick zebra')).body.results).toEqual([]);
    // A limit, and the next page after the last result.
    const one = await bob.call('GET', '/api/search?q=quick&limit=1');
    expect(texts(one.body.results)).toEqual(['QUICKSILVER is a metal']);
    expect(one.body.hasMore).toBe(true);
    const next = await bob.call('GET', `/api/search?q=quick&limit=1&before=${last}`);
    expect(texts(next.body.results)).toEqual(['The quick brown fox']);
  });

  it('an edited message is found by its new text only; a deleted one not at all', async () => {
    const { alice, bob, ch, post } = await pair();
    const edited = await post(alice, 'meeting on monday');
    const gone = await post(alice, 'secret password hunter2');
    await waitFor(async () => (await search(bob, 'hunter2')).body.results.length === 1);
    const e = await alice.call('PATCH', `/api/channels/${ch}/messages/${edited}`, {
      text: 'meeting on tuesday',
    });
    expect(e.status).toBeLessThan(300);
    const d = await alice.call('DELETE', `/api/channels/${ch}/messages/${gone}`);
    expect(d.status).toBeLessThan(300);
    for (const p of [alice, bob]) {
      await waitFor(async () => (await search(p, 'tuesday')).body.results.length === 1);
      expect((await search(p, 'monday')).body.results).toEqual([]);
      await waitFor(async () => (await search(p, 'hunter2')).body.results.length === 0);
      expect(texts((await search(p, 'meeting')).body.results)).toEqual(['meeting on tuesday']);
    }
  });

  it('only channels the user may read, through the API and the server op', async () => {
    const { net, alice, bob, post } = await pair();
    const hidden = (
      await alice.call('POST', '/api/channels', { name: 'private', allowVisitors: false })
    ).body.id as string;
    await post(alice, 'zanzibar plans', hidden);
    await waitFor(async () => (await search(alice, 'zanzibar')).body.results.length === 1);
    expect((await search(bob, 'zanzibar')).body.results).toEqual([]);
    // Naming it: the server refuses (bob is no member).
    const named = await search(bob, 'zanzibar', `&channelId=${hidden}`);
    expect(named.status).toBe(403);
    expect(named.body.error.code).toBe('E_NOT_MEMBER');
    // A raw client as bob: the server's backup has it, but bob gets nothing of it.
    const raw = await net.rawLink();
    await rawSession(raw, { username: 'bob', password: 'bob-pw' });
    const rawAlice = await net.rawLink();
    await rawSession(rawAlice, { username: 'alice', password: 'alice-pw' });
    await waitFor(
      async () =>
        (await rawAlice.request('search', { query: 'zanzibar', limit: 10 })).messages.length === 1,
      15_000,
      "the server's backup to hold the message",
    );
    expect((await raw.request('search', { query: 'zanzibar', limit: 10 })).messages).toEqual([]);
    await expect(
      raw.request('search', { query: 'zanzibar', limit: 10, channelIds: [hidden] }),
    ).rejects.toMatchObject({ code: 'E_NOT_MEMBER' });
    // Hostile query syntax is plain text: no error, no injection (no match beyond the words).
    for (const query of [
      'zanzibar OR *',
      '"zan',
      'text:zanzibar',
      'NEAR(zanzibar plans)',
      '^zanzibar',
      '(zanzibar',
      '*',
      '" OR "" "',
      '\u0000\u0301',
    ]) {
      await expect(raw.request('search', { query, limit: 10 })).resolves.toMatchObject({
        messages: [],
      });
      const own = await rawAlice.request('search', { query, limit: 10 });
      expect(own.messages.every((m) => m.text === 'zanzibar plans')).toBe(true);
    }
    // Sizes are checked.
    await expect(
      raw.request('search', { query: 'x'.repeat(201), limit: 10 }),
    ).rejects.toMatchObject({ code: 'E_BAD_REQUEST' });
    await expect(raw.request('search', { query: 'x', limit: 51 })).rejects.toMatchObject({
      code: 'E_BAD_REQUEST',
    });
  });

  it('a visitor channel not held here is searched at the server; a visitor searches it too', async () => {
    const { net, alice, bob, post } = await pair();
    const open = (await alice.call('POST', '/api/channels', { name: 'lobby', allowVisitors: true }))
      .body.id as string;
    await post(alice, 'welcome to the lobby, vistors and guests', open);
    const rawAlice = await net.rawLink();
    await rawSession(rawAlice, { username: 'alice', password: 'alice-pw' });
    await waitFor(
      async () =>
        (await rawAlice.request('search', { query: 'lobby', limit: 10 })).messages.length === 1,
      15_000,
      "the server's backup to hold the message",
    );
    // bob never joined it: his peer asks the server.
    const r = await search(bob, 'guest', `&channelId=${open}`);
    expect(r.status).toBe(200);
    expect(r.body.source).toBe('server');
    expect(texts(r.body.results)).toEqual(['welcome to the lobby, vistors and guests']);
    expect(r.body.results[0]!.snippet.filter((s) => s.match).map((s) => s.text)).toEqual([
      'guests',
    ]);
    // A visitor, as a raw client: finds it once it views the channel, and by naming it.
    const raw = await net.rawLink();
    await rawSession(raw, { name: 'vic' });
    expect((await raw.request('search', { query: 'lobby', limit: 10 })).messages).toEqual([]);
    const byName = await raw.request('search', { query: 'lobby', limit: 10, channelIds: [open] });
    expect(byName.messages.map((m) => m.text)).toEqual([
      'welcome to the lobby, vistors and guests',
    ]);
    await raw.request('channel_join', { channelId: open });
    expect((await raw.request('search', { query: 'lobby', limit: 10 })).messages).toHaveLength(1);
    // SECURITY.md "Search": the server logs that a search happened, never the query.
    net.server.log.flush();
    const log = fs.readFileSync(path.join(net.dir, 'server', 'connections.log'), 'utf8');
    const searches = log.split('\n').filter((l) => /\bev=search\b/.test(l));
    expect(searches.length).toBeGreaterThanOrEqual(3);
    for (const line of searches) expect(line).not.toMatch(/lobby|guest/i);
  });
});

describe('search results from the server are checked like everything else it sends', () => {
  it('a server that alters a result is not believed', async () => {
    const { net, alice, bob, post } = await pair();
    const open = (await alice.call('POST', '/api/channels', { name: 'lobby', allowVisitors: true }))
      .body.id as string;
    await post(alice, 'the harbour opens at dawn', open);
    await waitFor(
      async () => (await search(bob, 'harbour', `&channelId=${open}`)).body.results?.length === 1,
      15_000,
      'the backup answers',
    );
    // The server turns dishonest: it rewrites the text of what it finds.
    const svc = (net.server as any).search;
    const honest = svc.search.bind(svc);
    svc.search = async (conn: unknown, body: unknown) => {
      const r = await honest(conn, body);
      return {
        ...r,
        messages: r.messages.map((m: any) => ({ ...m, text: `${m.text} (pay here)` })),
      };
    };
    const r = await search(bob, 'harbour', `&channelId=${open}`);
    expect(r.status).toBe(200);
    expect(r.body.results).toEqual([]);
    svc.search = honest;
    expect(texts((await search(bob, 'harbour', `&channelId=${open}`)).body.results)).toEqual([
      'the harbour opens at dawn',
    ]);
  });
});

describe('search queries (fuzz)', () => {
  it('no query string ever makes a search fail, and words stay within their limits', () => {
    const store = new PeerStore(path.join(tempDir(), 'peer.db'));
    try {
      store.saveChannel('alice', {
        id: '00000000-0000-4000-8000-000000000001',
        name: 'c',
        owner: 'alice',
        allowVisitors: false,
        createdAt: 1,
      });
      fc.assert(
        fc.property(
          fc.oneof(
            fc.string({ unit: 'binary', maxLength: 200 }),
            fc
              .array(
                fc.constantFrom(
                  '"',
                  '*',
                  '^',
                  '(',
                  ')',
                  ':',
                  'NEAR',
                  'AND',
                  'OR',
                  'NOT',
                  ' ',
                  'text',
                  '+',
                  '-',
                  'é',
                  '\u0301',
                  '{',
                  '}',
                ),
                { maxLength: 30 },
              )
              .map((a) => a.join('')),
          ),
          (q) => {
            const words = searchWords(q);
            expect(words.length).toBeLessThanOrEqual(8);
            const match = ftsMatch(words);
            if (match !== undefined)
              store.search(match, ['00000000-0000-4000-8000-000000000001'], 10);
            snippet(q, words);
          },
        ),
        { numRuns: 2000 },
      );
    } finally {
      store.close();
    }
  });

  it('uses the first 8 distinct words (repeats, by case and accents, count once)', () => {
    // PROTOCOL.md §3.3 Search: an outside reader could not tell which 8 words a query with
    // repeats keeps (test/outsider/read-privacy.test.ts's notes).
    expect(searchWords('a A á a b c d e f g h i')).toEqual([
      'a',
      'b',
      'c',
      'd',
      'e',
      'f',
      'g',
      'h',
    ]);
    expect(searchWords('one two three four five six seven eight nine')).toHaveLength(8);
    expect(searchWords('zz Zz ZZ')).toEqual(['zz']);
  });
});
