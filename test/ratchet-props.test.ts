/**
 * Property tests of the Double Ratchet (src/e2e/ratchet.ts): random conversations with random
 * delivery orders, losses, duplicates and forgeries; forward secrecy and post-compromise
 * security against an attacker holding a copy of a state; the bounds of the skipped keys.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as ratchet from '../src/e2e/ratchet.js';
import { RatchetError, type Header, type RatchetState } from '../src/e2e/ratchet.js';
import { ed25519KeyPair, x25519KeyPair } from '../src/e2e/primitives.js';
import { initiate, respond, signPrekey } from '../src/e2e/x3dh.js';
import { DM_LIMITS } from '../src/shared/limits.js';

type Side = 'A' | 'B';
interface Sent {
  from: Side;
  header: Header;
  ciphertext: Buffer;
  text: string;
}

/** A and B after X3DH: A initiated (it sends first), B responds. */
function pair() {
  const ikA = ed25519KeyPair();
  const ikB = ed25519KeyPair();
  const spk = x25519KeyPair();
  const x = initiate(
    { identity: ikA },
    {
      identityKey: ikB.publicKey,
      signedPrekey: { id: 1, key: spk.publicKey, sig: signPrekey(ikB.secretKey, spk.publicKey) },
    },
  );
  const y = respond({ identity: ikB, signedPrekey: spk }, ikA.publicKey, x.ephemeralPublic);
  return {
    A: ratchet.initSender(x.sk, spk.publicKey),
    B: ratchet.initReceiver(y.sk, spk),
    ad: x.ad,
  };
}

/** The reason a decrypt failed, checking that the state given is unchanged; or its plaintext. */
function attempt(state: RatchetState, m: Pick<Sent, 'header' | 'ciphertext'>, ad: Buffer) {
  const before = ratchet.serialize(state);
  try {
    const out = ratchet.decrypt(state, m.header, m.ciphertext, ad);
    return { ok: true as const, ...out };
  } catch (e) {
    if (!(e instanceof RatchetError)) throw e;
    expect(ratchet.serialize(state)).toBe(before);
    return { ok: false as const, reason: e.reason };
  }
}

/** A copy of a state made through its stored form, optionally edited as JSON (an attacker). */
function copy(state: RatchetState, edit?: (j: Record<string, unknown>) => void): RatchetState {
  const j = JSON.parse(ratchet.serialize(state)) as Record<string, unknown>;
  edit?.(j);
  return ratchet.deserialize(JSON.stringify(j));
}

/**
 * The attacker's mirror of a leaked state: a receiving state whose chain is the leaked state's
 * sending chain, so it decrypts what the leaked side sends next.
 */
function mirror(leaked: RatchetState): RatchetState {
  return copy(leaked, (j) => {
    const dhs = j.dhs as { pub: string };
    Object.assign(j, { dhr: dhs.pub, ckr: j.cks, nr: j.ns, skipped: [], ended: [] });
  });
}

const Action = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constant('send'), who: fc.constantFrom<Side>('A', 'B') }),
  },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('deliver'), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('lose'), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('duplicate'), pick: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('forge'), pick: fc.nat(), bit: fc.nat() }),
  },
);

describe('Double Ratchet properties', () => {
  it('random conversations: each delivered message decrypts exactly once, duplicates and forgeries are refused without changing the state, and a later copy of a state decrypts nothing already received', () => {
    fc.assert(
      fc.property(fc.array(Action, { minLength: 1, maxLength: 80, size: 'max' }), (actions) => {
        const p = pair();
        const state: Record<Side, RatchetState> = { A: p.A, B: p.B };
        const inFlight: Sent[] = [];
        const delivered: Sent[] = [];
        const lost: Sent[] = [];
        const received: Record<Side, string[]> = { A: [], B: [] };
        let counter = 0;
        const other = (s: Side): Side => (s === 'A' ? 'B' : 'A');
        for (const a of actions) {
          if (a.kind === 'send') {
            // B has no sending chain before A's first message reached it.
            if (a.who === 'B' && received.B.length === 0) continue;
            const text = `${a.who}-${counter++}`;
            const out = ratchet.encrypt(state[a.who], Buffer.from(text), p.ad);
            state[a.who] = out.state;
            inFlight.push({ from: a.who, header: out.header, ciphertext: out.ciphertext, text });
          } else if (a.kind === 'deliver' || a.kind === 'lose') {
            if (inFlight.length === 0) continue;
            const [m] = inFlight.splice(a.pick % inFlight.length, 1);
            if (a.kind === 'lose') {
              lost.push(m!);
              continue;
            }
            const to = other(m!.from);
            const r = attempt(state[to], m!, p.ad);
            expect(r.ok).toBe(true);
            if (!r.ok) return;
            expect(r.plaintext.toString()).toBe(m!.text);
            state[to] = r.state;
            received[to].push(m!.text);
            delivered.push(m!);
          } else if (a.kind === 'duplicate') {
            if (delivered.length === 0) continue;
            const m = delivered[a.pick % delivered.length]!;
            const r = attempt(state[other(m.from)], m, p.ad);
            expect(r).toEqual({ ok: false, reason: 'duplicate' });
          } else {
            const pool = [...inFlight, ...delivered];
            if (pool.length === 0) continue;
            const m = pool[a.pick % pool.length]!;
            const ciphertext = Buffer.from(m.ciphertext);
            const bit = a.bit % (ciphertext.length * 8);
            ciphertext[bit >> 3]! ^= 1 << (bit & 7);
            const r = attempt(state[other(m.from)], { header: m.header, ciphertext }, p.ad);
            expect(r.ok).toBe(false);
          }
        }
        // Nothing decrypted twice, nothing lost ever decrypted.
        for (const side of ['A', 'B'] as const) {
          expect(new Set(received[side]).size).toBe(received[side].length);
          for (const m of lost) expect(received[side]).not.toContain(m.text);
        }
        // Forward secrecy: a copy of each state taken now decrypts none of the messages it
        // already received, even with its counters and remembered chains edited by the attacker.
        for (const side of ['A', 'B'] as const) {
          const asIs = copy(state[side]);
          const edited = copy(state[side], (j) => Object.assign(j, { nr: 0, ended: [] }));
          for (const m of delivered.filter((d) => d.from !== side)) {
            expect(attempt(asIs, m, p.ad).ok).toBe(false);
            expect(attempt(edited, m, p.ad).ok).toBe(false);
          }
        }
        // Everything still in flight decrypts (losses and reordering broke nothing).
        for (const m of inFlight) {
          const to = other(m.from);
          const r = attempt(state[to], m, p.ad);
          expect(r.ok).toBe(true);
          if (r.ok) state[to] = r.state;
        }
      }),
      { numRuns: 200 },
    );
  });

  it("post-compromise security: a copy of A's state decrypts A's next messages until B replies and A sends again, then none", () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom<Side>('A', 'B'), { maxLength: 12, size: 'max' }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 5 }),
        (history, before, after) => {
          const p = pair();
          let A = p.A;
          let B = p.B;
          const toA = (text: string) => {
            const out = ratchet.encrypt(B, Buffer.from(text), p.ad);
            B = out.state;
            A = ratchet.decrypt(A, out.header, out.ciphertext, p.ad).state;
          };
          const toB = (text: string) => {
            const out = ratchet.encrypt(A, Buffer.from(text), p.ad);
            A = out.state;
            B = ratchet.decrypt(B, out.header, out.ciphertext, p.ad).state;
            return out;
          };
          toB('hello');
          for (const [i, who] of history.entries()) (who === 'A' ? toB : toA)(`h${i}`);
          // Time t: the attacker copies A's whole state.
          const leaked = copy(A);
          let spy = mirror(leaked);
          for (let i = 0; i < before; i++) {
            const m = toB(`before-${i}`);
            const r = attempt(spy, m, p.ad);
            expect(r.ok && r.plaintext.toString()).toBe(`before-${i}`);
            if (r.ok) spy = r.state;
          }
          // B replies (after A's messages), A receives it; the attacker sees the reply too
          // and can follow it with the leaked copy.
          const reply = ratchet.encrypt(B, Buffer.from('reply'), p.ad);
          B = reply.state;
          A = ratchet.decrypt(A, reply.header, reply.ciphertext, p.ad).state;
          const attackers = [spy, mirror(leaked)];
          const followed = attempt(leaked, reply, p.ad);
          expect(followed.ok && followed.plaintext.toString()).toBe('reply');
          if (followed.ok) attackers.push(mirror(followed.state));
          for (let i = 0; i < after; i++) {
            const m = toB(`after-${i}`);
            for (const s of attackers) expect(attempt(s, m, p.ad).ok).toBe(false);
          }
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('Double Ratchet bounds', () => {
  /** A sends `count` messages on its current chain. */
  function burst(A: RatchetState, ad: Buffer, count: number) {
    const out: { header: Header; ciphertext: Buffer }[] = [];
    for (let i = 0; i < count; i++) {
      const m = ratchet.encrypt(A, Buffer.from(`m${i}`), ad);
      A = m.state;
      out.push(m);
    }
    return { A, out };
  }

  it(`skipping more than maxSkipPerChain (${DM_LIMITS.maxSkipPerChain}) keys in one step is refused; exactly that many is kept`, () => {
    const p = pair();
    const { out } = burst(p.A, p.ad, DM_LIMITS.maxSkipPerChain + 2);
    const tooFar = attempt(p.B, out[DM_LIMITS.maxSkipPerChain + 1]!, p.ad);
    expect(tooFar).toEqual({ ok: false, reason: 'too_many_skipped' });
    const r = attempt(p.B, out[DM_LIMITS.maxSkipPerChain]!, p.ad);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.state.skippedKeys).toBe(DM_LIMITS.maxSkipPerChain);
    const first = attempt(r.state, out[0]!, p.ad);
    expect(first.ok && first.plaintext.toString()).toBe('m0');
    if (first.ok) expect(first.state.skippedKeys).toBe(DM_LIMITS.maxSkipPerChain - 1);
  });

  it(`the skipped keys never pass maxSkippedKeys (${DM_LIMITS.maxSkippedKeys}): the oldest are dropped, and their messages refused as duplicate`, () => {
    const p = pair();
    let A = p.A;
    let B = p.B;
    const chains: { header: Header; ciphertext: Buffer }[][] = [];
    for (let c = 0; c < 3; c++) {
      const b = burst(A, p.ad, DM_LIMITS.maxSkipPerChain + 1);
      A = b.A;
      chains.push(b.out);
      // B receives only each chain's last message, skipping 1,000 keys each time.
      const r = attempt(B, b.out[DM_LIMITS.maxSkipPerChain]!, p.ad);
      expect(r.ok).toBe(true);
      if (!r.ok) return;
      B = r.state;
      expect(B.skippedKeys).toBe(
        Math.min((c + 1) * DM_LIMITS.maxSkipPerChain, DM_LIMITS.maxSkippedKeys),
      );
      expect(JSON.parse(ratchet.serialize(B)).skipped.length).toBe(B.skippedKeys);
      // A hears back, so that its next burst starts a new chain.
      const back = ratchet.encrypt(B, Buffer.from('ack'), p.ad);
      B = back.state;
      A = ratchet.decrypt(A, back.header, back.ciphertext, p.ad).state;
    }
    // The first chain's keys were the oldest: dropped.
    expect(attempt(B, chains[0]![0]!, p.ad)).toEqual({ ok: false, reason: 'duplicate' });
    expect(attempt(B, chains[0]![999]!, p.ad)).toEqual({ ok: false, reason: 'duplicate' });
    for (const c of [1, 2]) {
      const r = attempt(B, chains[c]![0]!, p.ad);
      expect(r.ok && r.plaintext.toString()).toBe('m0');
      if (r.ok) B = r.state;
    }
  });

  it('serialize/deserialize round-trips a state, and deserialize refuses a broken one', () => {
    const p = pair();
    const { A, out } = burst(p.A, p.ad, 3);
    const r = attempt(p.B, out[2]!, p.ad);
    if (!r.ok) throw new Error('expected to decrypt');
    const text = ratchet.serialize(r.state);
    const back = ratchet.deserialize(text);
    expect(ratchet.serialize(back)).toBe(text);
    expect(attempt(back, out[0]!, p.ad).ok).toBe(true);
    expect(() => ratchet.deserialize(text.replace('"v":1', '"v":2'))).toThrow();
    const j = JSON.parse(text);
    j.dhs.pub = JSON.parse(ratchet.serialize(A)).dhs.pub;
    expect(() => ratchet.deserialize(JSON.stringify(j))).toThrow(/key pair does not match/);
  });
});
