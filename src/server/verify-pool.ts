/**
 * Ed25519 checks of posted messages on worker threads, so that the server's event loop does the
 * rest (parsing, storing, fan-out) while other cores verify. Checks are batched per event-loop
 * turn: the checks queued in one turn are split evenly across the workers, one message each, and
 * each answer resolves its share. The workers are plain JavaScript (eval'd), so that they run the same
 * from the sources (tests) and from the build.
 */
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { SODIUM_NATIVE_PATH } from '../shared/ed25519.js';
import type { SignatureCheck } from '../shared/signing.js';

// The same libsodium check as shared/ed25519.ts (lengths already checked by the verifier).
const WORKER = `
const { parentPort } = require('node:worker_threads');
const sodium = require(${JSON.stringify(SODIUM_NATIVE_PATH)});
parentPort.on('message', ({ id, checks }) => {
  const ok = checks.map((c) =>
    c.sig.length === 64 &&
    sodium.crypto_sign_verify_detached(Buffer.from(c.sig), Buffer.from(c.data), Buffer.from(c.key)),
  );
  parentPort.postMessage({ id, ok });
});
`;

interface Batch {
  checks: SignatureCheck[];
  resolve: Array<(ok: boolean) => void>;
}

export class VerifyPool {
  private readonly workers: Worker[];
  private readonly waiting = new Map<number, Batch>();
  private queued: Batch | undefined;
  private nextId = 1;
  private turn = 0;

  constructor(size = Math.max(1, Math.min(4, os.availableParallelism() - 1))) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError('a pool needs 1 thread or more');
    this.workers = Array.from({ length: size }, () => {
      const w = new Worker(WORKER, { eval: true });
      w.on('message', ({ id, ok }: { id: number; ok: boolean[] }) => {
        const b = this.waiting.get(id);
        this.waiting.delete(id);
        b?.resolve.forEach((r, i) => r(ok[i] === true));
      });
      w.unref();
      return w;
    });
  }

  /** Checks queued or on a worker now (the `verify` queue depth of /metrics). */
  get pending(): number {
    let n = this.queued?.checks.length ?? 0;
    for (const b of this.waiting.values()) n += b.checks.length;
    return n;
  }

  /** True when the signature holds. */
  verify(check: SignatureCheck): Promise<boolean> {
    return new Promise((resolve) => {
      if (!this.queued) {
        this.queued = { checks: [], resolve: [] };
        setImmediate(() => this.flush());
      }
      this.queued.checks.push(check);
      this.queued.resolve.push(resolve);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
    for (const b of this.waiting.values()) b.resolve.forEach((r) => r(false));
    this.waiting.clear();
  }

  private flush(): void {
    const b = this.queued;
    this.queued = undefined;
    if (!b) return;
    // A turn's checks are split across the workers, so a burst uses every thread.
    const n = this.workers.length;
    const size = Math.ceil(b.checks.length / n);
    for (let k = 0; k < b.checks.length; k += size) {
      const id = this.nextId++;
      const part: Batch = {
        checks: b.checks.slice(k, k + size),
        resolve: b.resolve.slice(k, k + size),
      };
      this.waiting.set(id, part);
      const w = this.workers[this.turn++ % n]!;
      w.postMessage({
        id,
        checks: part.checks.map((c) => ({ data: c.data, sig: c.sig, key: c.key })),
      });
    }
  }
}
