// The central server as the attacker (docs/SECURITY.md "Threat model": "the central server is
// trusted for accounts (it certifies who is who) but not for content"). A compromised server is
// played by test/outsider/lying-lib.ts: a TLS front whose key the victim pins, in front of a
// real `hchat server` whose signing key it holds. The victim is a real `hchat peer` (alice),
// observed only through its local API (pages, `?around=` of its own copy, search, DMs, the event
// stream) and its connection to "the server". bob owns the channels (a raw client, never a host),
// mallory is a user the attacker controls (a member, its key in the attacker's hands).
// Written from README.md, docs/*.md and the test helpers only.
import { test, expect, beforeAll, afterAll } from 'vitest';
import crypto from 'node:crypto';
import tls from 'node:tls';
import {
  startServer,
  startPeer,
  registerLogin,
  killAll,
  sleep,
  uuid7,
  newKey,
  frame,
  b64u,
} from './lib.js';
import { makeItem, bodyDigest, type Signer } from './items-lib.js';
import { makeCert, hostHello, onFrames } from './tls.js';
import { LyingServer, signingKeyFile, signClaims, type Frame } from './lying-lib.js';
import { withDevice } from './dm-lib.js';

type Peer = Awaited<ReturnType<typeof startPeer>>;
type Acct = Awaited<ReturnType<typeof registerLogin>>;

let sk: ReturnType<typeof signingKeyFile>;
let srv: Awaited<ReturnType<typeof startServer>>;
let lie: LyingServer;
let alice: Peer;
let bob: Acct;
let mallory: Acct;
const events: { event: string; data: any }[] = [];
let stopEvents: () => void;

const until = async <T>(
  f: () => Promise<T | undefined | false> | T | undefined | false,
  ms = 8000,
) => {
  const t0 = Date.now();
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() - t0 > ms) return undefined;
    await sleep(100);
  }
};

/** Collect the victim's /api/events (server-sent events). */
async function followEvents(p: Peer) {
  const ac = new AbortController();
  const r = await fetch(p.base + '/api/events', {
    headers: { authorization: 'Bearer ' + p.token },
    signal: ac.signal,
  });
  const reader = r.body!.getReader();
  let buf = '';
  (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += Buffer.from(value).toString('utf8');
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let event = 'message';
          let data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) data += line.slice(5).trim();
          }
          try {
            events.push({ event, data: JSON.parse(data) });
          } catch {
            events.push({ event, data });
          }
        }
      }
    } catch {}
  })();
  return () => ac.abort();
}

/** The victim's `message` events naming `id` (what the UI would show live). */
const shownLive = (id: string) =>
  events.filter((e) => e.event === 'message' && e.data?.message?.id === id);
const refusedEv = (id: string) => events.find((e) => e.event === 'refused' && e.data?.id === id);

/** The victim's own copy of `id` (`?around=`: 404 when it does not hold it). */
async function held(ch: string, id: string) {
  const r = await alice.api('GET', `/api/channels/${ch}/messages?around=${id}&limit=5`);
  if (r.status !== 200) return undefined;
  return (r.body.messages as any[]).find((m) => m.id === id);
}
const page = async (ch: string) => {
  const r = await alice.api('GET', `/api/channels/${ch}/messages?limit=100`);
  return r.body.messages as any[];
};
async function aliceAlive() {
  expect(alice.child.exitCode).toBe(null);
  const me = await alice.api('GET', '/api/me');
  expect(me.status).toBe(200);
}

/** Every stored message in a server → peer frame (push, history, sync, search), rewritten. */
function mapItems(f: Frame, fn: (m: any) => any | null): Frame {
  if (f.t === 'ev' && f.ev === 'message' && f.body?.message) {
    const m = fn(f.body.message);
    return m ? { ...f, body: { ...f.body, message: m } } : (null as any);
  }
  if (f.t === 'res' && f.body) {
    const b = { ...f.body };
    for (const k of ['messages', 'related'])
      if (Array.isArray(b[k])) b[k] = b[k].map(fn).filter((x: any) => x);
    return { ...f, body: b };
  }
  return f;
}
const rewrite = (fn: (m: any) => any | null) => {
  lie.onDown = (f) => {
    const g = mapItems(f, fn);
    return g ? [g] : [];
  };
};
const honest = () => {
  lie.onDown = undefined;
  lie.onUp = undefined;
};

/** seq of the last item the real server stored, per channel */
const seqs = new Map<string, number>();
async function post(who: Acct, ch: string, o: Parameters<typeof makeItem>[2] = {}) {
  const m = makeItem(who as unknown as Signer, ch, o);
  const r = await who.c.req('post', { message: m });
  if (!r.body) throw new Error('post ' + JSON.stringify(r));
  seqs.set(ch, r.body.seq);
  return { ...m, author: who.username, seq: r.body.seq as number };
}
const text = (t: string) => ({ body: { text: t } });

/** A channel bob owns that alice and mallory joined; alice reads it from the server. */
async function channel(allowVisitors = true, aliceJoins = true) {
  const ch = uuid7();
  const r = await bob.c.req('channel_create', { id: ch, name: 'c-' + ch.slice(-6), allowVisitors });
  if (!r.body) throw new Error(JSON.stringify(r));
  await mallory.c.req('channel_join', { channelId: ch });
  if (aliceJoins) expect((await alice.api('POST', `/api/channels/${ch}/join`)).status).toBe(200);
  seqs.set(ch, 0);
  return ch;
}

/** Push `item` to the victim as the server's `message` event with the next seq. */
function push(ch: string, item: any, seq = (seqs.get(ch) ?? 0) + 1) {
  const l = lie.link!;
  l.toVictim({ t: 'ev', ev: 'message', body: { channelId: ch, message: { ...item, seq } } });
}
/** An honest post by bob that the victim shows: every frame before it has been read. */
async function sentinel(ch: string) {
  const s = await post(bob, ch, text('sentinel ' + crypto.randomUUID()));
  await until(() => shownLive(s.id).length > 0 || held(ch, s.id), 6000);
  return s;
}

beforeAll(async () => {
  sk = signingKeyFile();
  srv = await startServer(['--signing-key', sk.file]);
  lie = await new LyingServer(srv).listen();
  alice = await startPeer({ host: '127.0.0.1', port: lie.port }, [], { pin: lie.fingerprint });
  expect(
    (await alice.api('POST', '/api/register', { username: 'alice', password: 'pw-alice' })).status,
  ).toBe(201);
  expect(
    (await alice.api('POST', '/api/login', { username: 'alice', password: 'pw-alice' })).status,
  ).toBe(200);
  bob = await registerLogin(srv, 'bob');
  mallory = await registerLogin(srv, 'mallory');
  stopEvents = await followEvents(alice);
  await lie.liveLink();
}, 40000);

afterAll(async () => {
  stopEvents?.();
  await lie?.close();
  await killAll();
});

test('pushes, history and sync pages whose signature does not verify are refused, never shown', async () => {
  const ch = await channel();
  // the lying server alters the text of bob's message in every frame that carries it
  const orig = makeItem(bob as unknown as Signer, ch, text('the original text'));
  rewrite((m) => (m.id === orig.id ? { ...m, text: 'FORGED by the server' } : m));
  const r = await bob.c.req('post', { message: orig });
  seqs.set(ch, r.body.seq);
  // and a second one: a signature of other bytes
  const m2 = makeItem(bob as unknown as Signer, ch, text('second text'));
  rewrite((m) =>
    m.id === orig.id
      ? { ...m, text: 'FORGED by the server' }
      : m.id === m2.id
        ? { ...m, sig: b64u(crypto.randomBytes(64)).slice(0, 85) + 'A' }
        : m,
  );
  const r2 = await bob.c.req('post', { message: m2 });
  seqs.set(ch, r2.body.seq);
  await until(() => refusedEv(orig.id) && refusedEv(m2.id), 6000);
  const pg = await page(ch);
  honest();
  expect(JSON.stringify(pg)).not.toContain('FORGED');
  expect(
    pg.find((m) => m.id === m2.id),
    'a message with a bad signature shown',
  ).toBeUndefined();
  expect(shownLive(orig.id).filter((e) => e.data.message.text !== 'the original text')).toEqual([]);
  expect(shownLive(m2.id)).toEqual([]);
  expect(refusedEv(orig.id), 'no refused event for the altered push').toBeTruthy();
  await aliceAlive();
});

/** A signer whose certificate the attacker made: `claims` over the defaults, signed by `by`. */
function minted(u: string, claims: Record<string, unknown>, by: crypto.KeyObject): Signer {
  const key = newKey();
  const now = Date.now();
  const cert = signClaims(
    {
      typ: 'key',
      sid: b64u(crypto.randomBytes(16)),
      u,
      r: 'user',
      pk: key.pk,
      iat: now - 1000,
      exp: now + 86_400_000,
      ...claims,
    },
    by,
  );
  return { username: u, cert, key };
}

test('items whose certificate is not the author, not the server key, a visitor, a token or expired are refused', async () => {
  const ch = await channel();
  const other = crypto.generateKeyPairSync('ed25519').privateKey;
  const forged = [
    // mallory's real certificate, the item signed by mallory's key in bob's name
    {
      ...makeItem(mallory as unknown as Signer, ch, { ...text('mallory as bob'), asAuthor: 'bob' }),
      author: 'bob',
    },
    // bob's name certified by a key that is not the server's
    { ...makeItem(minted('bob', {}, other), ch, text('other key as bob')), author: 'bob' },
    // a visitor certificate named bob (minted with the real signing key: visitors never write)
    {
      ...makeItem(minted('bob', { r: 'visitor' }, sk.privateKey), ch, text('visitor bob')),
      author: 'bob',
    },
    // a session-token claim in place of a key certificate
    {
      ...makeItem(minted('bob', { typ: 'session' }, sk.privateKey), ch, text('typ session')),
      author: 'bob',
    },
    // a certificate that expired before the message was written
    {
      ...makeItem(
        minted('bob', { iat: Date.now() - 90_000_000, exp: Date.now() - 60_000 }, sk.privateKey),
        ch,
        text('expired cert'),
      ),
      author: 'bob',
    },
  ];
  // control: an item bob really signed, never posted, pushed the same way, is taken
  const control = {
    ...makeItem(bob as unknown as Signer, ch, text('control: bob signed')),
    author: 'bob',
  };
  let seq = seqs.get(ch)!;
  for (const f of forged) push(ch, f, ++seq);
  push(ch, control, ++seq);
  await sentinel(ch);
  await until(() => forged.every((f) => refusedEv(f.id)), 3000);
  const pg = await page(ch);
  expect((await held(ch, control.id))?.text, 'the injection path itself does not work').toBe(
    'control: bob signed',
  );
  for (const f of forged) {
    expect(shownLive(f.id), f.text).toEqual([]);
    expect(await held(ch, f.id), f.text).toBeUndefined();
    expect(
      pg.find((m) => m.id === f.id),
      f.text,
    ).toBeUndefined();
  }
  await aliceAlive();
});

test('§2.2: edits, deletes, reactions and channel changes nobody may write are refused by the member', async () => {
  const ch = await channel();
  const m = await post(bob, ch, text('bob says this'));
  await until(() => held(ch, m.id), 6000);
  expect((await held(ch, m.id))?.text).toBe('bob says this');
  const M = mallory as unknown as Signer;
  const forged = [
    // mallory (a member, not the owner) deletes bob's message
    { ...makeItem(M, ch, { kind: 'delete', target: m.id }), author: 'mallory' },
    // mallory edits bob's message
    {
      ...makeItem(M, ch, { kind: 'edit', target: m.id, body: { text: 'EDITED by mallory' } }),
      author: 'mallory',
    },
    // mallory renames the channel, removes alice, deletes the channel
    {
      ...makeItem(M, ch, { kind: 'channel', body: { change: { name: 'PWNED' } } }),
      author: 'mallory',
    },
    {
      ...makeItem(M, ch, { kind: 'channel', body: { change: { remove: 'alice' } } }),
      author: 'mallory',
    },
    {
      ...makeItem(M, ch, { kind: 'channel', body: { change: { deleted: true } } }),
      author: 'mallory',
    },
  ];
  // control: mallory's own reaction is hers to make, and is taken
  const react = {
    ...makeItem(M, ch, { kind: 'react', target: m.id, body: { emoji: '👍' } }),
    author: 'mallory',
  };
  let seq = seqs.get(ch)!;
  for (const f of forged) push(ch, f, ++seq);
  push(ch, react, ++seq);
  await sentinel(ch);
  await sleep(300);
  const h = await held(ch, m.id);
  expect(h?.reactions?.[0]?.emoji, 'the injection path itself does not work').toBe('👍');
  expect(h?.text, "someone else's edit or delete took effect").toBe('bob says this');
  expect(h?.deleted ?? false).toBe(false);
  const chans = (await alice.api('GET', '/api/channels')).body as any[];
  const c = chans.find((x) => x.id === ch);
  expect(c, 'a member removed / channel deleted by a non-owner').toBeTruthy();
  expect(c.name).not.toBe('PWNED');
  await aliceAlive();
});

test('§2.2: a delete by a non-owner that arrives before its target never takes effect once it arrives', async () => {
  const ch = await channel();
  const M = mallory as unknown as Signer;
  const target = makeItem(bob as unknown as Signer, ch, text('target arrives later'));
  const del = { ...makeItem(M, ch, { kind: 'delete', target: target.id }), author: 'mallory' };
  // the server withholds bob's message until after mallory's delete has been pushed
  let release = false;
  const queued: Frame[] = [];
  lie.onDown = (f) => {
    if (!release && JSON.stringify(f).includes(target.id)) {
      queued.push(f);
      return [];
    }
    return [f];
  };
  const r = await bob.c.req('post', { message: target });
  seqs.set(ch, r.body.seq);
  push(ch, del, r.body.seq + 1);
  await sleep(500);
  release = true;
  honest();
  for (const f of queued) lie.link!.toVictim(f);
  await until(() => held(ch, target.id), 6000);
  await sleep(300);
  const h = await held(ch, target.id);
  expect(h?.text).toBe('target arrives later');
  expect(h?.deleted ?? false).toBe(false);
});

test('a message of one channel pushed or paged as another channel is not shown there', async () => {
  const ch1 = await channel();
  const ch2 = await channel();
  const m = await post(bob, ch1, text('I belong to channel one'));
  await until(() => held(ch1, m.id), 6000);
  // the event names ch2, the message is ch1's (valid for ch1)
  push(ch2, m, (seqs.get(ch2) ?? 0) + 1);
  // the event and the message both say ch2 (the id no longer derives)
  const moved = { ...m, channelId: ch2 };
  push(ch2, moved, (seqs.get(ch2) ?? 0) + 2);
  await sentinel(ch2);
  // and every history page of ch2 carries it too
  rewrite((x) => x);
  lie.onDown = (f, l) => {
    if (f.t === 'res' && l.opOf(f) === 'history' && l.ops.get(f.id)?.body?.channelId === ch2)
      return [{ ...f, body: { ...f.body, messages: [m, ...f.body.messages] } }];
    return [f];
  };
  const pg = await page(ch2);
  honest();
  expect(
    pg.find((x) => x.id === m.id),
    "channel one's message shown in channel two's page",
  ).toBeUndefined();
  expect(await held(ch2, m.id), "channel one's message held as channel two's").toBeUndefined();
  expect(shownLive(m.id).filter((e) => e.data.channelId === ch2)).toEqual([]);
});

test('a tombstone of a message the member holds, without the delete that erased it, does not erase it', async () => {
  const ch = await channel();
  const m = await post(bob, ch, text('do not erase me'));
  await until(() => held(ch, m.id), 6000);
  const { text: _t, ...rest } = m as any;
  const tomb = { ...rest, digest: bodyDigest({ text: 'do not erase me' }) };
  push(ch, tomb, m.seq);
  rewrite((x) => (x.id === m.id ? tomb : x));
  await sentinel(ch);
  const h = await held(ch, m.id);
  const pg = await page(ch);
  honest();
  expect(h?.text, 'the server erased a message with no delete').toBe('do not erase me');
  expect(pg.find((x) => x.id === m.id)?.deleted ?? false).toBe(false);
});

/** A plain message signed by `who` at the reading (`ts`, `lc`) the attacker chooses. */
function signedAt(who: Signer, ch: string, t: string, ts: number, lc = 0) {
  const body = { text: t };
  const digest = bodyDigest(body);
  const h = crypto
    .createHash('sha256')
    .update(
      JSON.stringify([
        'hchat/item-id/2',
        ch,
        who.username.toLowerCase(),
        ts,
        lc,
        'message',
        null,
        digest,
      ]),
    )
    .digest();
  const b = Buffer.alloc(16);
  b.writeUIntBE(ts, 0, 6);
  b[6] = 0x80 | (h[0]! & 0x0f);
  b[7] = h[1]!;
  b[8] = 0x80 | (h[2]! & 0x3f);
  h.copy(b, 9, 3, 10);
  const x = b.toString('hex');
  const id = `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
  const sig = crypto
    .sign(
      null,
      Buffer.from(
        JSON.stringify([
          'hchat/item/2',
          id,
          ch,
          who.username.toLowerCase(),
          ts,
          lc,
          'message',
          null,
          digest,
        ]),
      ),
      who.key.privateKey,
    )
    .toString('base64url');
  return { id, channelId: ch, ts, lc, text: t, sig, cert: who.cert, author: who.username };
}

test('clock poisoning: a message stamped 10 minutes ahead is refused and never drags the member clock', async () => {
  const ch = await channel();
  const M = mallory as unknown as Signer;
  const future = signedAt(M, ch, 'from the future', Date.now() + 600_000);
  // also in a history page and a sync answer
  lie.onDown = (f, l) => {
    const op = f.t === 'res' ? l.opOf(f) : undefined;
    if ((op === 'history' || op === 'sync') && l.ops.get(f.id)?.body?.channelId === ch)
      return [
        { ...f, body: { ...f.body, messages: [...f.body.messages, { ...future, seq: 99 }] } },
      ];
    return [f];
  };
  push(ch, future);
  await sentinel(ch);
  const pg = await page(ch);
  honest();
  expect(await held(ch, future.id), 'a message 10 minutes ahead was stored').toBeUndefined();
  expect(
    pg.find((m) => m.id === future.id),
    'a message 10 minutes ahead was shown',
  ).toBeUndefined();
  const r = await alice.api('POST', `/api/channels/${ch}/messages`, { text: 'written after' });
  expect(r.status).toBe(201);
  const mine = await held(ch, r.body.id);
  expect(mine.ts, "the member's clock observed the future reading").toBeLessThan(
    Date.now() + 60_000,
  );
});

/** Break the victim's live link with `bytes`; what it said, how fast, and its next link. */
async function breakWith(bytes: Buffer) {
  const l = await lie.liveLink();
  const t0 = Date.now();
  l.toVictim(bytes);
  await until(() => l.closed, 8000);
  const ms = Date.now() - t0;
  const next = await lie.liveLink(l);
  return { errors: l.errors().map((e) => e.code), closed: l.closed, ms, next };
}
const head = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const raw = (s: Buffer | string) => Buffer.concat([head(Buffer.byteLength(s)), Buffer.from(s)]);

test('§1 broken frames from the server: each closes that link with its code, the peer reconnects and goes on', async () => {
  const cases: [string, Buffer, string][] = [
    [
      'N over maxFrame (1 GiB), body never sent',
      Buffer.concat([head(0x40000000), Buffer.from('{"t":')]),
      'E_FRAME_TOO_LARGE',
    ],
    ['N = 0', head(0), 'E_BAD_FRAME'],
    [
      'invalid UTF-8',
      raw(Buffer.from([0x7b, 0x22, 0x74, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d])),
      'E_BAD_FRAME',
    ],
    [
      'a BOM before the object',
      raw(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"t":"ping"}')])),
      'E_BAD_FRAME',
    ],
    ['a lone surrogate', raw('{"t":"ev","ev":"typing","body":{"x":"\\ud800"}}'), 'E_BAD_FRAME'],
    ['an array', raw('[{"t":"ping"}]'), 'E_BAD_FRAME'],
    ['no t', raw('{"x":1}'), 'E_BAD_FRAME'],
    ['an unknown frame type', raw('{"t":"zzz"}'), 'E_UNKNOWN_TYPE'],
    [
      'a ref frame on a link that is not compact',
      raw('{"t":"ref","c":0,"channelId":"' + uuid7() + '"}'),
      'E_UNKNOWN_TYPE',
    ],
    [
      'a message event of the wrong shape',
      raw('{"t":"ev","ev":"message","body":{"channelId":5,"message":"x"}}'),
      'E_BAD_FRAME',
    ],
  ];
  for (const [what, bytes, code] of cases) {
    const r = await breakWith(bytes);
    expect.soft(r.closed, what + ': link left open').toBe(true);
    expect.soft(r.errors, what).toEqual([code]);
    expect.soft(r.ms, what + ': took long').toBeLessThan(3000);
  }
  // and it still works: bob's next message reaches alice
  const ch = await channel();
  const m = await post(bob, ch, text('after the broken frames'));
  expect(await until(() => held(ch, m.id), 8000)).toBeTruthy();
  await aliceAlive();
}, 60000);

test('an answer to a request never sent, an unknown event and unknown members are ignored', async () => {
  const l = await lie.liveLink();
  l.toVictim({ t: 'res', id: 3_999_999_999, body: { messages: [], lastSeq: 10 ** 9 } });
  l.toVictim({ t: 'res', id: 3_999_999_998, error: { code: 'E_SESSION_INVALID', message: 'no' } });
  l.toVictim({ t: 'ev', ev: 'no_such_event', body: { x: 1 } });
  l.toVictim({ t: 'pong', extra: { deep: [1, 2, 3] } });
  const ch = await channel();
  const m = await post(bob, ch, text('after the stray answers'));
  expect(await until(() => held(ch, m.id), 8000)).toBeTruthy();
  expect(l.closed, 'the link was closed for an unknown event or a stray answer').toBe(false);
  expect((await alice.api('GET', '/api/me')).body.role).toBe('user');
  await aliceAlive();
});

test('a frame that never ends: the peer drops a server silent for timeoutMs and reconnects', async () => {
  // this "server" announces a short timeout (§3.2 hello) on the next link
  lie.helloPatch = { heartbeatMs: 1000, timeoutMs: 3000 };
  lie.link!.kill();
  const l = await lie.liveLink();
  lie.helloPatch = {};
  // 10 bytes of a 5,000-byte frame, then nothing at all (no pong either)
  lie.onDown = (f, x) => (x === l ? [] : [f]);
  l.toVictim(Buffer.concat([head(5000), Buffer.from('{"t":"ev",')]));
  const t0 = Date.now();
  await until(() => l.closed, 15000);
  const ms = Date.now() - t0;
  honest();
  expect(l.errors().map((e) => e.code)).toEqual(['E_HEARTBEAT_TIMEOUT']);
  expect(l.closed, 'the peer kept a link whose server fell silent mid-frame').toBe(true);
  expect(ms).toBeLessThan(9000);
  const next = await lie.liveLink(l);
  next.kill(); // back to the usual timeouts
  await lie.liveLink(next);
}, 40000);

test('a history page in reverse order is shown in channel order', async () => {
  const ch = await channel();
  for (const t of ['one', 'two', 'three']) await post(bob, ch, text(t));
  lie.onDown = (f, l) => {
    if (f.t === 'res' && l.opOf(f) === 'history' && l.ops.get(f.id)?.body?.channelId === ch)
      return [{ ...f, body: { ...f.body, messages: [...f.body.messages].reverse() } }];
    return [f];
  };
  const pg = await page(ch);
  honest();
  expect(pg.map((m) => m.text)).toEqual(['one', 'two', 'three']);
});

// FINDING: PROTOCOL.md §3.5 "peers ignore a message they hold (by id)" and §2.1 "Every replica
// MUST order a channel by (ts, lc, id) ascending (ids compared as strings), so replicas holding
// the same set show the same order": a message is one item of a set, known by its id. A lying
// server that repeats bob's message in a `history` page (the same signed item, maybe under
// another seq) makes the member's page show it as many times as it likes; the honest server's
// page of the same set shows it once.
test('a message repeated in a history page (same id, same signature) is shown once', async () => {
  const ch = await channel();
  const ms = [];
  for (const t of ['one', 'two', 'three']) ms.push(await post(bob, ch, text(t)));
  lie.onDown = (f, l) => {
    if (f.t === 'res' && l.opOf(f) === 'history' && l.ops.get(f.id)?.body?.channelId === ch) {
      const m = f.body.messages.find((x: any) => x.text === 'two');
      const copies = Array.from({ length: 20 }, (_, i) => ({ ...m, seq: 1000 + i }));
      return [{ ...f, body: { ...f.body, messages: [...f.body.messages, m, ...copies] } }];
    }
    return [f];
  };
  const pg = await page(ch);
  honest();
  const honestPage = await page(ch);
  expect(honestPage.map((m) => m.text)).toEqual(['one', 'two', 'three']);
  expect(
    pg.map((m) => m.text),
    'one signed message shown many times',
  ).toEqual(['one', 'two', 'three']);
});

test('§3.3 Search: results and related items that do not verify, or of a channel not asked about, are not shown', async () => {
  const ch = await channel(true, false); // allows visitors, alice did not join: the server answers
  const secret = await channel(false, false);
  const a = await post(bob, ch, text('findme alpha'));
  const b = await post(bob, ch, text('findme beta'));
  const s = await post(bob, secret, text('findme secret elsewhere'));
  const M = mallory as unknown as Signer;
  const del = { ...makeItem(M, ch, { kind: 'delete', target: b.id }), author: 'mallory', seq: 50 };
  const asBob = {
    ...makeItem(M, ch, { ...text('findme mallory as bob'), asAuthor: 'bob' }),
    author: 'bob',
    seq: 51,
  };
  lie.onDown = (f, l) => {
    if (f.t === 'res' && l.opOf(f) === 'search' && f.body) {
      const msgs = f.body.messages.map((m: any) =>
        m.id === a.id ? { ...m, text: 'findme FORGED' } : m,
      );
      return [
        {
          ...f,
          body: {
            ...f.body,
            messages: [asBob, s, ...msgs],
            related: [...(f.body.related ?? []), del],
          },
        },
      ];
    }
    return [f];
  };
  const r = await alice.api('GET', `/api/search?q=findme&channelId=${ch}`);
  honest();
  expect(r.status).toBe(200);
  expect(
    lie.link!.up.some((f) => f.op === 'search'),
    'the peer did not ask the server',
  ).toBe(true);
  const res = r.body.results as any[];
  const txt = JSON.stringify(res);
  expect(txt).not.toContain('FORGED');
  expect(txt, 'a result of a channel not asked about').not.toContain('secret elsewhere');
  expect(txt, 'a result whose certificate is not its author').not.toContain('mallory as bob');
  const rb = res.find((x) => x.message.id === b.id);
  expect(rb, "a non-owner's delete hid a result").toBeTruthy();
  expect(rb.message.text).toBe('findme beta');
});

// FINDING (same cause as the history page above): §3.3 Search "the newest `limit` messages whose
// shown text has every word of `query`": a message is one result. The server repeats one signed
// message in its `search` answer and the member lists it as that many results.
test('a search result repeated by the server (same id, same signature) is listed once', async () => {
  const ch = await channel(true, false);
  const a = await post(bob, ch, text('repeatme once'));
  lie.onDown = (f, l) => {
    if (f.t === 'res' && l.opOf(f) === 'search' && f.body) {
      const m = f.body.messages.find((x: any) => x.id === a.id);
      return [
        {
          ...f,
          body: { ...f.body, messages: m ? Array.from({ length: 10 }, () => m) : f.body.messages },
        },
      ];
    }
    return [f];
  };
  const r = await alice.api('GET', `/api/search?q=repeatme&channelId=${ch}`);
  honest();
  const ids = (r.body.results as any[]).map((x) => x.message.id);
  expect(ids.length).toBeGreaterThan(0);
  expect(ids, 'one signed message listed as many results').toEqual([a.id]);
});

/** A P2P port that plays the host with `cert`, signing its transcript with `key`. */
async function fakeHost(me: {
  cert: string;
  sessionId: string;
  key: { privateKey: crypto.KeyObject };
}) {
  const cred = makeCert();
  const got: Frame[] = [];
  let conns = 0;
  const srvp = tls.createServer({ key: cred.key, cert: cred.cert, minVersion: 'TLSv1.3' }, (s) => {
    conns++;
    s.on('error', () => {});
    onFrames(s, (f) => {
      got.push(f);
      if (f.t === 'hello') {
        const binding = s
          .exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0))
          .toString('base64url');
        s.write(frame(hostHello(me, f, b64u(crypto.randomBytes(32)), binding)));
      }
      if (f.t === 'req')
        s.write(
          frame({
            t: 'res',
            id: f.id,
            body: {
              messages: [],
              lastSeq: 0,
              hasMore: false,
              related: [],
              channelIds: f.body?.channelIds ?? [],
            },
          }),
        );
    });
  });
  await new Promise<void>((r) => srvp.listen(0, '127.0.0.1', () => r()));
  const port = (srvp.address() as { port: number }).port;
  return {
    port,
    got,
    conns: () => conns,
    close: () => new Promise<void>((r) => srvp.close(() => r())),
  };
}

test('§4.1: a tracker entry naming the owner at an attacker port is refused unless it proves the owner key', async () => {
  const ch = await channel(false);
  await post(bob, ch, text('from the server'));
  // the host plays bob with mallory's real certificate and key, then with bob's certificate and mallory's key
  const byMallory = await fakeHost(mallory);
  const bobCertMalloryKey = await fakeHost({
    cert: bob.cert,
    sessionId: bob.sessionId,
    key: mallory.key,
  });
  const entry = (port: number) => ({
    username: 'bob',
    role: 'user',
    ip: '127.0.0.1',
    port,
    udpPort: 9,
    sessionId: bob.sessionId,
    status: 'online',
    hosts: [ch],
    live: [],
  });
  let which = 0;
  lie.onDown = (f, l) => {
    if (f.t === 'res' && l.opOf(f) === 'get_list' && f.body?.peers) {
      const p = which++ % 2 ? bobCertMalloryKey.port : byMallory.port;
      return [
        {
          ...f,
          body: {
            ...f.body,
            peers: [...f.body.peers.filter((e: any) => e.username !== 'bob'), entry(p)],
          },
        },
      ];
    }
    return [f];
  };
  for (const p of [byMallory.port, bobCertMalloryKey.port]) {
    lie.link!.toVictim({ t: 'ev', ev: 'peer_joined', body: { entry: entry(p) } });
    await until(() => (p === byMallory.port ? byMallory : bobCertMalloryKey).got.length > 0, 5000);
    await sleep(500);
  }
  const l0 = lie.link!;
  l0.kill(); // a fresh get_list on the next link
  await lie.liveLink(l0);
  await sleep(1500);
  const r = await alice.api('GET', `/api/channels/${ch}/messages`);
  honest();
  await byMallory.close();
  await bobCertMalloryKey.close();
  const all = [...byMallory.got, ...bobCertMalloryKey.got];
  expect(
    byMallory.conns() + bobCertMalloryKey.conns(),
    'the member never dialled the announced host',
  ).toBeGreaterThan(0);
  expect(
    all.filter((f) => f.t === 'auth'),
    'the member authenticated to a host that is not the owner',
  ).toEqual([]);
  expect(
    all.filter((f) => f.t === 'req'),
    'the member sent requests to a false host',
  ).toEqual([]);
  expect(r.body.source).not.toBe('host');
});

test('hostile tracker entries and directory names: out of range, never listed', async () => {
  const bad = {
    username: '../../etc',
    role: 'user',
    ip: 'evil.example.com',
    port: 0,
    udpPort: 70000,
    sessionId: '<script>',
    status: 'online',
    hosts: [],
    live: [],
  };
  const l = await lie.liveLink();
  l.toVictim({ t: 'ev', ev: 'peer_joined', body: { entry: bad } });
  await until(() => l.closed, 3000);
  expect(
    l.errors().map((e) => e.code),
    'a peer_joined out of range is fatal (§1)',
  ).toEqual(['E_BAD_FRAME']);
  const l2 = await lie.liveLink(l);
  const longName = 'x'.repeat(500);
  lie.onDown = (f, x) => {
    const op = f.t === 'res' ? x.opOf(f) : undefined;
    if (op === 'get_list' && f.body?.peers)
      return [{ ...f, body: { ...f.body, peers: [...f.body.peers, bad] } }];
    if (op === 'directory' && f.body?.channels)
      return [
        {
          ...f,
          body: {
            ...f.body,
            channels: [
              ...f.body.channels,
              {
                id: uuid7(),
                name: longName,
                owner: 'bob',
                allowVisitors: true,
                createdAt: Date.now(),
              },
              {
                id: uuid7(),
                name: 'bell\u0007\u2028',
                owner: 'bob',
                allowVisitors: true,
                createdAt: Date.now(),
              },
              {
                id: 'not-a-uuid',
                name: 'bad id',
                owner: 'bob',
                allowVisitors: true,
                createdAt: Date.now(),
              },
            ],
          },
        },
      ];
    return [f];
  };
  l2.kill();
  await until(
    () =>
      lie.link &&
      lie.link !== l2 &&
      lie.link.down.some((f) => f.t === 'res' && lie.link!.opOf(f) === 'get_list'),
    8000,
  );
  await sleep(2000);
  const peers = await alice.api('GET', '/api/peers');
  const dir = await alice.api('GET', '/api/directory');
  honest();
  lie.link?.kill();
  await lie.liveLink();
  expect(JSON.stringify(peers.body)).not.toContain('evil.example.com');
  expect(JSON.stringify(peers.body)).not.toContain('../../etc');
  const names = Array.isArray(dir.body) ? dir.body.map((c: any) => c.name) : [];
  expect(names).not.toContain(longName);
  expect(names).not.toContain('bell\u0007\u2028');
  expect(names).not.toContain('bad id');
  await aliceAlive();
});

test('§10.5: a server that swaps a contact device key, or slips a device into the user own list, is seen in the conversation', async () => {
  await withDevice(bob);
  const conv = await alice.api('POST', '/api/dms', { members: ['bob'] });
  expect([200, 201]).toContain(conv.status);
  const id = conv.body.id;
  expect(
    (await alice.api('POST', `/api/dms/${id}/messages`, { text: 'hi bob, honest server' })).status,
  ).toBe(201);
  const before = (await alice.api('GET', `/api/dms/${id}/safety`)).body.members[0];
  expect(before.changed).toBe(false);
  const notices = async () =>
    ((await alice.api('GET', `/api/dms/${id}/messages`)).body.messages as any[]).filter(
      (m) => m.kind === 'notice',
    );
  const n0 = (await notices()).length;
  // 1: bob's device now shows another identity key (the server's own)
  const fake = b64u(crypto.randomBytes(32));
  lie.onDown = (f, l) => {
    if (f.t === 'res' && l.opOf(f) === 'dm_devices' && f.body?.users)
      return [
        {
          ...f,
          body: {
            users: f.body.users.map((u: any) =>
              u.username === 'bob'
                ? { ...u, devices: u.devices.map((d: any) => ({ ...d, identityKey: fake })) }
                : u,
            ),
          },
        },
      ];
    return [f];
  };
  await alice.api('POST', `/api/dms/${id}/messages`, { text: 'second, lying server' });
  const swapped = await until(async () => (await notices()).length > n0, 6000);
  const after = (await alice.api('GET', `/api/dms/${id}/safety`)).body.members[0];
  honest();
  expect(swapped, 'no notice after the server swapped a device key').toBeTruthy();
  expect(after.changed).toBe(true);
  expect(after.safetyNumber).not.toBe(before.safetyNumber);
  // 2: alice's own user gets a device she never had (it would receive copies of what she sends)
  const n1 = (await notices()).length;
  const slipped = {
    deviceId: b64u(crypto.randomBytes(16)).slice(0, 21) + 'A',
    identityKey: b64u(crypto.randomBytes(32)),
  };
  lie.onDown = (f, l) => {
    if (f.t === 'res' && l.opOf(f) === 'dm_devices' && f.body?.users)
      return [
        {
          ...f,
          body: {
            users: f.body.users.map((u: any) =>
              u.username === 'alice' ? { ...u, devices: [...u.devices, slipped] } : u,
            ),
          },
        },
      ];
    return [f];
  };
  await alice.api('POST', `/api/dms/${id}/messages`, { text: 'third, a device slipped in' });
  const own = await until(async () => (await notices()).length > n1, 6000);
  const asked = lie.link!.up.filter((f) => f.op === 'dm_devices').length;
  honest();
  expect(asked).toBeGreaterThan(0);
  expect(own, "no notice after the server slipped a device into the user's own list").toBeTruthy();
});

test('§1.1: a peer pinned to the real server refuses a front with another key and sends it nothing', async () => {
  const fp = srv.ready.match(/fingerprint=(\S+)/)![1]!;
  const pinned = await startPeer({ host: '127.0.0.1', port: lie.port }, [], { pin: fp });
  const n = lie.links.length;
  await until(() => lie.links.length > n, 8000);
  const login = await pinned.api('POST', '/api/login', { username: 'alice', password: 'pw-alice' });
  await sleep(300);
  const newLinks = lie.links.slice(n);
  await pinned.kill();
  expect(newLinks.length, 'the pinned peer never reached the front').toBeGreaterThan(0);
  expect(login.status).toBe(502);
  expect(login.body.error.code).toBe('E_SERVER_KEY_MISMATCH');
  expect(
    newLinks.flatMap((l) => l.up),
    'frames sent to a key that is not the pinned one',
  ).toEqual([]);
});

test('§3.3 Typing: a typing event the server stamps a year ahead is shown for 6 s on the peer clock, not a year', async () => {
  const ch = await channel();
  const n = events.length;
  (await lie.liveLink()).toVictim({
    t: 'ev',
    ev: 'typing',
    body: { channelId: ch, username: 'bob', expiresAt: Date.now() + 365 * 86_400_000 },
  });
  const ev = await until(() => events.slice(n).find((e) => e.event === 'typing'), 4000);
  expect(ev, 'no typing event at all').toBeTruthy();
  expect(ev!.data.expiresAt, 'typing shown until the server says').toBeLessThan(
    Date.now() + 10_000,
  );
});

test('§3.11: on a compact link, an m frame naming numbers never defined, or with no ts, closes that link (E_BAD_FRAME)', async () => {
  lie.allowCompact = true;
  (await lie.liveLink()).kill();
  const cases: [string, Frame][] = [
    [
      'numbers never defined',
      { t: 'm', c: 4242, k: 4242, ts: Date.now(), lc: 0, text: 'x', sig: 'A'.repeat(86), seq: 1 },
    ],
    ['no ts', { t: 'm', c: 0, cert: bob.cert, lc: 0, text: 'x', sig: 'A'.repeat(86), seq: 1 }],
  ];
  try {
    for (const [what, f] of cases) {
      const l = await lie.liveLink();
      expect(l.down.find((x) => x.t === 'hello')?.compact, 'the link is not compact').toBe(1);
      if (what === 'no ts') l.toVictim({ t: 'ref', c: 0, channelId: uuid7() });
      l.toVictim(f);
      await until(() => l.closed, 4000);
      expect(
        l.errors().map((e) => e.code),
        what,
      ).toEqual(['E_BAD_FRAME']);
      await lie.liveLink(l);
    }
  } finally {
    lie.allowCompact = false;
    lie.link?.kill();
  }
  await lie.liveLink();
  await aliceAlive();
});
