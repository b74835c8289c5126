import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { JitterBuffer, type Frame } from '../src/stream/jitter-buffer.js';
import { RetransmitBuffer, RtpSender, type MediaKind } from '../src/stream/sender.js';
import { parseRtp } from '../src/stream/rtp.js';
import { ROOT, RelayTree } from '../src/stream/relay-tree.js';

/** What the simulated network does to packets. */
interface Net {
  loss: number;
  /** Loss of retransmissions and of NACKs. */
  repairLoss: number;
  dup: number;
  maxDelay: number;
  seed: number;
}

/** A tiny deterministic PRNG so that a schedule replays exactly. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

/**
 * Sends `sizes.length` frames at 30 fps through a lossy, reordering, duplicating network into a
 * jitter buffer, with NACKs answered from the sender's retransmit buffer, one tick a millisecond.
 */
function simulate(kind: MediaKind, sizes: number[], net: Net, deadlineMs = 200) {
  const random = rng(net.seed);
  const sender = new RtpSender(kind, 42, 0);
  const rtx = new RetransmitBuffer();
  const jb = new JitterBuffer({ kind, deadlineMs });
  const inFlight: Array<{ at: number; d: Buffer }> = [];
  const sent: Buffer[] = [];
  const out: Frame[] = [];
  let maxWait = 0;
  const firstArrival = new Map<number, number>();
  const send = (d: Buffer, now: number, loss: number) => {
    if (random() < loss) return;
    const copies = random() < net.dup ? 2 : 1;
    for (let i = 0; i < copies; i++)
      inFlight.push({ at: now + 1 + Math.floor(random() * net.maxDelay), d });
  };
  // The first frame is never lost (a receiver cannot know of packets before the first it saw),
  // and the stream goes on after the frames under test: one last frame that is never lost shows
  // any loss at the tail (as the next frames of a live stream would).
  const frames = sizes.length + 1;
  const end = frames * 33 + deadlineMs * 2 + 100;
  for (let now = 0; now < end; now++) {
    if (now % 33 === 0 && now / 33 < frames) {
      const i = now / 33;
      const data = Buffer.alloc(sizes[i] ?? 1, i & 0xff);
      data[0] = i % 10 === 0 ? 0x10 : 0x11; // a keyframe every ten frames
      sent.push(data);
      for (const d of sender.packetize({ kind, data, keyframe: i % 10 === 0, captureMs: now })) {
        rtx.put(parseRtp(d).seq, d);
        send(d, now, i > 0 && i < sizes.length ? net.loss : 0);
      }
    }
    for (let j = inFlight.length - 1; j >= 0; j--) {
      if (inFlight[j]!.at !== now) continue;
      const p = parseRtp(inFlight[j]!.d);
      inFlight.splice(j, 1);
      if (!firstArrival.has(p.timestamp)) firstArrival.set(p.timestamp, now);
      jb.push(p, now);
    }
    for (const seq of jb.nacks(now)) {
      if (random() < net.repairLoss) continue; // the NACK was lost
      const d = rtx.get(seq);
      if (d) send(d, now + Math.floor(random() * net.maxDelay), net.repairLoss);
    }
    for (const f of jb.poll(now)) {
      maxWait = Math.max(maxWait, now - firstArrival.get(f.timestamp)!);
      out.push(f);
    }
  }
  return { jb, out, sent, maxWait };
}

const net = (o: Partial<Net> = {}) =>
  fc.record({
    loss: fc.constant(o.loss ?? 0),
    repairLoss: fc.constant(o.repairLoss ?? 0),
    dup: fc.double({ min: 0, max: 0.1, noNaN: true }),
    maxDelay: fc.integer({ min: 1, max: 30 }),
    seed: fc.nat(),
  });
const sizes = fc.array(fc.integer({ min: 1, max: 6000 }), { minLength: 1, maxLength: 40 });

/** Frames handed out are sent frames, in sending order, each once, each whole. */
function expectInOrderAndIntact(r: ReturnType<typeof simulate>, kind: MediaKind) {
  let last = -1;
  for (const f of r.out) {
    const i = f.captureMs! / 33;
    expect(i).toBeGreaterThan(last);
    last = i;
    expect(Buffer.from(f.data)).toEqual(r.sent[i]);
    if (kind === 'video') expect(f.keyframe).toBe(i % 10 === 0);
  }
}

describe('jitter buffer', () => {
  it('hands out every frame, in order, when nothing is lost (reordering and duplicates only)', () => {
    fc.assert(
      fc.property(fc.constantFrom<MediaKind>('video', 'audio'), sizes, net(), (kind, s, n) => {
        const ss = kind === 'audio' ? s.map((x) => Math.min(x, 1000)) : s;
        const r = simulate(kind, ss, n);
        expectInOrderAndIntact(r, kind);
        expect(r.out.length).toBe(r.sent.length);
        expect(r.jb.stats.framesDropped).toBe(0);
      }),
    );
  });

  it('repairs random loss with NACKs when repairs get through', () => {
    fc.assert(
      fc.property(sizes, net({ loss: 0.1 }), (s, n) => {
        const r = simulate('video', s, { ...n, maxDelay: Math.min(n.maxDelay, 20) });
        expectInOrderAndIntact(r, 'video');
        expect(r.out.length).toBe(r.sent.length);
        expect(r.jb.stats.packetsLost).toBe(0);
      }),
    );
  });

  it('under heavy loss of packets and repairs, drops late frames without blocking the rest', () => {
    fc.assert(
      fc.property(
        sizes,
        fc.double({ min: 0, max: 0.6, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        net(),
        (s, loss, repairLoss, n) => {
          const deadline = 150;
          const r = simulate('video', s, { ...n, loss, repairLoss }, deadline);
          expectInOrderAndIntact(r, 'video');
          // No frame waited past its deadline (one tick of slack for the poll), and at the end
          // nothing is left waiting: every frame was handed out or dropped.
          expect(r.maxWait).toBeLessThanOrEqual(deadline + 1);
          expect(r.jb.poll(1e9)).toEqual([]);
          expect(r.jb.stats.framesComplete).toBe(r.out.length);
        },
      ),
    );
  });

  it('asks for a keyframe after a dropped frame, until one arrives', () => {
    const jb = new JitterBuffer({ kind: 'video', deadlineMs: 50 });
    const sender = new RtpSender('video', 7, 0);
    const frame = (i: number, key: boolean) =>
      sender
        .packetize({
          kind: 'video',
          data: Buffer.from([key ? 0x10 : 0x11, i]),
          keyframe: key,
          captureMs: i * 33,
        })
        .map((d) => parseRtp(d));
    for (const p of frame(0, true)) jb.push(p, 0);
    expect(jb.poll(0).length).toBe(1);
    expect(jb.needKeyframe).toBe(false);
    frame(1, false); // lost
    for (const p of frame(2, false)) jb.push(p, 33);
    expect(jb.nacks(40).length).toBe(1);
    expect(jb.poll(40)).toEqual([]); // waits for the missing one
    expect(jb.poll(100).length).toBe(1); // frame 1 given up at 33 + 50; frame 2 follows at once
    expect(jb.needKeyframe).toBe(true);
    for (const p of frame(3, true)) jb.push(p, 110);
    expect(jb.poll(110)[0]!.keyframe).toBe(true);
    expect(jb.needKeyframe).toBe(false);
  });

  it('starts over when the sequence jumps (a restarted sender) and counts foreign payloads', () => {
    const jb = new JitterBuffer({ kind: 'video', deadlineMs: 50 });
    const p = (seq: number, payload: number[]) => ({
      marker: true,
      payloadType: 96,
      seq,
      timestamp: seq * 3000,
      ssrc: 1,
      payload: Uint8Array.from(payload),
    });
    jb.push(p(10, [0x90, 0x80, 0x80, 1, 0x10]), 0);
    expect(jb.push(p(30000, [0x90, 0x80, 0x80, 2, 0x10]), 1)).toBe('new');
    expect(jb.stats.restarts).toBe(1);
    expect(jb.poll(1).length).toBe(1);
    expect(jb.push(p(30001, []), 2)).toBe('malformed');
    expect(jb.push(p(30000, [0x90, 0x80, 0x80, 2, 0x10]), 2)).toBe('late');
  });
});

describe('relay tree', () => {
  const ops = fc.array(
    fc.oneof(
      fc.record({ op: fc.constant('add' as const), n: fc.nat({ max: 60 }) }),
      fc.record({ op: fc.constant('remove' as const), n: fc.nat({ max: 60 }) }),
      fc.record({ op: fc.constant('stall' as const), n: fc.nat({ max: 60 }) }),
      fc.record({ op: fc.constant('move' as const), n: fc.nat({ max: 60 }) }),
    ),
    { maxLength: 200 },
  );

  it('keeps every viewer reachable, at most k children a node, whatever joins and leaves', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), ops, (k, steps) => {
        const t = new RelayTree(k);
        const live = new Set<string>();
        for (const s of steps) {
          const id = `v${s.n}`;
          if (s.op === 'add' && !live.has(id)) {
            t.add(id);
            live.add(id);
          } else if (s.op === 'remove' && live.has(id)) {
            t.remove(id);
            live.delete(id);
          } else if (s.op === 'stall' && live.has(id)) {
            t.stalled(id);
          } else if (s.op === 'move' && live.has(id)) {
            const from = t.parentOf(id)!;
            const to = t.move(id);
            if (from !== ROOT) expect(to).not.toBe(from);
          }
        }
        const placed = t.placements();
        expect(new Set(placed.map((p) => p.id))).toEqual(live);
        expect(placed.length).toBe(live.size); // reachable from the root, each once: no cycle
        for (const p of placed) expect(t.parentOf(p.id)).toBe(p.parent);
        for (const id of [ROOT, ...live])
          if (id !== ROOT) expect(t.childrenOf(id).length).toBeLessThanOrEqual(k);
      }),
    );
  });

  it('feeds at most k from the streamer, with depth log_k of the audience', () => {
    const t = new RelayTree(3);
    for (let i = 0; i < 30; i++) t.add(`v${i}`);
    expect(t.childrenOf(ROOT).length).toBe(3);
    expect(Math.max(...t.placements().map((p) => t.depthOf(p.id)))).toBe(3); // 3 + 9 + 18
    const relay = t.childrenOf(ROOT)[0]!;
    const orphans = t.childrenOf(relay);
    const moves = t.remove(relay);
    expect(moves.map((m) => m.id).sort()).toEqual(orphans.sort());
    expect(t.childrenOf(ROOT).length).toBe(3);
    expect(t.size).toBe(29);
  });

  it('moves a viewer that reports its parent alone: its siblings stay', () => {
    const t = new RelayTree(2);
    for (let i = 0; i < 8; i++) t.add(`v${i}`);
    const parent = t.parentOf('v7')!;
    const siblings = t.childrenOf(parent).filter((c) => c !== 'v7');
    expect(siblings.length).toBeGreaterThan(0);
    const to = t.move('v7')!;
    expect(to).not.toBe(parent);
    expect(t.childrenOf(parent).sort()).toEqual(siblings.sort());
    expect(t.move('v0')).toBeUndefined(); // fed by the streamer: nowhere better to go
  });
});
