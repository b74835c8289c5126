import { describe, expect, it } from 'vitest';
import {
  aeadDecrypt,
  aeadEncrypt,
  ed25519KeyPair,
  ed25519Sign,
  ed25519Verify,
  edPublicToX25519,
  edSecretToX25519,
  hkdfSha256,
  hmacSha256,
  randomBytes,
  sha512,
  x25519,
  x25519Base,
  x25519KeyPair,
} from '../src/e2e/primitives.js';
import { initiate, respond, signPrekey, verifyPrekey } from '../src/e2e/x3dh.js';
import {
  fingerprint,
  formatSafetyNumber,
  safetyNumber,
  FINGERPRINT_ITERATIONS,
} from '../src/e2e/safety-number.js';
import * as ratchet from '../src/e2e/ratchet.js';
import { RatchetError } from '../src/e2e/ratchet.js';
import { open, seal, SessionError, startSession, type OwnKeys } from '../src/e2e/session.js';
import { DmCipher, type PrekeyBundle } from '../src/protocol/dm.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const range = (from: number, to: number) =>
  Buffer.from(Array.from({ length: to - from + 1 }, (_, i) => from + i));

describe('primitives: published known answers', () => {
  it('X25519, RFC 7748 §5.2 (both vectors, 1 and 1,000 iterations)', () => {
    expect(
      x25519(
        hex('a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4'),
        hex('e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c'),
      ).toString('hex'),
    ).toBe('c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552');
    expect(
      x25519(
        hex('4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d'),
        hex('e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493'),
      ).toString('hex'),
    ).toBe('95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957');
    let k: Buffer = hex('0900000000000000000000000000000000000000000000000000000000000000');
    let u: Buffer = Buffer.from(k);
    for (let i = 1; i <= 1000; i++) {
      const next = x25519(k, u);
      u = k;
      k = next;
      if (i === 1)
        expect(k.toString('hex')).toBe(
          '422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079',
        );
    }
    expect(k.toString('hex')).toBe(
      '684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51',
    );
  });

  it('X25519, RFC 7748 §6.1 (Alice and Bob: public keys and shared secret)', () => {
    const a = hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
    const b = hex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
    const A = x25519Base(a);
    const B = x25519Base(b);
    expect(A.toString('hex')).toBe(
      '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a',
    );
    expect(B.toString('hex')).toBe(
      'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f',
    );
    const k = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';
    expect(x25519(a, B).toString('hex')).toBe(k);
    expect(x25519(b, A).toString('hex')).toBe(k);
  });

  it('X25519 refuses a small-order public key (all-zero result)', () => {
    const sk = x25519KeyPair().secretKey;
    expect(() => x25519(sk, Buffer.alloc(32))).toThrow(/small order/);
    expect(() => x25519(sk, hex('01' + '00'.repeat(31)))).toThrow(/small order/);
  });

  it('Ed25519, RFC 8032 §7.1 tests 1-3 (keys from the seed, signature, verification)', () => {
    const cases = [
      {
        seed: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
        pk: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
        msg: '',
        sig: 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
      },
      {
        seed: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
        pk: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
        msg: '72',
        sig: '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
      },
      {
        seed: 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7',
        pk: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025',
        msg: 'af82',
        sig: '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a',
      },
    ];
    for (const c of cases) {
      const kp = ed25519KeyPair(hex(c.seed));
      expect(kp.publicKey.toString('hex')).toBe(c.pk);
      expect(kp.secretKey.length).toBe(64);
      const sig = ed25519Sign(kp.secretKey, hex(c.msg));
      expect(sig.toString('hex')).toBe(c.sig);
      expect(ed25519Verify(kp.publicKey, hex(c.msg), sig)).toBe(true);
      expect(ed25519Verify(kp.publicKey, Buffer.concat([hex(c.msg), hex('00')]), sig)).toBe(false);
      expect(ed25519Verify(kp.publicKey, hex(c.msg), sig.subarray(0, 63))).toBe(false);
      expect(ed25519Verify(kp.publicKey, hex(c.msg), Buffer.concat([sig, hex('00')]))).toBe(false);
      expect(ed25519Verify(kp.publicKey.subarray(1), hex(c.msg), sig)).toBe(false);
    }
  });

  it('HMAC-SHA256, RFC 4231 test cases 1, 2 and 4', () => {
    expect(hmacSha256(Buffer.alloc(20, 0x0b), Buffer.from('Hi There')).toString('hex')).toBe(
      'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7',
    );
    expect(
      hmacSha256(Buffer.from('Jefe'), Buffer.from('what do ya want for nothing?')).toString('hex'),
    ).toBe('5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
    expect(hmacSha256(range(0x01, 0x19), Buffer.alloc(50, 0xcd)).toString('hex')).toBe(
      '82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b',
    );
  });

  it('HKDF-SHA256, RFC 5869 A.1-A.3', () => {
    expect(
      hkdfSha256(Buffer.alloc(22, 0x0b), range(0x00, 0x0c), range(0xf0, 0xf9), 42).toString('hex'),
    ).toBe('3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865');
    expect(
      hkdfSha256(range(0x00, 0x4f), range(0x60, 0xaf), range(0xb0, 0xff), 82).toString('hex'),
    ).toBe(
      'b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c' +
        '59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71' +
        'cc30c58179ec3e87c14c01d5c1f3434f1d87',
    );
    expect(
      hkdfSha256(Buffer.alloc(22, 0x0b), Buffer.alloc(0), Buffer.alloc(0), 42).toString('hex'),
    ).toBe('8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8');
  });

  it('XChaCha20-Poly1305, draft-irtf-cfrg-xchacha-03 §A.3.1', () => {
    const key = range(0x80, 0x9f);
    const nonce = range(0x40, 0x57);
    const ad = hex('50515253c0c1c2c3c4c5c6c7');
    const pt = Buffer.from(
      "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
    );
    const ct =
      'bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb' +
      '731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452' +
      '2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9' +
      '21f9664c97637da9768812f615c68b13b52e';
    const tag = 'c0875924c1c7987947deafd8780acf49';
    const sealed = aeadEncrypt(key, nonce, pt, ad);
    expect(sealed.toString('hex')).toBe(ct + tag);
    expect(aeadDecrypt(key, nonce, sealed, ad)?.equals(pt)).toBe(true);
    const flipped = Buffer.from(sealed);
    flipped[3]! ^= 1;
    expect(aeadDecrypt(key, nonce, flipped, ad)).toBeUndefined();
    expect(aeadDecrypt(key, nonce, sealed, hex('50'))).toBeUndefined();
    expect(aeadDecrypt(key, nonce, sealed.subarray(0, 15), ad)).toBeUndefined();
  });

  it('SHA-512 of "abc", FIPS 180-2', () => {
    expect(sha512(Buffer.from('abc')).toString('hex')).toBe(
      'ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a' +
        '2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f',
    );
  });

  it("an Ed25519 key's X25519 form: public conversion = base point × converted secret", () => {
    for (let i = 0; i < 20; i++) {
      const kp = ed25519KeyPair();
      expect(
        edPublicToX25519(kp.publicKey).equals(x25519Base(edSecretToX25519(kp.secretKey))),
      ).toBe(true);
    }
    // RFC 8032 test 1's key, so the conversion is pinned too, not only self-consistent.
    const kp = ed25519KeyPair(
      hex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60'),
    );
    expect(edPublicToX25519(kp.publicKey).equals(x25519Base(edSecretToX25519(kp.secretKey)))).toBe(
      true,
    );
  });

  it('edPublicToX25519 throws on a key that is not a curve point', () => {
    // y = 2 has no x on edwards25519 (2 is not a valid y: (y²-1)/(dy²+1) is a non-square).
    expect(() => edPublicToX25519(hex('02' + '00'.repeat(31)))).toThrow(/not a valid curve point/);
    expect(() => edPublicToX25519(Buffer.alloc(31))).toThrow(/32 bytes/);
  });
});

function device() {
  const identity = ed25519KeyPair();
  const spk = x25519KeyPair();
  const opk = x25519KeyPair();
  return { identity, spk, spkSig: signPrekey(identity.secretKey, spk.publicKey), opk };
}

describe('X3DH', () => {
  it('both sides derive the same SK and AD, with and without a one-time prekey', () => {
    const alice = device();
    const bob = device();
    for (const withOpk of [true, false]) {
      const x = initiate(
        { identity: alice.identity },
        {
          identityKey: bob.identity.publicKey,
          signedPrekey: { id: 7, key: bob.spk.publicKey, sig: bob.spkSig },
          oneTimePrekey: withOpk ? { id: 9, key: bob.opk.publicKey } : undefined,
        },
      );
      expect(x.spkId).toBe(7);
      expect(x.opkId).toBe(withOpk ? 9 : undefined);
      const y = respond(
        {
          identity: bob.identity,
          signedPrekey: bob.spk,
          oneTimePrekey: withOpk ? bob.opk : undefined,
        },
        alice.identity.publicKey,
        x.ephemeralPublic,
      );
      expect(x.sk.length).toBe(32);
      expect(y.sk.equals(x.sk)).toBe(true);
      expect(x.ad.equals(Buffer.concat([alice.identity.publicKey, bob.identity.publicKey]))).toBe(
        true,
      );
      expect(y.ad.equals(x.ad)).toBe(true);
      // Forgetting the one-time prekey on one side gives a different key.
      const z = respond(
        {
          identity: bob.identity,
          signedPrekey: bob.spk,
          oneTimePrekey: withOpk ? undefined : bob.opk,
        },
        alice.identity.publicKey,
        x.ephemeralPublic,
      );
      expect(z.sk.equals(x.sk)).toBe(false);
    }
  });

  it('refuses a bad signed-prekey signature, and the signature covers the prefixed key only', () => {
    const alice = device();
    const bob = device();
    const other = device();
    expect(verifyPrekey(bob.identity.publicKey, bob.spk.publicKey, bob.spkSig)).toBe(true);
    expect(
      ed25519Verify(
        bob.identity.publicKey,
        Buffer.concat([Buffer.from('hchat-dm-spk-v1'), bob.spk.publicKey]),
        bob.spkSig,
      ),
    ).toBe(true);
    const tries = [
      { key: other.spk.publicKey, sig: bob.spkSig },
      { key: bob.spk.publicKey, sig: other.spkSig },
      { key: bob.spk.publicKey, sig: Buffer.alloc(64) },
      { key: bob.spk.publicKey, sig: bob.spkSig.subarray(0, 63) },
    ];
    for (const t of tries)
      expect(() =>
        initiate(
          { identity: alice.identity },
          { identityKey: bob.identity.publicKey, signedPrekey: { id: 1, ...t } },
        ),
      ).toThrow(/signed prekey's signature does not verify/);
  });
});

describe('safety numbers', () => {
  const k = (b: number) => Buffer.alloc(32, b);

  it('a known answer for fixed keys (computed once, cross-checked in Python, pinned)', () => {
    expect(FINGERPRINT_ITERATIONS).toBe(5200);
    expect(fingerprint('alice', [k(1), k(2)])).toBe(PINNED_ALICE);
    expect(
      safetyNumber({ username: 'alice', keys: [k(2), k(1)] }, { username: 'bob', keys: [k(3)] }),
    ).toBe(PINNED_SAFETY);
  });

  it('is deterministic, symmetric, 60 digits, and changes with any key, device or name', () => {
    const a = { username: 'alice', keys: [randomBytes(32), randomBytes(32)] };
    const b = { username: 'bob', keys: [randomBytes(32)] };
    const n = safetyNumber(a, b);
    expect(n).toMatch(/^\d{60}$/);
    expect(safetyNumber(a, b)).toBe(n);
    expect(safetyNumber(b, a)).toBe(n);
    expect(safetyNumber({ ...a, keys: [...a.keys].reverse() }, b)).toBe(n);
    const flipped = Buffer.from(a.keys[0]!);
    flipped[31]! ^= 1;
    expect(safetyNumber({ ...a, keys: [flipped, a.keys[1]!] }, b)).not.toBe(n);
    expect(safetyNumber(a, { ...b, keys: [...b.keys, randomBytes(32)] })).not.toBe(n);
    expect(safetyNumber({ ...a, username: 'alicf' }, b)).not.toBe(n);
    expect(formatSafetyNumber(n)).toMatch(/^(\d{5} ){11}\d{5}$/);
    expect(formatSafetyNumber(n).replaceAll(' ', '')).toBe(n);
  });
});

// Computed once with this code and, independently, with a few lines of Python (hashlib) that
// follow libsignal's DisplayableFingerprint; pinned so that the format cannot drift.
const PINNED_ALICE = '673725225975756951624951916358';
const PINNED_SAFETY = '028981640375223615382481479101' + PINNED_ALICE;

function wireBundle(d: ReturnType<typeof device>, withOpk: boolean): PrekeyBundle {
  return {
    username: 'bob',
    deviceId: randomBytes(16).toString('base64url'),
    identityKey: d.identity.publicKey.toString('base64url'),
    signedPrekey: {
      id: 1,
      key: d.spk.publicKey.toString('base64url'),
      sig: d.spkSig.toString('base64url'),
    },
    ...(withOpk ? { oneTimePrekey: { id: 2, key: d.opk.publicKey.toString('base64url') } } : {}),
  };
}

function ownKeys(d: ReturnType<typeof device>, opks: Map<number, typeof d.opk>): OwnKeys {
  return { identity: d.identity, signedPrekeys: new Map([[1, d.spk]]), oneTimePrekeys: opks };
}

describe('sessions on the wire shape', () => {
  it('start, reply, re-install: the prekey part goes until a reply, then a new start replaces', () => {
    const alice = device();
    const bob = device();
    const opks = new Map([[2, bob.opk]]);
    const started = startSession(alice.identity, wireBundle(bob, true));
    expect(started.prekey).toMatchObject({ spk: 1, opk: 2 });
    let a = started.state;
    const m1 = seal(a, Buffer.from('hello'));
    a = m1.state;
    const m2 = seal(a, Buffer.from('again'));
    a = m2.state;
    expect(DmCipher.parse(m1.body).prekey).toEqual(started.prekey);
    expect(m2.body.prekey).toEqual(started.prekey);

    const r1 = open(undefined, ownKeys(bob, opks), m2.body);
    expect(r1).toMatchObject({ kind: 'new', usedOneTimePrekey: 2 });
    expect(r1.plaintext.toString()).toBe('again');
    expect(r1.remoteIdentity.equals(alice.identity.publicKey)).toBe(true);
    opks.delete(2);
    let b = r1.state;
    const r2 = open(b, ownKeys(bob, opks), m1.body);
    expect(r2.kind).toBe('message');
    expect(r2.plaintext.toString()).toBe('hello');
    b = r2.state;
    expect(() => open(b, ownKeys(bob, opks), m1.body)).toThrow(RatchetError);

    const reply = seal(b, Buffer.from('hi alice'));
    b = reply.state;
    expect(reply.body.prekey).toBeUndefined();
    const r3 = open(a, ownKeys(alice, new Map()), reply.body);
    expect(r3.plaintext.toString()).toBe('hi alice');
    a = r3.state;
    expect(seal(a, Buffer.from('no prekey now')).body.prekey).toBeUndefined();

    // Alice re-installs: a new identity and session; Bob's device has no one-time prekey left.
    const alice2 = device();
    const restart = seal(
      startSession(alice2.identity, wireBundle(bob, false)).state,
      Buffer.from('new me'),
    );
    const r4 = open(b, ownKeys(bob, opks), restart.body);
    expect(r4.kind).toBe('replaced');
    expect(r4.remoteIdentity.equals(alice2.identity.publicKey)).toBe(true);
    expect(r4.usedOneTimePrekey).toBeUndefined();
  });

  it('refuses what it cannot open, with a reason, and leaves the session as it was', () => {
    const alice = device();
    const bob = device();
    const s = startSession(alice.identity, wireBundle(bob, true));
    const m = seal(s.state, Buffer.from('x')).body;
    // A character inside the ciphertext, changed (its last two may already be 'AA').
    const flipped = (ct: string) => {
      const i = ct.length >> 1;
      return ct.slice(0, i) + (ct[i] === 'A' ? 'B' : 'A') + ct.slice(i + 1);
    };
    const reason = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return (e as SessionError | RatchetError).reason;
      }
      return 'opened';
    };
    expect(reason(() => open(undefined, ownKeys(bob, new Map()), m))).toBe('unknown_prekey');
    expect(
      reason(() => open(undefined, ownKeys(bob, new Map()), { ...m, prekey: undefined })),
    ).toBe('no_session');
    const opks = new Map([[2, bob.opk]]);
    expect(reason(() => open(undefined, ownKeys(bob, opks), { ...m, ct: flipped(m.ct) }))).toBe(
      'bad_ciphertext',
    );
    expect(reason(() => open(undefined, ownKeys(bob, opks), m))).toBe('opened');
  });
});

describe('ratchet tampering', () => {
  it('flipping any bit of the ciphertext or the header fails as bad_ciphertext and changes nothing', () => {
    const alice = device();
    const bob = device();
    const x = initiate(
      { identity: alice.identity },
      {
        identityKey: bob.identity.publicKey,
        signedPrekey: { id: 1, key: bob.spk.publicKey, sig: bob.spkSig },
      },
    );
    const y = respond(
      { identity: bob.identity, signedPrekey: bob.spk },
      alice.identity.publicKey,
      x.ephemeralPublic,
    );
    let a = ratchet.initSender(x.sk, bob.spk.publicKey);
    let b = ratchet.initReceiver(y.sk, bob.spk);
    // One round trip, so that Bob has a current chain (the header's dh is not new to him).
    const first = ratchet.encrypt(a, Buffer.from('first'), x.ad);
    a = first.state;
    b = ratchet.decrypt(b, first.header, first.ciphertext, y.ad).state;
    const back = ratchet.encrypt(b, Buffer.from('back'), y.ad);
    b = back.state;
    a = ratchet.decrypt(a, back.header, back.ciphertext, x.ad).state;
    // m1 starts a new chain at Bob (a ratchet step), m2 continues it: both paths are tried.
    const m1 = ratchet.encrypt(a, Buffer.from('tamper with me'), x.ad);
    const m2 = ratchet.encrypt(m1.state, Buffer.from('and with me'), x.ad);
    for (const m of [m1, m2]) {
      const before = ratchet.serialize(b);
      const fails = (header: ratchet.Header, ct: Buffer) => {
        try {
          ratchet.decrypt(b, header, ct, y.ad);
        } catch (e) {
          expect(e).toBeInstanceOf(RatchetError);
          return (e as RatchetError).reason;
        }
        return 'decrypted';
      };
      for (let bit = 0; bit < m.ciphertext.length * 8; bit++) {
        const ct = Buffer.from(m.ciphertext);
        ct[bit >> 3]! ^= 1 << (bit & 7);
        expect(fails(m.header, ct)).toBe('bad_ciphertext');
      }
      for (let bit = 0; bit < 256; bit++) {
        const dh = Buffer.from(m.header.dh);
        dh[bit >> 3]! ^= 1 << (bit & 7);
        expect(fails({ ...m.header, dh }, m.ciphertext)).toBe('bad_ciphertext');
      }
      // pn and n, every bit of the u32. Refused before any decryption: a flip that would skip
      // more than maxSkipPerChain (1,000) keys, as too_many_skipped (pn counts only when the
      // message starts a chain), and a number below the chain's counter, as duplicate.
      for (const field of ['pn', 'n'] as const)
        for (let bit = 0; bit < 32; bit++) {
          const v = (m.header[field] ^ (1 << bit)) >>> 0;
          const counts = field === 'n' || m === m1;
          const expected =
            counts && v > 1000
              ? 'too_many_skipped'
              : field === 'n' && m === m2 && v < m.header.n
                ? 'duplicate'
                : 'bad_ciphertext';
          expect(fails({ ...m.header, [field]: v }, m.ciphertext)).toBe(expected);
        }
      expect(fails(m.header, Buffer.alloc(0))).toBe('bad_ciphertext');
      expect(ratchet.serialize(b)).toBe(before);
      const ok = ratchet.decrypt(b, m.header, m.ciphertext, y.ad);
      expect(ok.plaintext.toString()).toBe(m === m1 ? 'tamper with me' : 'and with me');
      b = ok.state;
    }
  });

  it('a state once used is retired: using it again throws instead of reusing its keys', () => {
    const alice = device();
    const bob = device();
    const x = initiate(
      { identity: alice.identity },
      {
        identityKey: bob.identity.publicKey,
        signedPrekey: { id: 1, key: bob.spk.publicKey, sig: bob.spkSig },
      },
    );
    const a = ratchet.initSender(x.sk, bob.spk.publicKey);
    ratchet.encrypt(a, Buffer.from('one'), x.ad);
    expect(() => ratchet.encrypt(a, Buffer.from('two'), x.ad)).toThrow(/stale ratchet state/);
    expect(() => ratchet.serialize(a)).toThrow(/stale ratchet state/);
    const b = ratchet.initReceiver(x.sk, bob.spk);
    expect(() => ratchet.encrypt(b, Buffer.from('first'), x.ad)).toThrow(/no sending chain/);
  });
});
