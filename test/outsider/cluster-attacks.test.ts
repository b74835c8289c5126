// An outside attacker against several server instances sharing one PostgreSQL database and one
// NATS (README "Several server instances", PROTOCOL.md §3.7, SECURITY.md "Several server
// instances", SCALING.md, SPEC §11). Written from those documents and the test helpers alone.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { tempDir } from '../testnet.js';
import { spawnServer, type HchatProcess } from '../processes.js';
import { launchHchat, type Launched } from '../hchat-spawn.js';
import { launchNats, startNats, type TestNats } from '../nats.js';
import { createTestDatabase } from '../pg-kit.js';
import { signingKeyFile } from '../cluster-kit.js';
import { sign } from '../hostile/kit.js';
import {
  Raw,
  checkSession,
  registerLogin,
  serverHello,
  signMessage,
  newKey,
  sleep,
  uuid7,
} from './lib.js';

type Addr = { host: string; port: number };
type Login = Awaited<ReturnType<typeof registerLogin>>;

const clients: Raw[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});

/** Instance i's framed-protocol address (`at`) and HTTP base (`http`). */
function addresses(servers: HchatProcess[]) {
  const at = (i: number): Addr => {
    const [host, port] = servers[i]!.ready.tcp!.split(':');
    return { host: host!, port: Number(port) };
  };
  const http = (i: number) => servers[i]!.ready.http!.replace(/\/$/, '');
  return { at, http };
}

/**
 * `n` instances on a fresh database and a NATS of their own, signing with one key: for the tests
 * that count per address group (127.0.0.1 for every client here), kill an instance or the bus, or
 * need flags of their own.
 */
async function cluster(n: number, extra: string[] = []) {
  const db = await createTestDatabase();
  onTestFinished(() => db.drop());
  const nats = await startNats();
  const dir = tempDir();
  const key = signingKeyFile(dir);
  const servers: HchatProcess[] = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      spawnServer(path.join(dir, `srv${i}`), {
        extra: ['--store', db.url, '--bus', nats.url, '--signing-key', key, ...extra],
      }),
    ),
  );
  return { ...addresses(servers), servers, nats, db, dir };
}

/**
 * The deployment the other tests share (three instances, started by the first of them, ended
 * after the file): each test names its accounts, bots and visitors with a suffix of its own
 * (`names`), makes its own channels and tokens, and so meets nothing of another test's. What they
 * share is 127.0.0.1's address group, so these flags raise the limits of it that they would
 * otherwise add up against (registrations: about 60 in all), and the per-account ones some of
 * them test at other values (owned channels: 4, no other test creating more than one per account;
 * post rates: no other test posting more than a few a second). The limits counted per address
 * group that a test here attacks (registrations), and a bus or an instance killed, stay with
 * `cluster`.
 */
const SHARED_FLAGS = [
  '--max-registrations-per-address',
  '1000',
  '--channels-per-account',
  '4',
  '--posts-per-second',
  '1000',
  '--post-burst',
  '1000',
];
let sharedDeployment:
  Promise<{ k: ReturnType<typeof addresses>; end: () => Promise<void> }> | undefined;

async function launchShared() {
  const db = await createTestDatabase();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hchat-test-'));
  let nats: TestNats | undefined;
  const launched: Launched[] = [];
  const end = async () => {
    for (const l of launched)
      if (l.proc.exitCode === null && l.proc.signalCode === null) l.proc.kill('SIGKILL');
    await Promise.all(launched.map((l) => l.exited));
    await nats?.kill();
    await db.drop();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    nats = await launchNats();
    const key = signingKeyFile(dir);
    for (let i = 0; i < 3; i++) {
      launched.push(
        launchHchat([
          'server',
          '--port',
          '0',
          '--http-port',
          '0',
          '--data',
          path.join(dir, `srv${i}`),
          '--store',
          db.url,
          '--bus',
          nats.url,
          '--signing-key',
          key,
          ...SHARED_FLAGS,
        ]),
      );
    }
    return { k: addresses(await Promise.all(launched.map((l) => l.ready))), end };
  } catch (err) {
    await end();
    throw err;
  }
}

afterAll(async () => {
  const d = sharedDeployment;
  sharedDeployment = undefined;
  if (d) await (await d.catch(() => undefined))?.end();
});

const SUFFIX_LETTERS = 'abcdefghjkpqstxyz'; // none a look-alike of another, alone or paired
let suffixes = 0;

/**
 * The shared deployment's instances 0, 1 and 2, and `names`: `base` with this test's suffix
 * (`_` and two letters), so that no name of it is, or looks like, another test's.
 */
async function shared() {
  sharedDeployment ??= launchShared();
  const { k } = await sharedDeployment;
  const n = suffixes++;
  const L = SUFFIX_LETTERS;
  const suffix = `_${L[Math.floor(n / L.length) % L.length]}${L[n % L.length]}`;
  return { ...k, suffix, names: (base: string) => base + suffix };
}

async function hello(a: Addr) {
  const { c, hello: h } = await serverHello(a);
  clients.push(c);
  expect(h.t).toBe('hello');
  return c;
}

async function user(a: Addr, name: string): Promise<Login> {
  const u = await registerLogin(a, name);
  clients.push(u.c);
  return u;
}

/** A second connection of `u`'s session on instance `a` (hello, resume). */
async function resumeOn(a: Addr, token: string) {
  const c = await hello(a);
  const r = await c.req('resume', { token });
  return { c, r };
}

async function waitUntil(cond: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await sleep(50);
  }
  return cond();
}

async function createChannel(u: Login, allowVisitors = false, name = 'room') {
  const r = await u.c.req('channel_create', { id: uuid7(), name, allowVisitors });
  expect(r.error).toBeUndefined();
  return r.body.id as string;
}

function post(
  u: { c: Raw; key: Login['key']; cert: string; username: string },
  ch: string,
  text: string,
) {
  const m = signMessage(u.key, u.cert, ch, u.username, text);
  return { m, send: (c: Raw = u.c) => c.req('post', { message: m }) };
}

const online = (c: Raw, port: number) =>
  c.req('submit_info', { ip: '203.0.113.7', port, udpPort: port, status: 'online' });

const entriesOf = async (c: Raw): Promise<any[]> => {
  const r = await c.req('get_list', {});
  expect(r.error).toBeUndefined();
  return r.body.peers;
};

const messageEvents = (c: Raw, id: string) =>
  c.events.filter((e) => e.ev === 'message' && e.body?.message?.id === id).length;

describe('outsider: several instances on PostgreSQL and NATS', () => {
  // PROTOCOL.md §3.3 logout: "revokes the session (token and certificate are refused from now
  // on, session_revoked goes out)"; §3.2: "When its session is revoked the server closes the
  // connection with error E_SESSION_INVALID whose message says why";
  // §3.7: "a session, its token and its certificate are good on every instance".
  it('a logout on one instance is honoured by the others: resume, session_check, the open connection, co-members', async () => {
    const k = await shared();
    const alice = await user(k.at(0), k.names('alice'));
    const bob = await user(k.at(1), k.names('bob'));
    const ch = await createChannel(alice);
    expect((await bob.c.req('channel_join', { channelId: ch })).error).toBeUndefined();
    // alice's session also open on instance 1 (the victim's second connection).
    const second = await resumeOn(k.at(1), alice.token);
    expect(second.r.error).toBeUndefined();
    expect(second.r.body.sessionId).toBe(alice.sessionId);

    expect((await alice.c.req('logout', {})).error).toBeUndefined();

    // The token no longer resumes anywhere.
    for (const i of [0, 1]) {
      const { r } = await resumeOn(k.at(i), alice.token);
      expect(r.error?.code, `resume on instance ${i}`).toBe('E_SESSION_INVALID');
    }
    // bob (on instance 1), a host alice's session dials (its hello's dial, §4.1), asks whether
    // it is live.
    expect(await checkSession(bob, alice.sessionId, alice.key)).toBe(false);
    // The connection of that session on instance 1 is closed with E_SESSION_INVALID.
    expect(await waitUntil(() => second.c.closed, 5000)).toBe(true);
    expect(second.c.frames.some((f) => f.t === 'error' && f.code === 'E_SESSION_INVALID')).toBe(
      true,
    );
    // Its co-member on the other instance heard session_revoked.
    expect(
      await waitUntil(
        () =>
          bob.c.events.some(
            (e) => e.ev === 'session_revoked' && e.body.sessionId === alice.sessionId,
          ),
        5000,
      ),
    ).toBe(true);
  });

  // Same promise, at the moment it matters: a post signed with the logged-out session's
  // certificate, sent on instance 1 right after instance 0 answered the logout, must not be
  // stored ("token and certificate are refused from now on").
  it('a post sent on another instance right after the logout was answered is not stored', async () => {
    const k = await shared();
    const alice = await user(k.at(0), k.names('alice'));
    const ch = await createChannel(alice);
    const bob = await user(k.at(1), k.names('bob'));
    expect((await bob.c.req('channel_join', { channelId: ch })).error).toBeUndefined();
    const stored: string[] = [];
    for (let round = 0; round < 5; round++) {
      const u = round === 0 ? alice : await user(k.at(0), k.names(`alice${round}`));
      if (round > 0) {
        expect((await u.c.req('channel_join', { channelId: ch })).error).toBeUndefined();
      }
      const second = await resumeOn(k.at(1), u.token);
      expect(second.r.error).toBeUndefined();
      const p = post({ ...u, c: second.c }, ch, `after logout ${round}`);
      const out = await u.c.req('logout', {});
      expect(out.error).toBeUndefined();
      const r = await second.c.req('post', { message: p.m }, 2000);
      if (r?.body?.seq !== undefined) stored.push(`${u.username}: seq ${r.body.seq}`);
    }
    const s = await bob.c.req('sync', { channelId: ch, since: 0, limit: 500 });
    const after = s.body.messages.filter((m: any) => /after logout/.test(m.text ?? ''));
    expect({ answeredStored: stored, inSync: after.length }).toEqual({
      answeredStored: [],
      inSync: 0,
    });
  });

  // PROTOCOL.md §3.3 login: "An account has at most 10 live sessions: a login past it revokes
  // the oldest"; SECURITY.md lists post rates, presence, visitors, the door and the relay as
  // per instance, not the session cap.
  it('the 10-session cap of an account counts the sessions made on every instance', async () => {
    const k = await shared();
    const first = await user(k.at(0), k.names('alice'));
    const logins: {
      c: Raw;
      token: string;
      sessionId: string;
      key: { privateKey: import('node:crypto').KeyObject };
    }[] = [first];
    for (let i = 1; i <= 10; i++) {
      const c = await hello(k.at(i % 2));
      const key = newKey();
      const l = await c.req('login', {
        username: first.username,
        password: first.password,
        publicKey: key.pk,
      });
      expect(l.error, `login ${i}`).toBeUndefined();
      logins.push({ c, token: l.body.token, sessionId: l.body.sessionId, key });
    }
    const newest = logins[10]!;
    // Asked as a host each session dials would ask (the dial of its hello, §4.1).
    const asHost = (l: (typeof logins)[number]) => checkSession(newest, l.sessionId, l.key);
    // The oldest's revocation, given the same 500 ms as before at most.
    await waitUntil(async () => (await asHost(first)) === false, 500);
    const live: (boolean | string)[] = [];
    for (const l of logins) live.push(await asHost(l));
    expect(live.filter((x) => x === true).length, `live: ${JSON.stringify(live)}`).toBe(10);
    expect(live[0]).toBe(false);
    for (const i of [0, 1]) {
      const { r } = await resumeOn(k.at(i), first.token);
      expect(r.error?.code, `resume of the oldest on instance ${i}`).toBe('E_SESSION_INVALID');
    }
    expect(await waitUntil(() => first.c.closed, 5000)).toBe(true);
  });

  // PROTOCOL.md §3.3 login: "An account has at most 10 live sessions: a login past it revokes
  // the oldest".
  it('logins sent at once to three instances leave exactly 10 live sessions, the others closed', async () => {
    const k = await shared();
    const first = await user(k.at(0), k.names('alice'));
    const sessions: { c: Raw; id: string; key: ReturnType<typeof newKey> }[] = [
      { c: first.c, id: first.sessionId, key: first.key },
    ];
    // Waves of six logins at once, two per instance (at most 2 password checks run at once per
    // budget on each instance).
    for (let wave = 0; wave < 4; wave++) {
      const conns = await Promise.all(Array.from({ length: 6 }, (_, i) => hello(k.at(i % 3))));
      const keys = conns.map(() => newKey());
      const rs = await Promise.all(
        conns.map((c, i) =>
          c.req('login', {
            username: first.username,
            password: first.password,
            publicKey: keys[i]!.pk,
          }),
        ),
      );
      rs.forEach(
        (r, i) => r.body && sessions.push({ c: conns[i]!, id: r.body.sessionId, key: keys[i]! }),
      );
    }
    expect(sessions.length).toBeGreaterThan(12);
    const asker = await user(k.at(1), k.names('bob'));
    const count = async () => {
      let live = 0;
      let revokedButOpen = 0;
      for (const x of sessions) {
        if ((await checkSession(asker, x.id, x.key)) === true) live++;
        else if (!x.c.closed) revokedButOpen++;
      }
      return { live, revokedButOpen };
    };
    // Revocations and closes, given 1.5 s at most (as the fixed wait before gave them).
    await waitUntil(async () => {
      const n = await count();
      return n.live === 10 && n.revokedButOpen === 0;
    }, 1500);
    const { live, revokedButOpen } = await count();
    expect({ sessions: sessions.length, live, revokedButOpen }).toEqual({
      sessions: sessions.length,
      live: 10,
      revokedButOpen: 0,
    });
  });

  // PROTOCOL.md §3.3 channel_create: "E_FORBIDDEN when the user already owns 200 channels"
  // (--channels-per-account); not among the limits SECURITY.md says are held per instance.
  it('the owned-channel cap holds for creations sent at once to three instances', async () => {
    const k = await shared(); // --channels-per-account 4
    const alice = await user(k.at(0), k.names('alice'));
    const conns = [alice.c];
    for (const i of [1, 2]) conns.push((await resumeOn(k.at(i), alice.token)).c);
    const rs = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        conns[i % 3]!.req('channel_create', { id: uuid7(), name: `c${i}`, allowVisitors: false }),
      ),
    );
    const ok = rs.filter((r) => !r.error).length;
    const mine = await alice.c.req('my_channels', {});
    expect({ created: ok, owned: mine.body.channels.length }).toEqual({ created: 4, owned: 4 });
  });

  // PROTOCOL.md §11 bot_create: "E_FORBIDDEN past 10 bots per user"; SECURITY.md: "the token and
  // bot caps are in the store, counted under a lock per owner".
  it('the bot cap holds for creations sent at once to three instances', async () => {
    const k = await shared();
    const alice = await user(k.at(0), k.names('alice'));
    const conns = [alice.c];
    for (const i of [1, 2]) conns.push((await resumeOn(k.at(i), alice.token)).c);
    const rs = await Promise.all(
      Array.from({ length: 15 }, (_, i) =>
        conns[i % 3]!.req('bot_create', { username: k.names(`robot${i}`) }),
      ),
    );
    const ok = rs.filter((r) => !r.error).length;
    const bots = await alice.c.req('bots', {});
    expect({ created: ok, listed: bots.body.bots.length }).toEqual({ created: 10, listed: 10 });
  });

  // PROTOCOL.md §3.3 register: "E_USERNAME_TAKEN also for a name whose confusable skeleton
  // matches an account's" (SECURITY.md: "new usernames may not look like existing ones").
  it('look-alike usernames registered at once on different instances: one wins', async () => {
    const k = await shared(); // --max-registrations-per-address 1000
    const conns = await Promise.all([0, 1, 2].map((i) => hello(k.at(i))));
    const wrong: string[] = [];
    for (let round = 0; round < 4; round++) {
      const base = k.names(`mallet${round}`);
      const names = [base, base.toUpperCase(), `rn${base.slice(1)}`];
      const rs = await Promise.all(
        names.map((n, i) => conns[i]!.req('register', { username: n, password: 'pw-pw-pw-1' })),
      );
      const ok = rs.filter((r) => !r.error).length;
      if (ok !== 1)
        wrong.push(`${names.join('/')}: ${JSON.stringify(rs.map((r) => r.body ?? r.error?.code))}`);
    }
    expect(wrong).toEqual([]);
  });

  // PROTOCOL.md §3.3 visitor: "E_NAME_TAKEN when the name's confusable skeleton matches a
  // registered user or a visitor present now"; SECURITY.md front door: a stranger MUST NOT "pass a
  // name off as another: visitor names whose TR39 confusable skeleton matches a registered user or
  // a visitor present now are refused". Only the visitor *count* per address group is documented
  // as per instance.
  it('a visitor cannot take the name of a visitor present on another instance', async () => {
    // The only test with visitors on the shared deployment: the live visitors of 127.0.0.1 (20 per
    // instance) are its own, and its names (suffixed) look like no other test's.
    const k = await shared();
    const s = k.suffix;
    await user(k.at(0), `alice${s}`);
    const got: Record<string, string> = {};
    const visit = async (i: number, name: string) => {
      const c = await hello(k.at(i));
      const r = await c.req('visitor', { name, publicKey: newKey().pk });
      return r.error?.code ?? `entered as ${r.body.username}`;
    };
    got['first wanderer on 0'] = await visit(0, `wanderer${s}`);
    got['Wanderer on 0'] = await visit(0, `Wanderer${s}`);
    got['Wanderer on 1'] = await visit(1, `Wanderer${s}`);
    got['WANDERER on 2'] = await visit(2, `WANDERER${s.toUpperCase()}`);
    got['Alice (registered) on 2'] = await visit(2, `Alice${s}`);
    const together = await Promise.all(
      [0, 1, 2].map((i) => visit(i, i === 1 ? `ROVER${s.toUpperCase()}` : `rover${s}`)),
    );
    got['rover at once on 0,1,2'] = String(together.filter((r) => r.startsWith('entered')).length);
    expect(got).toEqual({
      'first wanderer on 0': `entered as wanderer${s}`,
      'Wanderer on 0': 'E_NAME_TAKEN',
      'Wanderer on 1': 'E_NAME_TAKEN',
      'WANDERER on 2': 'E_NAME_TAKEN',
      'Alice (registered) on 2': 'E_NAME_TAKEN',
      'rover at once on 0,1,2': '1',
    });
  });

  // PROTOCOL.md §3.3 "Address groups, login budgets": "(account, address group): 5 failures …
  // The budgets … are the same on every instance of a deployment (counted in its store)";
  // README: "an attacker spread over the instances gets what one gives".
  it('password guesses spread over three instances share one budget', async () => {
    // On the shared deployment: the only failed logins there are these (every other test logs in
    // with the right password), 12 of the 30 that lock the address group, and what locks is the
    // pair (this test's victim, 127.0.0.1).
    const k = await shared();
    const victim = await user(k.at(0), k.names('victim'));
    const conns = await Promise.all([0, 1, 2].map((i) => hello(k.at(i))));
    const codes: string[] = [];
    for (let i = 0; i < 12; i++) {
      const r = await conns[i % 3]!.req('login', {
        username: victim.username,
        password: `guess-${i}`,
        publicKey: newKey().pk,
      });
      codes.push(r.error?.code ?? 'OK');
    }
    const evaluated = codes.filter((c) => c === 'E_BAD_CREDENTIALS').length;
    expect(evaluated, codes.join(' ')).toBeLessThanOrEqual(5);
    // The right password from the locked pair is refused too, on every instance.
    for (const i of [0, 1, 2]) {
      const r = await conns[i]!.req('login', {
        username: victim.username,
        password: victim.password,
        publicKey: newKey().pk,
      });
      expect(r.error?.code, `instance ${i}`).toBe('E_RATE_LIMITED');
      expect(r.error?.retryAfterMs).toBeGreaterThan(0);
    }
  });

  // PROTOCOL.md §3.3 register: "E_RATE_LIMITED past 10 registrations an hour per address group";
  // SECURITY.md: "registrations counted at once on several instances all count, and none passes a
  // limit".
  it('registrations spread over three instances, some at once, stop at 10 for the address group', async () => {
    const k = await cluster(3);
    const conns = await Promise.all([0, 1, 2].map((i) => hello(k.at(i))));
    let ok = 0;
    const codes: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await conns[i % 3]!.req('register', {
        username: `seq${i}`,
        password: 'pw-pw-pw-1',
      });
      codes.push(r.error?.code ?? 'OK');
      if (!r.error) ok++;
    }
    const par = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        conns[i % 3]!.req('register', { username: `par${i}`, password: 'pw-pw-pw-1' }),
      ),
    );
    for (const r of par) {
      codes.push(r.error?.code ?? 'OK');
      if (!r.error) ok++;
    }
    expect(ok, codes.join(' ')).toBeLessThanOrEqual(10);
  });

  // PROTOCOL.md §3.3 post: "idempotent by message.id: the same message again answers duplicate:
  // true and the first seq"; README aim 1: "reaches every replica exactly once"; §3.7: "a message
  // stored through one instance is pushed by every instance to the connections subscribed".
  it('one post sent to three instances at once is stored once, numbered once and pushed once', async () => {
    const k = await shared();
    const alice = await user(k.at(0), k.names('alice'));
    const ch = await createChannel(alice);
    const watchers = await Promise.all([0, 1, 2].map((i) => user(k.at(i), k.names(`watcher${i}`))));
    for (const w of watchers) {
      expect((await w.c.req('channel_join', { channelId: ch })).error).toBeUndefined();
    }
    const conns = [alice.c];
    for (const i of [1, 2]) {
      const s = await resumeOn(k.at(i), alice.token);
      expect(s.r.error).toBeUndefined();
      conns.push(s.c);
    }
    const ids: string[] = [];
    const problems: string[] = [];
    for (let n = 0; n < 15; n++) {
      const { m } = post(alice, ch, `twice ${n}`);
      ids.push(m.id);
      const rs = await Promise.all(conns.map((c) => c.req('post', { message: m })));
      const seqs = new Set(rs.map((r) => r.body?.seq));
      const fresh = rs.filter((r) => r.body?.duplicate === false).length;
      if (seqs.size !== 1 || fresh !== 1 || rs.some((r) => r.error)) {
        problems.push(`#${n}: ${JSON.stringify(rs.map((r) => r.body ?? r.error))}`);
      }
    }
    await sleep(1500);
    for (const [i, w] of watchers.entries()) {
      for (const id of ids) {
        const n = messageEvents(w.c, id);
        if (n !== 1) problems.push(`watcher on instance ${i} got ${n} pushes of ${id}`);
      }
    }
    const s = await watchers[1]!.c.req('sync', { channelId: ch, since: 0, limit: 500 });
    const seqs = s.body.messages.map((m: any) => m.seq);
    expect(s.body.messages.length).toBe(15);
    expect(seqs).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
    expect(problems).toEqual([]);
  });

  // README "Running on PostgreSQL": "numbers each channel's messages correctly however many
  // instances write it"; §3.6 "exactly once".
  it('different posts to the same channel from three instances at once get distinct, contiguous seqs', async () => {
    const k = await shared(); // --posts-per-second 1000 --post-burst 1000
    const us = await Promise.all([0, 1, 2].map((i) => user(k.at(i), k.names(`writer${i}`))));
    const ch = await createChannel(us[0]!);
    for (const u of us.slice(1)) {
      expect((await u.c.req('channel_join', { channelId: ch })).error).toBeUndefined();
    }
    const rs = await Promise.all(
      us.flatMap((u) =>
        Array.from({ length: 40 }, (_, n) => post(u, ch, `${u.username} ${n}`).send()),
      ),
    );
    const errors = rs.filter((r) => r.error).map((r) => r.error.code);
    expect(errors).toEqual([]);
    const seqs = rs.map((r) => r.body.seq as number).sort((a, b) => a - b);
    expect(seqs).toEqual(Array.from({ length: 120 }, (_, i) => i + 1));
  });

  // PROTOCOL.md §3.3 submit_info: "At most 10 entries per account … at once"; SECURITY.md: "its
  // cap per account is deployment-wide (every instance holds the whole list)"; "it also bounds
  // one session resumed on many connections".
  // This test first asserted 10 for submits at once too: 14 sent at the same instant over 2
  // instances were all accepted, since each instance checks against the list it holds and hears
  // of the other's entries over the bus only after. The documents now say what holds (SECURITY.md
  // "Several server instances", PROTOCOL.md §3.7): one after another, 10; at the same instant on
  // N instances, at most N × 10 (each admits at most 10 it did not know of), and no new entry
  // until the account is back under 10. An atomic cap would cost a store round trip per submit.
  it('tracker entries of one account stay at 10 across instances one after another, at most N × 10 at once', async () => {
    const k = await shared(); // instances 0 and 1: N = 2
    for (const [label, together] of [
      ['sequential', false],
      ['at once', true],
    ] as const) {
      const u = await user(k.at(0), k.names(together ? 'carla' : 'dora'));
      const conns: Raw[] = [];
      for (let i = 0; i < 24; i++) {
        const s = await resumeOn(k.at(i % 2), u.token);
        expect(s.r.error).toBeUndefined();
        conns.push(s.c);
      }
      const first = conns.slice(0, 22);
      let rs: any[];
      if (together) rs = await Promise.all(first.map((c, i) => online(c, 41000 + i)));
      else {
        rs = [];
        for (const [i, c] of first.entries()) {
          rs.push(await online(c, 40000 + i));
          await sleep(150);
        }
      }
      const ok = rs.filter((r) => !r.error).length;
      await sleep(1000);
      // Once every instance has heard of the others' entries, neither admits one more.
      const later = await Promise.all([conns[22]!, conns[23]!].map((c, i) => online(c, 42000 + i)));
      const lists = await Promise.all(
        [k.at(0), k.at(1)].map(async (a) => {
          const s = await resumeOn(a, u.token);
          return (await entriesOf(s.c)).filter((e) => JSON.stringify(e).includes(u.username))
            .length;
        }),
      );
      expect({
        label,
        acceptedAtLeast10: ok >= 10,
        acceptedAtMost: ok <= (together ? 20 : 10),
        listedOnEach: lists,
        laterRefused: later.map((r) => r.error?.code),
      }).toEqual({
        label,
        acceptedAtLeast10: true,
        acceptedAtMost: true,
        listedOnEach: [ok, ok],
        laterRefused: ['E_RATE_LIMITED', 'E_RATE_LIMITED'],
      });
    }
  });

  // PROTOCOL.md §3.5 Tracker visibility: "a user sees the entries of the users it shares a
  // channel with … Nothing else reaches it"; "An invisible entry is never sent to another user";
  // "peer_left … the last channel two users shared no longer holds both (one left …: told to
  // both sides)"; SPEC §11 "presence is scoped to what each session can see".
  it('presence across instances reaches only co-members, never a stranger, and ends with the shared channel', async () => {
    const k = await shared();
    const alice = await user(k.at(0), k.names('alice'));
    const bob = await user(k.at(1), k.names('bob')); // shares nothing with alice
    const carol = await user(k.at(1), k.names('carol'));
    const ch = await createChannel(alice);
    expect((await carol.c.req('channel_join', { channelId: ch })).error).toBeUndefined();
    expect((await online(bob.c, 40002)).error).toBeUndefined();
    expect((await online(carol.c, 40003)).error).toBeUndefined();
    expect((await online(alice.c, 40001)).error).toBeUndefined();
    const sees = (u: Login, name: string) =>
      u.c.events.some((e) => e.ev === 'peer_joined' && JSON.stringify(e.body).includes(name));
    // Positive control: carol (other instance, co-member) hears of alice.
    expect(await waitUntil(() => sees(carol, alice.username), 5000)).toBe(true);
    expect(await waitUntil(() => sees(alice, carol.username), 5000)).toBe(true);
    await sleep(500);
    const leaks: string[] = [];
    if (sees(bob, alice.username)) leaks.push('bob heard peer_joined of alice');
    if (sees(alice, bob.username)) leaks.push('alice heard peer_joined of bob');
    if (JSON.stringify(await entriesOf(bob.c)).includes(alice.username))
      leaks.push('bob lists alice');
    if (JSON.stringify(await entriesOf(alice.c)).includes(`"${bob.username}"`))
      leaks.push('alice lists bob');

    // Invisible: carol must lose alice's entry.
    expect((await alice.c.req('set_status', { status: 'invisible' })).error).toBeUndefined();
    if (
      !(await waitUntil(
        async () => !JSON.stringify(await entriesOf(carol.c)).includes(alice.username),
        1000,
      ))
    )
      leaks.push('carol lists invisible alice');
    // alice's typing while invisible must not reach carol either.
    carol.c.events.length = 0;
    await alice.c.req('typing', { channelId: ch });
    await sleep(800);
    if (carol.c.events.some((e) => e.ev === 'typing'))
      leaks.push('invisible alice typing reached carol');
    expect((await alice.c.req('set_status', { status: 'online' })).error).toBeUndefined();
    expect(
      await waitUntil(
        async () => JSON.stringify(await entriesOf(carol.c)).includes(alice.username),
        5000,
      ),
    ).toBe(true);

    // carol leaves on instance 1: both sides are strangers from then on.
    alice.c.events.length = 0;
    carol.c.events.length = 0;
    expect((await carol.c.req('channel_leave', { channelId: ch })).error).toBeUndefined();
    const left = (u: Login, name: string) =>
      u.c.events.some((e) => e.ev === 'peer_left' && JSON.stringify(e.body).includes(name));
    if (!(await waitUntil(() => left(alice, carol.username), 5000)))
      leaks.push('alice got no peer_left of carol');
    if (!(await waitUntil(() => left(carol, alice.username), 2000)))
      leaks.push('carol got no peer_left of alice');
    if (JSON.stringify(await entriesOf(alice.c)).includes(carol.username))
      leaks.push('alice still lists carol');
    if (JSON.stringify(await entriesOf(carol.c)).includes(alice.username))
      leaks.push('carol still lists alice');
    const punch = await carol.c.req('punch', {
      to: { username: alice.username, sessionId: alice.sessionId },
      port: 40003,
      id: 'abcdefgh12',
    });
    if (!punch.error) leaks.push('carol could still punch alice');
    expect(leaks).toEqual([]);
  });

  // PROTOCOL.md §3.3 channel_leave: "the user is no longer a member (no more pushes of the
  // channel …)"; history/sync: "E_NOT_MEMBER for a user who is not a member of a channel that does
  // not allow visitors"; post: "E_NOT_MEMBER". SCALING.md: membership checks come from caches.
  it('a leave made on one instance is honoured at once by another that served the member', async () => {
    const k = await shared();
    const alice = await user(k.at(0), k.names('alice'));
    const ch = await createChannel(alice);
    const bob = await user(k.at(0), k.names('bob'));
    expect((await bob.c.req('channel_join', { channelId: ch })).error).toBeUndefined();
    // Warm instance 0 with bob's membership.
    expect((await post(bob, ch, 'hello').send()).error).toBeUndefined();
    expect((await bob.c.req('sync', { channelId: ch, since: 0, limit: 10 })).error).toBeUndefined();
    // bob leaves through instance 1.
    const other = await resumeOn(k.at(1), bob.token);
    expect(other.r.error).toBeUndefined();
    expect((await other.c.req('channel_leave', { channelId: ch })).error).toBeUndefined();
    await sleep(300);
    const got: Record<string, unknown> = {};
    got.post = (await post(bob, ch, 'still here?').send()).error?.code ?? 'stored';
    got.sync =
      (await bob.c.req('sync', { channelId: ch, since: 0, limit: 10 })).error?.code ?? 'served';
    got.history =
      (await bob.c.req('history', { channelId: ch, limit: 10 })).error?.code ?? 'served';
    got.members = (await bob.c.req('members', { channelId: ch })).error?.code ?? 'served';
    const { m } = post(alice, ch, 'after bob left');
    expect((await alice.c.req('post', { message: m })).error).toBeUndefined();
    await sleep(1000);
    got.pushedAfterLeave = messageEvents(bob.c, m.id);
    expect(got).toEqual({
      post: 'E_NOT_MEMBER',
      sync: 'E_NOT_MEMBER',
      history: 'E_NOT_MEMBER',
      members: 'E_NOT_MEMBER',
      pushedAfterLeave: 0,
    });
  });

  // PROTOCOL.md §2.2 "Channel items at each replica": a removed member "can neither read nor
  // post …: history, sync, members, search and channel_join answer E_FORBIDDEN …, post answers
  // E_NOT_MEMBER"; "then stops pushing to those who may no longer read"; "a deleted channel …
  // later requests about it answer E_CHANNEL_NOT_FOUND".
  it('a removal and a deletion signed through one instance bind the members on another', async () => {
    const k = await shared();
    const alice = await user(k.at(0), k.names('alice'));
    const ch = await createChannel(alice, true);
    const bob = await user(k.at(1), k.names('bob'));
    const carol = await user(k.at(1), k.names('carol'));
    for (const u of [bob, carol]) {
      expect((await u.c.req('channel_join', { channelId: ch })).error).toBeUndefined();
      expect((await post(u, ch, `hi from ${u.username}`).send()).error).toBeUndefined();
    }
    const me = { username: alice.username, keys: alice.key, cert: alice.cert } as any;
    const removal = sign(me, {
      channelId: ch,
      kind: 'channel',
      change: { remove: bob.username },
    } as any);
    const rr = await alice.c.req('post', { message: removal });
    expect(rr.error).toBeUndefined();
    await sleep(500);
    const got: Record<string, unknown> = {};
    got.post = (await post(bob, ch, 'removed?').send()).error?.code ?? 'stored';
    got.history =
      (await bob.c.req('history', { channelId: ch, limit: 10 })).error?.code ?? 'served';
    got.sync =
      (await bob.c.req('sync', { channelId: ch, since: 0, limit: 10 })).error?.code ?? 'served';
    got.join = (await bob.c.req('channel_join', { channelId: ch })).error?.code ?? 'joined';
    const { m } = post(alice, ch, 'after removal');
    expect((await alice.c.req('post', { message: m })).error).toBeUndefined();
    await sleep(1000);
    got.pushed = messageEvents(bob.c, m.id);
    // Deletion through instance 0; carol on instance 1.
    const del = sign(me, { channelId: ch, kind: 'channel', change: { deleted: true } } as any);
    expect((await alice.c.req('post', { message: del })).error).toBeUndefined();
    await sleep(500);
    got.postDeleted = (await post(carol, ch, 'anyone?').send()).error?.code ?? 'stored';
    got.historyDeleted =
      (await carol.c.req('history', { channelId: ch, limit: 10 })).error?.code ?? 'served';
    expect(got).toEqual({
      post: 'E_NOT_MEMBER',
      history: 'E_FORBIDDEN',
      sync: 'E_FORBIDDEN',
      join: 'E_FORBIDDEN',
      pushed: 0,
      postDeleted: 'E_CHANNEL_NOT_FOUND',
      historyDeleted: 'E_CHANNEL_NOT_FOUND',
    });
  });

  // SECURITY.md "The network path": the HTTP port (/health, /ready, /metrics, /stats) "carries no
  // secret … never a user, channel, address or token. /ready names a failing check (store, bus)
  // but not why (an error can name a database host)".
  it('the unauthenticated HTTP port of each instance names no user, channel, address, text or token', async () => {
    const k = await cluster(2);
    const alice = await user(k.at(0), 'zqxalice');
    const bob = await user(k.at(1), 'zqxbob');
    const ch = await createChannel(alice, false, 'zqxsecretroom');
    expect((await bob.c.req('channel_join', { channelId: ch })).error).toBeUndefined();
    await alice.c.req('submit_info', {
      ip: '198.51.100.77',
      port: 45677,
      udpPort: 45678,
      status: 'online',
    });
    await bob.c.req('submit_info', {
      ip: '198.51.100.78',
      port: 45679,
      udpPort: 45680,
      status: 'online',
    });
    expect((await post(alice, ch, 'zqxconfidential words').send()).error).toBeUndefined();
    await bob.c.req('search', { query: 'zqxconfidential' });
    await bob.c.req('typing', { channelId: ch });
    await sleep(500);
    const secrets = [
      'zqxalice',
      'zqxbob',
      'zqxsecretroom',
      'zqxconfidential',
      ch,
      alice.token,
      bob.token,
      alice.sessionId,
      bob.sessionId,
      '198.51.100.77',
      '198.51.100.78',
      `:${alice.c.sock.localPort}`,
      k.db.url.split('/').pop()!,
    ];
    const leaks: string[] = [];
    const bodies: Record<string, string> = {};
    for (const i of [0, 1]) {
      for (const route of ['/health', '/ready', '/metrics', '/stats']) {
        const r = await fetch(k.http(i) + route);
        const text = await r.text();
        bodies[`${i}${route}`] = text;
        for (const s of secrets) if (text.includes(s)) leaks.push(`${i}${route} holds ${s}`);
      }
    }
    // The bus goes away: /ready says which check fails, not the NATS address.
    await k.nats.kill();
    const natsPort = String(k.nats.port);
    let ready = '';
    let status = 0;
    await waitUntil(async () => {
      const r = await fetch(k.http(0) + '/ready');
      status = r.status;
      ready = await r.text();
      return status === 503;
    }, 30_000);
    expect(status).toBe(503);
    expect(ready).toMatch(/bus/);
    for (const s of [natsPort, '127.0.0.1', 'nats://']) {
      if (ready.includes(s)) leaks.push(`/ready with the bus down holds ${s}: ${ready}`);
    }
    expect(leaks).toEqual([]);
  });

  // README / SECURITY.md "Draining": "a SIGTERM'd instance stops accepting at once, answers
  // /ready 503, and tells its peers to move (draining); it cannot be kept alive by a client that
  // ignores this: what is still open is closed after --drain-ms"; §3.5 draining: "connections still
  // open … are closed with E_SHUTTING_DOWN". §3.5 peer_left on close.
  it('a client that ignores a drain and floods reconnects neither keeps the instance alive nor gets in', async () => {
    const k = await cluster(2, ['--drain-ms', '3000']);
    const alice = await user(k.at(0), 'alice');
    const bob = await user(k.at(1), 'bob');
    const ch = await createChannel(alice);
    expect((await bob.c.req('channel_join', { channelId: ch })).error).toBeUndefined();
    expect((await online(alice.c, 40001)).error).toBeUndefined();
    expect((await online(bob.c, 40002)).error).toBeUndefined();
    expect(
      await waitUntil(async () => JSON.stringify(await entriesOf(bob.c)).includes('alice'), 5000),
    ).toBe(true);
    const srv = k.servers[0]!;
    const t0 = Date.now();
    srv.proc.kill('SIGTERM');
    expect(await waitUntil(() => alice.c.events.some((e) => e.ev === 'draining'), 3000)).toBe(true);
    const r = await fetch(k.http(0) + '/ready').catch(() => undefined);
    if (r) {
      expect(r.status).toBe(503);
      expect(await r.json()).toEqual({ status: 'draining' });
    }
    // Flood: reconnect and resume as fast as possible for the whole drain.
    const admitted: string[] = [];
    const flood = async () => {
      while (Date.now() - t0 < 4000 && srv.proc.exitCode === null) {
        const c = new Raw(k.at(0).host, k.at(0).port);
        clients.push(c);
        try {
          await c.connected();
          c.send({ t: 'hello', v: 4, role: 'peer' });
          const f = await c.nextFrame(1000).catch(() => undefined);
          if (f?.t === 'hello') {
            const rr = await c.req('resume', { token: alice.token }, 1000);
            admitted.push(`hello, resume ${JSON.stringify(rr.body ?? rr.error)}`);
          }
        } catch {
          /* refused: as it should */
        }
        c.close();
        await sleep(50);
      }
    };
    await Promise.all([flood(), flood(), flood()]);
    // alice keeps pinging (serverHello's timer) and keeps asking things.
    const code = await Promise.race([srv.exited, sleep(9000).then(() => 'still running')]);
    const took = Date.now() - t0;
    expect(code).not.toBe('still running');
    expect(took).toBeLessThan(3000 + 4000);
    expect(alice.c.frames.some((f) => f.t === 'error' && f.code === 'E_SHUTTING_DOWN')).toBe(true);
    expect(admitted).toEqual([]);
    // The entry alice had on the drained instance leaves bob's list on the other as the
    // instance ends, not once it has been silent on the bus for 8 s (it took 6 s more).
    expect(
      await waitUntil(async () => !JSON.stringify(await entriesOf(bob.c)).includes('alice'), 1_500),
    ).toBe(true);
  });

  // SECURITY.md "The event bus": "An instance silent on the bus for 8 s (4 × instanceAliveMs) has
  // its entries dropped everywhere"; §3.5 peer_left.
  it('the entries of a SIGKILLed instance leave the other instances within the documented 8 s', async () => {
    const k = await cluster(2);
    const alice = await user(k.at(0), 'alice');
    const bob = await user(k.at(1), 'bob');
    const ch = await createChannel(alice);
    expect((await bob.c.req('channel_join', { channelId: ch })).error).toBeUndefined();
    expect((await online(alice.c, 40001)).error).toBeUndefined();
    expect((await online(bob.c, 40002)).error).toBeUndefined();
    expect(
      await waitUntil(async () => JSON.stringify(await entriesOf(bob.c)).includes('alice'), 5000),
    ).toBe(true);
    k.servers[0]!.proc.kill('SIGKILL');
    await k.servers[0]!.exited;
    const t0 = Date.now();
    const gone = await waitUntil(
      async () => !JSON.stringify(await entriesOf(bob.c)).includes('alice'),
      15_000,
    );
    const took = Date.now() - t0;
    expect(gone).toBe(true);
    expect(took).toBeLessThan(8000 + 3000);
    expect(
      bob.c.events.some((e) => e.ev === 'peer_left' && JSON.stringify(e.body).includes('alice')),
    ).toBe(true);
  });

  // PROTOCOL.md §3.2: hello rules and their errors; §1 forward compatibility.
  it('every instance refuses odd hellos the same documented way', async () => {
    const k = await shared();
    const cases: [string, Record<string, unknown> | null, string | 'hello'][] = [
      ['v 3', { v: 3, role: 'peer' }, 'E_VERSION_MISMATCH'],
      ['v 5', { v: 5, role: 'peer' }, 'E_VERSION_MISMATCH'],
      // `v` is read first: anything but the number 4 is a mismatch (§3.2).
      ['v "4"', { v: '4', role: 'peer' }, 'E_VERSION_MISMATCH'],
      ['no v', { role: 'peer' }, 'E_VERSION_MISMATCH'],
      ['role server', { v: 4, role: 'server' }, 'E_BAD_FRAME'],
      ['maxFrame 65535', { v: 4, role: 'peer', maxFrame: 65535 }, 'E_BAD_FRAME'],
      ['maxFrame 2^26+1', { v: 4, role: 'peer', maxFrame: 67108865 }, 'E_BAD_FRAME'],
      ['maxFrame 70000.5', { v: 4, role: 'peer', maxFrame: 70000.5 }, 'E_BAD_FRAME'],
      ['compact 0', { v: 4, role: 'peer', compact: 0 }, 'E_BAD_FRAME'],
      ['compact "1"', { v: 4, role: 'peer', compact: '1' }, 'E_BAD_FRAME'],
      ['agent 101', { v: 4, role: 'peer', agent: 'a'.repeat(101) }, 'E_BAD_FRAME'],
      ['agent lone surrogate', { v: 4, role: 'peer', agent: 'x\udfffy' }, 'E_BAD_FRAME'],
      ['unknown member', { v: 4, role: 'peer', zz: { deep: [1, 2] } }, 'hello'],
      ['req first', null, 'E_HELLO_REQUIRED'],
    ];
    const wrong: string[] = [];
    for (const i of [0, 1]) {
      for (const [label, h, want] of cases) {
        const c = new Raw(k.at(i).host, k.at(i).port);
        clients.push(c);
        await c.connected();
        if (h) c.send({ t: 'hello', ...h });
        else c.send({ t: 'req', id: 1, op: 'get_list', body: {} });
        const f = await c.nextFrame(3000).catch(() => ({ t: 'nothing' }));
        const got = f.t === 'hello' ? 'hello' : f.t === 'error' ? f.code : f.t;
        if (got !== want) wrong.push(`instance ${i} ${label}: ${got}, want ${want}`);
        if (want !== 'hello' && !(await waitUntil(() => c.closed, 2000)))
          wrong.push(`instance ${i} ${label}: left open`);
        c.close();
      }
    }
    expect(wrong).toEqual([]);
  });

  // PROTOCOL.md §11 token_revoke: "revoked on every instance at once (every REST call reads the
  // stored record)"; SECURITY.md: "Revocation is a stored mark read on every call, on every
  // instance: nothing is cached".
  it('an API token revoked through one instance is refused at once by the others', async () => {
    const k = await shared();
    const alice = await user(k.at(0), k.names('alice'));
    const t = await alice.c.req('token_create', { name: 'probe', scopes: ['read'] });
    expect(t.error).toBeUndefined();
    const get = (i: number) =>
      fetch(`${k.http(i)}/api/v1/users/${alice.username}`, {
        headers: { authorization: `Bearer ${t.body.token}` },
      }).then((r) => r.status);
    // Warm every instance with the token.
    for (const i of [0, 1, 2]) expect(await get(i), `instance ${i} before`).toBe(200);
    const other = await resumeOn(k.at(1), alice.token);
    expect((await other.c.req('token_revoke', { id: t.body.id })).error).toBeUndefined();
    const after = await Promise.all([0, 1, 2].map(get));
    expect(after).toEqual([401, 401, 401]);
  });

  // §3.3 resume: "E_SESSION_INVALID if the token's signature fails or the session is unknown";
  // §3.7 "Every instance signs with the deployment's one key". A token minted by another server
  // (its own key) for a user of the same name must be worthless here.
  it('a token from another deployment for a same-named user resumes nothing on any instance', async () => {
    const k = await shared();
    const alice = await user(k.at(0), k.names('alice'));
    const lone = await spawnServer(path.join(tempDir(), 'lone'));
    const [h, p] = lone.ready.tcp!.split(':');
    const fake = await user({ host: h!, port: Number(p) }, alice.username);
    const results: string[] = [];
    for (const i of [0, 1]) {
      const { r } = await resumeOn(k.at(i), fake.token);
      results.push(r.error?.code ?? `resumed as ${r.body?.username}`);
    }
    expect(results).toEqual(['E_SESSION_INVALID', 'E_SESSION_INVALID']);
    expect(alice.username).toBe(k.names('alice'));
    expect(fake.username).toBe(alice.username);
  });
});
