// Outsider attacks on search (PROTOCOL.md §3.3 _Search_, SECURITY.md "Search"), NAT traversal
// signalling (§3.8–§3.10, SECURITY.md "The tracker") and typing (§3.3 _Typing_, §4.2), written
// from the documents and the test helpers only. Each test asserts a documented promise: it fails
// when the promise is broken.
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Raw,
  killAll,
  newKey,
  p2pConnect,
  serverHello,
  sleep,
  startPeer,
  startServer,
  uuid7,
} from './lib.js';
import { account, goOnline, relayId, toOf, uname, type Client } from './relay-lib.js';
import { bodyDigest, itemId, makeItem } from './items-lib.js';

type Srv = Awaited<ReturnType<typeof startServer>>;
let srv: Srv;

beforeAll(async () => {
  srv = await startServer([
    '--max-registrations-per-address',
    '100000',
    '--max-tracker-entries-per-address',
    '100000',
    '--max-visitors-per-address',
    '1000',
  ]);
});
afterAll(async () => {
  await killAll();
});

const acct = (tag: string) => account(srv, uname(tag));

async function channel(owner: Client, allowVisitors = false) {
  const id = uuid7();
  const r = await owner.c.req('channel_create', { id, name: 'c' + id.slice(-6), allowVisitors });
  if (!r.body) throw new Error('channel_create ' + JSON.stringify(r));
  return id;
}

async function join(c: Client, channelId: string) {
  const r = await c.c.req('channel_join', { channelId });
  if (!r.body) throw new Error('join ' + JSON.stringify(r));
}

async function post(c: Client, channelId: string, text: string) {
  const message = makeItem(c, channelId, { body: { text } });
  const r = await c.c.req('post', { message });
  if (!r.body) throw new Error('post ' + JSON.stringify(r));
  return message.id as string;
}

async function change(owner: Client, channelId: string, ch: Record<string, unknown>) {
  const message = makeItem(owner, channelId, { kind: 'channel', body: { change: ch } });
  const r = await owner.c.req('post', { message });
  if (!r.body) throw new Error('change ' + JSON.stringify(r));
}

async function visitor(opts: { localAddress?: string } = {}): Promise<Client> {
  const c = new Raw(srv.host, srv.port, opts);
  await c.connected();
  c.send({ t: 'hello', v: 4, role: 'peer', agent: 'outsider' });
  await c.nextFrame();
  const ping = setInterval(() => c.send({ t: 'ping' }), 2000);
  c.sock.on('close', () => clearInterval(ping));
  const key = newKey();
  const name = 'v' + crypto.randomBytes(5).toString('hex');
  const r = await c.req('visitor', { name, publicKey: key.pk });
  if (!r.body) throw new Error('visitor ' + JSON.stringify(r));
  return {
    c,
    key,
    cert: r.body.cert,
    token: r.body.token,
    sessionId: r.body.sessionId,
    username: r.body.username,
  };
}

/** A logged-in user whose framed connection comes from `localAddress` (another 127/8 address). */
async function acctFrom(tag: string, localAddress: string): Promise<Client> {
  const a = await acct(tag);
  const c = new Raw(srv.host, srv.port, { localAddress });
  await c.connected();
  c.send({ t: 'hello', v: 4, role: 'peer', agent: 'outsider' });
  await c.nextFrame();
  const ping = setInterval(() => c.send({ t: 'ping' }), 2000);
  c.sock.on('close', () => clearInterval(ping));
  const r = await c.req('resume', { token: a.token });
  if (!r.body) throw new Error('resume ' + JSON.stringify(r));
  a.c.close();
  return { ...a, c, cert: r.body.cert };
}

const ids = (r: any): string[] => {
  if (r.error) throw new Error('search failed: ' + JSON.stringify(r.error));
  return r.body.messages.map((m: any) => m.id);
};

/** `search` that waits out E_RATE_LIMITED (5 a second, burst 20: tests here ask more). */
async function search(c: Raw, body: Record<string, unknown>) {
  for (;;) {
    const r = await c.req('search', body);
    if (r.error?.code !== 'E_RATE_LIMITED') return r;
    await sleep(r.error.retryAfterMs ?? 200);
  }
}
const texts = (r: any): string[] => {
  if (r.error) throw new Error('search failed: ' + JSON.stringify(r.error));
  return r.body.messages.map((m: any) => m.text);
};
const evCount = (c: Raw, ev: string, pred: (b: any) => boolean = () => true) =>
  c.events.filter((f) => f.ev === ev && pred(f.body)).length;

/** A random but well-formed message id (UUIDv8 layout with a recent ts), known to nobody. */
function unknownId(ts = Date.now()) {
  const b = crypto.randomBytes(16);
  b.writeUIntBE(ts, 0, 6);
  b[6] = 0x80 | (b[6]! & 0x0f);
  b[8] = 0x80 | (b[8]! & 0x3f);
  const x = b.toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

describe('search: who learns what (server op)', () => {
  it('a stranger learns nothing of a private channel, named or not', async () => {
    const [alice, eve] = await Promise.all([acct('al'), acct('ev')]);
    const priv = await channel(alice);
    await post(alice, priv, 'quokka secret plans');
    const own = await channel(eve);
    await post(eve, own, 'quokka of mine');
    const r = await eve.c.req('search', { query: 'quokka' });
    expect(texts(r)).toEqual(['quokka of mine']);
    const named = await eve.c.req('search', { query: 'quokka', channelIds: [priv] });
    expect(named.error?.code).toBe('E_NOT_MEMBER');
    const mixed = await eve.c.req('search', { query: 'quokka', channelIds: [own, priv] });
    expect(mixed.error?.code).toBe('E_NOT_MEMBER');
    expect(mixed.body).toBeUndefined();
  });

  it('`before` naming a message of a channel the caller may not read answers as an unknown id (no existence oracle)', async () => {
    const [alice, eve] = await Promise.all([acct('al'), acct('ev')]);
    const priv = await channel(alice);
    const own = await channel(eve);
    const old = await post(eve, own, 'wombat one');
    await sleep(5);
    const secret = await post(alice, priv, 'wombat hidden');
    await sleep(5);
    await post(eve, own, 'wombat two');
    const withSecret = await eve.c.req('search', { query: 'wombat', before: secret });
    const withUnknown = await eve.c.req('search', {
      query: 'wombat',
      before: unknownId(Date.now() - 3),
    });
    // Whatever the server does with an id it may not show, it must answer the same as for an id
    // that names nothing: an error code or a page that differs tells eve the message exists
    // (and where it sits in the backup's arrival order).
    expect({ error: withSecret.error?.code, ids: ids(withSecret) }).toEqual({
      error: withUnknown.error?.code,
      ids: ids(withUnknown),
    });
    expect(ids(withSecret)).not.toEqual([old]);
  });

  it('a removed member cannot confirm a guessed text posted after its removal (search `before` as an id oracle)', async () => {
    const [alice, bob] = await Promise.all([acct('al'), acct('bo')]);
    const ch = await channel(alice);
    await join(bob, ch);
    await change(alice, ch, { remove: bob.username });
    const mine = await channel(bob);
    await post(bob, mine, 'zzguess marker');
    await sleep(5);
    // alice answers in the channel bob was removed from; bob knows the channel, the author and
    // (to the millisecond, or by scanning a window) when: ids are derived from the content.
    const m = makeItem(alice, ch, { body: { text: 'the answer is yes' } });
    expect((await alice.c.req('post', { message: m })).body).toBeDefined();
    const guess = (text: string) =>
      itemId(ch, alice.username, m.ts, m.lc, 'message', null, bodyDigest({ text }));
    expect(guess('the answer is yes')).toBe(m.id);
    const yes = await bob.c.req('search', { query: 'zzguess', before: guess('the answer is yes') });
    const no = await bob.c.req('search', { query: 'zzguess', before: guess('the answer is no') });
    expect({ error: yes.error?.code, ids: ids(yes) }).toEqual({
      error: no.error?.code,
      ids: ids(no),
    });
  });

  it('a removed member searches nothing more of the channel, named or not', async () => {
    const [alice, bob] = await Promise.all([acct('al'), acct('bo')]);
    const ch = await channel(alice, true);
    await join(bob, ch);
    await post(alice, ch, 'platypus before');
    expect(texts(await bob.c.req('search', { query: 'platypus' }))).toEqual(['platypus before']);
    await change(alice, ch, { remove: bob.username });
    await post(alice, ch, 'platypus after');
    await sleep(300);
    expect(texts(await bob.c.req('search', { query: 'platypus' }))).toEqual([]);
    const named = await bob.c.req('search', { query: 'platypus', channelIds: [ch] });
    expect(named.error?.code).toBe('E_FORBIDDEN');
  });

  it('a member who left searches no more of a private channel', async () => {
    const [alice, bob] = await Promise.all([acct('al'), acct('bo')]);
    const ch = await channel(alice);
    await join(bob, ch);
    await post(alice, ch, 'narwhal text');
    const l = await bob.c.req('channel_leave', { channelId: ch });
    expect(l.body).toBeDefined();
    expect(texts(await bob.c.req('search', { query: 'narwhal' }))).toEqual([]);
    const named = await bob.c.req('search', { query: 'narwhal', channelIds: [ch] });
    expect(named.error?.code).toBe('E_NOT_MEMBER');
  });

  it('a deleted channel is searched by nobody, owner and former members alike', async () => {
    const [alice, bob] = await Promise.all([acct('al'), acct('bo')]);
    const ch = await channel(alice);
    await join(bob, ch);
    await post(bob, ch, 'axolotl words');
    await change(alice, ch, { deleted: true });
    await sleep(300);
    expect(texts(await bob.c.req('search', { query: 'axolotl' }))).toEqual([]);
    expect(texts(await alice.c.req('search', { query: 'axolotl' }))).toEqual([]);
    const named = await bob.c.req('search', { query: 'axolotl', channelIds: [ch] });
    expect(named.error?.code).toBe('E_CHANNEL_NOT_FOUND');
  });

  it('a visitor: a private channel does not exist for it; a channel that stops allowing visitors is no longer searched', async () => {
    const alice = await acct('al');
    const priv = await channel(alice);
    const open = await channel(alice, true);
    await post(alice, priv, 'pangolin private');
    await post(alice, open, 'pangolin public');
    const v = await visitor();
    const named = await v.c.req('search', { query: 'pangolin', channelIds: [priv] });
    const nonexistent = await v.c.req('search', { query: 'pangolin', channelIds: [uuid7()] });
    expect(named.error?.code).toBe('E_CHANNEL_NOT_FOUND');
    expect(named.error?.code).toBe(nonexistent.error?.code);
    // Not viewed on this connection: without names, nothing.
    expect(texts(await v.c.req('search', { query: 'pangolin' }))).toEqual([]);
    await join(v, open);
    expect(texts(await v.c.req('search', { query: 'pangolin' }))).toEqual(['pangolin public']);
    await change(alice, open, { allowVisitors: false });
    await post(alice, open, 'pangolin later');
    await sleep(300);
    expect(texts(await v.c.req('search', { query: 'pangolin' }))).toEqual([]);
    const again = await v.c.req('search', { query: 'pangolin', channelIds: [open] });
    expect(again.error?.code).toBe('E_CHANNEL_NOT_FOUND');
  });

  it('a logged-out connection searches nothing; its token resumes nothing', async () => {
    const alice = await acct('al');
    const ch = await channel(alice);
    await post(alice, ch, 'okapi note');
    expect((await alice.c.req('logout', {})).body).toBeDefined();
    const r = await alice.c.req('search', { query: 'okapi' });
    expect(r.error?.code).toBe('E_AUTH_REQUIRED');
    const { c } = await serverHello(srv);
    const res = await c.req('resume', { token: alice.token });
    expect(res.error?.code).toBe('E_SESSION_INVALID');
    const r2 = await c.req('search', { query: 'okapi', channelIds: [ch] });
    expect(r2.error?.code).toBe('E_AUTH_REQUIRED');
    c.close();
  });

  it('`related` never carries an item of a channel the searcher may not read', async () => {
    const [alice, eve] = await Promise.all([acct('al'), acct('ev')]);
    const pub = await channel(alice, true);
    const priv = await channel(alice);
    const target = await post(alice, pub, 'ocelot public');
    // Items of the private channel that name the public message: a reaction and an edit.
    const react = makeItem(alice, priv, { kind: 'react', target, body: { emoji: '🔥' } });
    const ra = await alice.c.req('post', { message: react });
    const edit = makeItem(alice, priv, { kind: 'edit', target, body: { text: 'ocelot leaked' } });
    const ea = await alice.c.req('post', { message: edit });
    // A non-author's edit of the public message, in its own channel.
    await join(eve, pub);
    const evil = makeItem(eve, pub, { kind: 'edit', target, body: { text: 'ocelot forged' } });
    const er = await eve.c.req('post', { message: evil });
    expect(er.error?.code).toBeDefined();
    const v = await visitor();
    const r = await search(v.c, { query: 'ocelot', channelIds: [pub] });
    expect(texts(r)).toEqual(['ocelot public']);
    const rel = (r.body.related ?? []).map((x: any) => x.channelId);
    expect([ra.error?.code ?? 'stored', ea.error?.code ?? 'stored', rel]).toSatisfy(
      ([, , c]: [string, string, string[]]) => c.every((x) => x === pub),
    );
    expect(ids(await search(v.c, { query: 'leaked', channelIds: [pub] }))).toEqual([]);
    expect(ids(await search(v.c, { query: 'forged', channelIds: [pub] }))).toEqual([]);
    const h = await v.c.req('history', { channelId: pub, limit: 10 });
    expect((h.body.related ?? []).every((x: any) => x.channelId === pub)).toBe(true);
  });

  it('deleted text and an edit’s replaced text are never found', async () => {
    const alice = await acct('al');
    const ch = await channel(alice);
    const m1 = await post(alice, ch, 'capybara gone');
    const m2 = await post(alice, ch, 'capybara oldword');
    const del = makeItem(alice, ch, { kind: 'delete', target: m1 });
    expect((await alice.c.req('post', { message: del })).body).toBeDefined();
    const ed = makeItem(alice, ch, {
      kind: 'edit',
      target: m2,
      body: { text: 'capybara newword' },
    });
    expect((await alice.c.req('post', { message: ed })).body).toBeDefined();
    expect((await alice.c.req('search', { query: 'gone' })).body.messages).toEqual([]);
    expect((await alice.c.req('search', { query: 'oldword' })).body.messages).toEqual([]);
    const found = await alice.c.req('search', { query: 'newword' });
    expect(ids(found)).toEqual([m2]);
  });
});

describe('search: malformed queries and limits (server op)', () => {
  it('refuses out-of-range requests with E_BAD_REQUEST and keeps the connection', async () => {
    const alice = await acct('al');
    const bad = [
      { query: 'x'.repeat(201) },
      { query: 'a', limit: 0 },
      { query: 'a', limit: 51 },
      { query: 'a', limit: 1.5 },
      { query: 'a', channelIds: Array.from({ length: 1001 }, () => uuid7()) },
      { query: 'a', channelIds: ['not-a-uuid'] },
      { query: 42 },
      { query: ['a'] },
      { query: 'a', before: 'nope' },
    ];
    for (const body of bad) {
      const r = await alice.c.req('search', body);
      expect([JSON.stringify(body).slice(0, 60), r.error?.code]).toEqual([
        JSON.stringify(body).slice(0, 60),
        'E_BAD_REQUEST',
      ]);
    }
    expect(alice.c.closed).toBe(false);
    expect((await alice.c.req('search', { query: 'a' })).body).toBeDefined();
  });

  it('a query’s 200 characters are code points: 200 astral characters pass, 201 do not', async () => {
    const alice = await acct('al');
    const ok = await alice.c.req('search', { query: '𝒜'.repeat(200) });
    expect(ok.error?.code).toBeUndefined();
    const bad = await alice.c.req('search', { query: '𝒜'.repeat(201) });
    expect(bad.error?.code).toBe('E_BAD_REQUEST');
  });

  it('query-language look-alikes are plain words or separators; no query fails', async () => {
    const alice = await acct('al');
    const ch = await channel(alice);
    const a = await post(alice, ch, 'NEAR the OR gate, text:tapir and ÜBER café');
    const odd = [
      '"',
      '""""',
      '*',
      '^',
      '(',
      ')',
      'NEAR(',
      'a OR',
      'text:',
      '-',
      '\u0000',
      '\u0301\u0301',
      '\u200b',
      '🦄'.repeat(50),
      'a'.repeat(200),
      ' '.repeat(200),
      '{}[]\\/%_',
      "' OR 1=1 --",
    ];
    for (const q of odd) {
      const r = await search(alice.c, { query: q, channelIds: [ch] });
      expect([q, r.error?.code]).toEqual([q, undefined]);
    }
    // Runs of letters, digits and marks only; each a required word prefix.
    const hits = async (q: string) => ids(await search(alice.c, { query: q }));
    expect(await hits('"near" OR')).toEqual([a]);
    expect(await hits('near*')).toEqual([a]);
    expect(await hits('text:tapir')).toEqual([a]);
    expect(await hits('tap')).toEqual([a]);
    expect(await hits('uber cafe')).toEqual([a]);
    expect(await hits('über CAFÉ')).toEqual([a]);
    expect(await hits('OR NOT-a-word-here')).toEqual([]);
    // Combining marks alone are no word: such a query answers no message.
    expect(await hits('\u0301\u0301')).toEqual([]);
    expect(await hits('**')).toEqual([]);
  });

  it('only the first 8 distinct words count, each cut to 64 characters', async () => {
    const alice = await acct('al');
    const ch = await channel(alice);
    const long = 'q'.repeat(64) + 'zzzzzz';
    const id = await post(alice, ch, `one two three four five six seven eight ${long}`);
    // Nine words: the ninth (absent from the text) is ignored.
    expect(
      ids(await alice.c.req('search', { query: 'one two three four five six seven eight nine' })),
    ).toEqual([id]);
    // Repeats do not count towards the 8: the eighth distinct word is "eight".
    expect(
      ids(
        await alice.c.req('search', {
          query: 'one ONE Óne two three four five six seven eight',
        }),
      ),
    ).toEqual([id]);
    // A word cut to 64: what follows its 64th character does not matter.
    expect(ids(await alice.c.req('search', { query: 'q'.repeat(64) + 'xxxxxx' }))).toEqual([id]);
  });

  it('answers at most 5 a second per user (burst 20), across the user’s sessions', async () => {
    const alice = await acct('al');
    const ch = await channel(alice);
    await post(alice, ch, 'ibis');
    const { c: c2 } = await serverHello(srv);
    expect((await c2.req('resume', { token: alice.token })).body).toBeDefined();
    const rs = await Promise.all(
      Array.from({ length: 60 }, (_, i) => (i % 2 ? c2 : alice.c).req('search', { query: 'ibis' })),
    );
    const ok = rs.filter((r) => r.body).length;
    const limited = rs.filter((r) => r.error?.code === 'E_RATE_LIMITED');
    expect(ok).toBeLessThanOrEqual(23);
    expect(limited.length).toBeGreaterThanOrEqual(37);
    expect(limited.every((r) => typeof r.error.retryAfterMs === 'number')).toBe(true);
    c2.close();
  });

  it('a visitor is rate limited too', async () => {
    const alice = await acct('al');
    const open = await channel(alice, true);
    await post(alice, open, 'heron');
    const v = await visitor();
    const rs = await Promise.all(
      Array.from({ length: 50 }, () => v.c.req('search', { query: 'heron', channelIds: [open] })),
    );
    expect(rs.filter((r) => r.body).length).toBeLessThanOrEqual(23);
  });
});

describe('NAT traversal signalling', () => {
  it('a srflx candidate naming a third party is dropped; the seen address is kept', async () => {
    const [a, b] = await Promise.all([acctFrom('na', '127.0.0.5'), acct('nb')]);
    const ch = await channel(a);
    await join(b, ch);
    const r = await a.c.req('submit_info', {
      ip: '127.0.0.5',
      port: 4000,
      udpPort: 4001,
      status: 'online',
      candidates: [
        { type: 'srflx', proto: 'tcp', ip: '198.51.100.7', port: 5000, base: 5000 },
        { type: 'srflx', proto: 'udp', ip: '127.0.0.9', port: 5001, base: 5001 },
        { type: 'srflx', proto: 'tcp', ip: '::ffff:198.51.100.7', port: 5002, base: 5002 },
        { type: 'srflx', proto: 'tcp', ip: '127.0.0.5', port: 5003, base: 5003 },
      ],
    });
    expect(r.body).toBeDefined();
    const l = await b.c.req('get_list', {});
    const e = l.body.peers.find((p: any) => p.username === a.username);
    const srflx = (e?.candidates ?? []).filter((x: any) => x.type === 'srflx');
    expect(srflx.map((x: any) => x.ip)).toEqual(['127.0.0.5']);
  });

  it('refuses an entry with malformed addresses, ports or too many candidates', async () => {
    const a = await acct('na');
    const base = { ip: '127.0.0.1', port: 4000, udpPort: 4001, status: 'online' };
    const bad: Record<string, unknown>[] = [
      { ip: 'localhost' },
      { ip: '01.2.3.4' },
      { ip: '1.2.3' },
      { ip: 'fe80::1%eth0' },
      { ip: '256.1.1.1' },
      { port: 0 },
      { port: 65536 },
      { udpPort: 0 },
      { udpPort: 70000 },
      { port: 1.5 },
      {
        candidates: Array.from({ length: 9 }, (_, i) => ({
          type: 'host',
          proto: 'tcp',
          ip: '127.0.0.1',
          port: 4000 + i,
        })),
      },
    ];
    for (const b of bad) {
      const r = await a.c.req('submit_info', { ...base, ...b });
      expect([JSON.stringify(b).slice(0, 40), r.error?.code]).toEqual([
        JSON.stringify(b).slice(0, 40),
        'E_BAD_REQUEST',
      ]);
    }
  });

  it('no candidate that reaches a co-member has a port outside 1–65535 or a non-IP address', async () => {
    const [a, b] = await Promise.all([acct('na'), acct('nb')]);
    const ch = await channel(a);
    await join(b, ch);
    const weird = [
      { type: 'host', proto: 'tcp', ip: '127.0.0.1', port: 0 },
      { type: 'host', proto: 'tcp', ip: '127.0.0.1', port: 65536 },
      { type: 'host', proto: 'udp', ip: 'evil.example', port: 53 },
      { type: 'host', proto: 'tcp', ip: '127.0.0.1', port: -1 },
      { type: 'host', proto: 'tcp', ip: '010.0.0.1', port: 80 },
      { type: 'host', proto: 'tcp', ip: 'fe80::1%lo', port: 80 },
    ];
    for (const cand of weird) {
      await a.c.req('submit_info', {
        ip: '127.0.0.1',
        port: 4000,
        udpPort: 4001,
        status: 'online',
        candidates: [cand],
      });
      const l = await b.c.req('get_list', {});
      const e = l.body.peers.find((p: any) => p.username === a.username);
      for (const x of e?.candidates ?? []) {
        expect([x.ip, x.port], JSON.stringify(cand)).toSatisfy(
          ([ip, port]: [string, number]) =>
            Number.isInteger(port) &&
            port >= 1 &&
            port <= 65535 &&
            /^(\d{1,3}\.){3}\d{1,3}$|^[0-9a-f:.]+$/i.test(ip) &&
            !/(^|\.)0\d/.test(ip),
        );
      }
    }
  });

  it('a punch event names the address the server saw, never the one the caller announced', async () => {
    const [m, h] = await Promise.all([acctFrom('pm', '127.0.0.7'), acct('ph')]);
    const ch = await channel(h);
    await join(m, ch);
    await goOnline(h, [ch]);
    await m.c.req('submit_info', {
      ip: '198.51.100.9',
      port: 4000,
      udpPort: 4001,
      status: 'online',
      candidates: [{ type: 'host', proto: 'tcp', ip: '198.51.100.9', port: 4000 }],
    });
    const id = relayId();
    const r = await m.c.req('punch', { to: toOf(h), port: 4444, id });
    expect(r.body).toBeDefined();
    await sleep(300);
    const ev = h.c.events.find((f) => f.ev === 'punch' && f.body.id === id);
    expect(ev?.body.ip).toBe('127.0.0.7');
    expect(ev?.body.from.username).toBe(m.username);
    expect(ev?.body.from.sessionId).toBe(m.sessionId);
  });

  it('punch and relay reach nobody the caller may not see (stranger, invisible, no entry, mismatched name, removed, visitor→member)', async () => {
    const [eve, alice, bob, inv, quiet] = await Promise.all([
      acct('pe'),
      acct('pa'),
      acct('pb'),
      acct('pi'),
      acct('pq'),
    ]);
    const ch = await channel(alice, true);
    for (const u of [bob, inv, quiet]) await join(u, ch);
    const other = await channel(eve);
    await join(bob, other); // eve shares a channel with bob only
    await goOnline(eve);
    await goOnline(alice, [ch]);
    await goOnline(bob);
    await goOnline(inv, [], 'invisible');
    const v = await visitor();
    await join(v, ch);
    await goOnline(v);
    const targets: [Client, { username: string; sessionId: string }, string][] = [
      [eve, toOf(alice), 'stranger'],
      [bob, toOf(inv), 'invisible'],
      [bob, toOf(quiet), 'no entry'],
      [eve, { username: bob.username, sessionId: alice.sessionId }, 'name of a co-member'],
      [eve, { username: alice.username, sessionId: bob.sessionId }, 'session of a co-member'],
      [v, toOf(bob), 'visitor to a plain member'],
      [eve, { username: alice.username, sessionId: crypto.randomUUID() }, 'unknown session'],
    ];
    const sent: string[] = [];
    for (const [from, to, what] of targets) {
      const pid = relayId();
      const p = await from.c.req('punch', { to, port: 4000, id: pid });
      expect([what, 'punch', p.error?.code]).toEqual([what, 'punch', 'E_NOT_FOUND']);
      const rid = relayId();
      const r = await from.c.req('relay', { to, id: rid });
      expect([what, 'relay', r.error?.code]).toEqual([what, 'relay', 'E_NOT_FOUND']);
      sent.push(pid, rid);
    }
    // The removed: alice removes bob, who no longer shares anything with her.
    await change(alice, ch, { remove: bob.username });
    await sleep(200);
    const pid = relayId();
    const rp = await bob.c.req('punch', { to: toOf(alice), port: 4000, id: pid });
    expect(['removed', rp.error?.code]).toEqual(['removed', 'E_NOT_FOUND']);
    sent.push(pid);
    await sleep(300);
    for (const u of [alice, bob, inv, quiet, eve])
      expect(
        u.c.events.filter(
          (f) => (f.ev === 'punch' || f.ev === 'relay') && sent.includes(f.body?.id),
        ),
      ).toEqual([]);
  });

  it('a punch flood from one session reaches its target at most burst + rate', async () => {
    const [m, h] = await Promise.all([acct('fm'), acct('fh')]);
    const ch = await channel(h);
    await join(m, ch);
    await goOnline(h, [ch]);
    await goOnline(m);
    const t0 = Date.now();
    const rs = await Promise.all(
      Array.from({ length: 60 }, () =>
        m.c.req('punch', { to: toOf(h), port: 4000, id: relayId() }),
      ),
    );
    const secs = (Date.now() - t0) / 1000;
    await sleep(300);
    const ok = rs.filter((r) => r.body).length;
    expect(ok).toBeLessThanOrEqual(10 + Math.ceil(2 * secs) + 1);
    expect(evCount(h.c, 'punch')).toBe(ok);
  });

  it('punch fields out of range are refused (port 0/65536/-1/fraction, ids of bad shape)', async () => {
    const [m, h] = await Promise.all([acct('bm'), acct('bh')]);
    const ch = await channel(h);
    await join(m, ch);
    await goOnline(h, [ch]);
    await goOnline(m);
    const bad: Record<string, unknown>[] = [
      { port: 0 },
      { port: 65536 },
      { port: -1 },
      { port: 1.5 },
      { port: '80' },
      { id: 'short' },
      { id: 'x'.repeat(33) },
      { id: 'bad id!!' },
    ];
    for (const b of bad) {
      const r = await m.c.req('punch', { to: toOf(h), port: 4000, id: relayId(), ...b });
      expect([JSON.stringify(b), r.error?.code]).toEqual([JSON.stringify(b), 'E_BAD_REQUEST']);
    }
    await sleep(200);
    expect(evCount(h.c, 'punch')).toBe(0);
  });

  it('STUN answers Binding requests only, with the sender’s address, at most 10/s (burst 20)', async () => {
    const { c } = await serverHello(srv);
    const rf = await c.req('reflect', {});
    c.close();
    const stunPort = rf.body.udpPort as number;
    expect(stunPort).toBeGreaterThan(0);
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    const got: Buffer[] = [];
    sock.on('message', (m) => got.push(m));
    const req = (type: number, extra = Buffer.alloc(0)) => {
      const b = Buffer.alloc(20);
      b.writeUInt16BE(type, 0);
      b.writeUInt16BE(extra.length, 2);
      b.writeUInt32BE(0x2112a442, 4);
      crypto.randomBytes(12).copy(b, 8);
      return Buffer.concat([b, extra]);
    };
    // Not Binding requests: an indication, a response, garbage, a wrong cookie.
    const notBinding = [req(0x0011), req(0x0101), Buffer.from('hello world'), Buffer.alloc(20)];
    for (const d of notBinding) sock.send(d, stunPort, '127.0.0.1');
    await sleep(300);
    expect(got.length).toBe(0);
    for (let i = 0; i < 60; i++) sock.send(req(0x0001), stunPort, '127.0.0.1');
    await sleep(500);
    expect(got.length).toBeGreaterThan(0);
    expect(got.length).toBeLessThanOrEqual(23);
    const a = got[0]!;
    expect(a.length).toBe(32);
    const xport = a.readUInt16BE(26) ^ 0x2112;
    expect(xport).toBe(sock.address().port);
    sock.close();
  });
});

describe('typing', () => {
  async function room() {
    const [alice, bob, carol] = await Promise.all([acct('ta'), acct('tb'), acct('tc')]);
    const ch = await channel(alice, true);
    await join(bob, ch);
    await join(carol, ch);
    await goOnline(alice, [ch]);
    await goOnline(bob);
    await goOnline(carol);
    return { alice, bob, carol, ch };
  }

  it('the typist is the session’s user, whatever the body claims', async () => {
    const { alice, bob, carol, ch } = await room();
    const r = await bob.c.req('typing', { channelId: ch, username: carol.username, user: 'x' });
    // Either refused as a bad body, or passed on under bob's name: never carol's.
    await sleep(300);
    const seen = alice.c.events.filter((f) => f.ev === 'typing').map((f) => f.body.username);
    if (r.error) expect(r.error.code).toBe('E_BAD_REQUEST');
    expect(seen.filter((u) => u !== bob.username)).toEqual([]);
    expect(evCount(bob.c, 'typing')).toBe(0);
  });

  it('a stranger, a visitor, an unknown channel, a member who left or was removed: refused, nothing pushed', async () => {
    const { alice, bob, carol, ch } = await room();
    const eve = await acct('te');
    await goOnline(eve);
    const v = await visitor();
    await join(v, ch);
    await goOnline(v);
    expect((await eve.c.req('typing', { channelId: ch })).error?.code).toBe('E_NOT_MEMBER');
    expect((await v.c.req('typing', { channelId: ch })).error?.code).toBe('E_VISITOR_READ_ONLY');
    expect((await eve.c.req('typing', { channelId: uuid7() })).error?.code).toBe(
      'E_CHANNEL_NOT_FOUND',
    );
    await carol.c.req('channel_leave', { channelId: ch });
    expect((await carol.c.req('typing', { channelId: ch })).error?.code).toBe('E_NOT_MEMBER');
    await change(alice, ch, { remove: bob.username });
    await sleep(200);
    const rb = await bob.c.req('typing', { channelId: ch });
    expect(rb.error?.code).toBeDefined();
    await sleep(300);
    expect(evCount(alice.c, 'typing')).toBe(0);
    expect(evCount(v.c, 'typing')).toBe(0);
  });

  it('one who may no longer read stops hearing typing (removed member, left member, visitor after allowVisitors false, stranger that subscribes)', async () => {
    const { alice, bob, carol, ch } = await room();
    const dave = await acct('td');
    await join(dave, ch);
    await goOnline(dave);
    const eve = await acct('te');
    const v = await visitor();
    await join(v, ch);
    // eve is no member: she reads the channel only while it allows visitors.
    const sub = await eve.c.req('subscribe', { channelIds: [ch] });
    expect(sub.body.channelIds).toEqual([ch]);
    await change(alice, ch, { remove: bob.username });
    await dave.c.req('channel_leave', { channelId: ch });
    await change(alice, ch, { allowVisitors: false });
    await sleep(300);
    const before = {
      bob: evCount(bob.c, 'typing'),
      dave: evCount(dave.c, 'typing'),
      v: evCount(v.c, 'typing'),
      eve: evCount(eve.c, 'typing'),
    };
    expect((await carol.c.req('typing', { channelId: ch })).body).toBeDefined();
    await sleep(500);
    expect(evCount(alice.c, 'typing', (b) => b.username === carol.username)).toBe(1);
    expect({
      bob: evCount(bob.c, 'typing'),
      dave: evCount(dave.c, 'typing'),
      v: evCount(v.c, 'typing'),
      eve: evCount(eve.c, 'typing'),
    }).toEqual(before);
  });

  it('no entry, or an invisible one: dropped quietly; own sessions hear nothing', async () => {
    const { alice, bob, ch } = await room();
    const sly = await acct('ts');
    await join(sly, ch); // no submit_info at all
    expect((await sly.c.req('typing', { channelId: ch })).body).toEqual({});
    const inv = await acct('ti');
    await join(inv, ch);
    await goOnline(inv, [], 'invisible');
    expect((await inv.c.req('typing', { channelId: ch })).body).toEqual({});
    // bob's second session, online too, must not hear bob.
    const { c: bob2 } = await serverHello(srv);
    expect((await bob2.req('resume', { token: bob.token })).body).toBeDefined();
    await bob2.req('subscribe', { channelIds: [ch] });
    await bob.c.req('typing', { channelId: ch });
    await sleep(400);
    const names = alice.c.events.filter((f) => f.ev === 'typing').map((f) => f.body.username);
    expect(names).toEqual([bob.username]);
    expect(bob2.events.filter((f) => f.ev === 'typing')).toEqual([]);
    bob2.close();
  });

  it('a flood of typing reaches a member at most once per 2 s per channel', async () => {
    const { alice, bob, ch } = await room();
    const t0 = Date.now();
    const rs = await Promise.all(
      Array.from({ length: 200 }, () => bob.c.req('typing', { channelId: ch })),
    );
    expect(rs.every((r) => r.body)).toBe(true);
    await sleep(Math.max(0, 1500 - (Date.now() - t0)));
    expect(evCount(alice.c, 'typing')).toBe(1);
  });
});

describe('search through a peer’s local API', () => {
  const until = async (f: () => Promise<boolean>, ms = 8000) => {
    const t0 = Date.now();
    while (Date.now() - t0 < ms) {
      if (await f()) return true;
      await sleep(100);
    }
    return false;
  };

  it('a removed member’s peer, the next account and a visitor on it find nothing of the cached channel', async () => {
    const alice = await acct('pa');
    const ch = await channel(alice, true);
    const peer = await startPeer(srv);
    const bobName = uname('pb');
    expect(
      (await peer.api('POST', '/api/register', { username: bobName, password: 'pw-' + bobName }))
        .status,
    ).toBe(201);
    expect(
      (await peer.api('POST', '/api/login', { username: bobName, password: 'pw-' + bobName }))
        .status,
    ).toBe(200);
    expect((await peer.api('POST', `/api/channels/${ch}/join`)).status).toBe(200);
    await post(alice, ch, 'lemur secret one');
    const q = (extra = '') => peer.api('GET', '/api/search?q=lemur' + extra);
    const held = await until(async () => {
      const r = await q();
      return r.status === 200 && r.body.results.length === 1;
    });
    expect(held).toBe(true);
    await change(alice, ch, { remove: bobName });
    await post(alice, ch, 'lemur secret two');
    await sleep(1500);
    const after = await q();
    expect(after.body.results ?? []).toEqual([]);
    const named = await q('&channelId=' + ch);
    expect([named.status, named.body.results ?? []]).toSatisfy(
      ([s, r]: [number, unknown[]]) => s >= 400 || r.length === 0,
    );
    // Another account on the same peer.
    const carol = uname('pc');
    await peer.api('POST', '/api/register', { username: carol, password: 'pw-' + carol });
    expect(
      (await peer.api('POST', '/api/login', { username: carol, password: 'pw-' + carol })).status,
    ).toBe(200);
    expect((await q()).body.results ?? []).toEqual([]);
    // A visitor on the same peer, while the channel still allows visitors, reads it by right;
    // once it stops allowing them, nothing.
    expect(
      (
        await peer.api('POST', '/api/visitor', {
          name: 'v' + crypto.randomBytes(4).toString('hex'),
        })
      ).status,
    ).toBe(200);
    await change(alice, ch, { allowVisitors: false });
    await sleep(800);
    expect((await q()).body.results ?? []).toEqual([]);
    const vn = await q('&channelId=' + ch);
    expect([vn.status, vn.body.results ?? []]).toSatisfy(
      ([s, r]: [number, unknown[]]) => s >= 400 || r.length === 0,
    );
  });

  it('malformed queries are refused or answered, never a 5xx', async () => {
    const peer = await startPeer(srv);
    const name = uname('pm');
    await peer.api('POST', '/api/register', { username: name, password: 'pw-' + name });
    await peer.api('POST', '/api/login', { username: name, password: 'pw-' + name });
    const qs = [
      'q=' + 'a'.repeat(201),
      'q=%ED%A0%80',
      'q=%FF%FE',
      'q=%00',
      'q=',
      'q=a&q=b',
      'q=a&limit=51',
      'q=a&limit=-1',
      'q=a&channelId=nope',
      'q=a&channelId=' + uuid7(),
      'q=a&before=' + unknownId(),
      'q=%22%20OR%20*%20NEAR(',
      'q=' + encodeURIComponent('𝒜'.repeat(200)),
    ];
    for (const x of qs) {
      const r = await peer.api('GET', '/api/search?' + x);
      expect([x.slice(0, 40), r.status < 500]).toEqual([x.slice(0, 40), true]);
    }
    expect((await peer.api('GET', '/api/search?q=' + 'a'.repeat(201))).status).toBe(400);
  });
});

describe('typing at a real host over P2P', () => {
  it('a host passes on typing only from members it sees online, under the link’s user, at most once per 2 s', async () => {
    const host = await startPeer(srv);
    const an = uname('ha');
    await host.api('POST', '/api/register', { username: an, password: 'pw-' + an });
    expect(
      (await host.api('POST', '/api/login', { username: an, password: 'pw-' + an })).status,
    ).toBe(200);
    const cr = await host.api('POST', '/api/channels', { name: 'p2p-typing', allowVisitors: true });
    expect(cr.status).toBe(201);
    const ch = cr.body.id as string;
    const [bob, carol, eve, inv] = await Promise.all([
      acct('hb'),
      acct('hc'),
      acct('he'),
      acct('hi'),
    ]);
    for (const u of [bob, carol, inv]) await join(u, ch);
    await goOnline(bob);
    await goOnline(carol);
    await goOnline(eve);
    await goOnline(inv, [], 'invisible');
    await sleep(800);
    const link = async (u: Client) => {
      const l = await p2pConnect(host, u);
      expect(l.ok).toBe(true);
      await sleep(100);
      return l.c;
    };
    const [lb, lc, le, li] = [await link(bob), await link(carol), await link(eve), await link(inv)];
    await lc.req('subscribe', { channelIds: [ch] });
    await le.req('subscribe', { channelIds: [ch] }); // eve reads (visitors allowed), no member
    // Spoofed name in the body, then a flood: carol hears bob once, under bob's name.
    const rs = await Promise.all(
      Array.from({ length: 50 }, () =>
        lb.req('typing', { channelId: ch, username: carol.username }),
      ),
    );
    expect(rs.filter((r) => r.error && r.error.code !== 'E_BAD_REQUEST')).toEqual([]);
    const te = await le.req('typing', { channelId: ch });
    expect(te.error?.code).toBe('E_NOT_MEMBER');
    const ti = await li.req('typing', { channelId: ch });
    expect(ti.error).toBeUndefined();
    const tu = await lb.req('typing', { channelId: uuid7() });
    expect(tu.error?.code).toBe('E_CHANNEL_NOT_FOUND');
    await sleep(700);
    const heard = lc.events.filter((f) => f.ev === 'typing').map((f) => f.body.username);
    expect(heard).toEqual([bob.username]);
    // bob removed by the owner: his typing goes nowhere.
    expect((await host.api('DELETE', `/api/channels/${ch}/members/${bob.username}`)).status).toBe(
      200,
    );
    await sleep(2500);
    const n0 = lc.events.filter((f) => f.ev === 'typing').length;
    const tb = await lb.req('typing', { channelId: ch });
    await sleep(500);
    expect([
      tb.error?.code ?? 'accepted',
      lc.events.filter((f) => f.ev === 'typing').length,
    ]).toEqual([tb.error?.code ?? 'accepted', n0]);
    for (const c of [lb, lc, le, li]) c.close();
  });
});
