/**
 * The server's password hashing, scheduled: scrypt costs ~16 MiB and tens of milliseconds of a
 * thread-pool thread, so at most `concurrency` run at once, logins go before registrations (a
 * registration flood never holds a login), and each class has a bounded queue: past it the
 * caller is told the server is busy and how long to wait, instead of waiting for ever.
 */
import { HchatError } from '../protocol/errors.js';
import { SCRYPT_LIMITS, withDefaults } from '../shared/limits.js';

/** Which queue a job waits in; `login` is served first. */
export type ScryptPriority = 'login' | 'register';

/** Settings of a ScryptQueue (SCRYPT_LIMITS by default). */
export type ScryptQueueLimits = { -readonly [K in keyof typeof SCRYPT_LIMITS]: number };

interface Job {
  run: () => Promise<unknown>;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/** A two-level priority queue in front of scrypt. */
export class ScryptQueue {
  private readonly limits: ScryptQueueLimits;
  private readonly queues: Record<ScryptPriority, Job[]> = { login: [], register: [] };
  private running = 0;
  /** Moving average of one job's duration, for the wait announced when busy. */
  private avgMs = 60;

  constructor(limits: Partial<ScryptQueueLimits> = {}) {
    this.limits = withDefaults<ScryptQueueLimits>(SCRYPT_LIMITS, limits);
  }

  /** Runs `job` when its turn comes; E_RATE_LIMITED at once when its queue is full. */
  run<T>(priority: ScryptPriority, job: () => Promise<T>): Promise<T> {
    const q = this.queues[priority];
    const max =
      priority === 'login' ? this.limits.maxQueuedLogins : this.limits.maxQueuedRegistrations;
    if (q.length >= max) {
      const ahead = this.queues.login.length + (priority === 'register' ? q.length : 0);
      const waitMs = Math.max(
        1000,
        ((ahead + this.running) * this.avgMs) / this.limits.concurrency,
      );
      throw new HchatError(
        'E_RATE_LIMITED',
        `server busy; retry in ${Math.ceil(waitMs / 1000)} s`,
        { retryAfterMs: waitMs },
      );
    }
    return new Promise<T>((resolve, reject) => {
      q.push({ run: job, resolve: resolve as (v: unknown) => void, reject });
      this.pump();
    });
  }

  /** Jobs waiting, by class (tests, health). */
  get queued(): Record<ScryptPriority, number> {
    return { login: this.queues.login.length, register: this.queues.register.length };
  }

  private pump(): void {
    while (this.running < this.limits.concurrency) {
      const job = this.queues.login.shift() ?? this.queues.register.shift();
      if (!job) return;
      this.running++;
      const t0 = performance.now();
      job
        .run()
        .then(job.resolve, job.reject)
        .finally(() => {
          this.avgMs = this.avgMs * 0.8 + (performance.now() - t0) * 0.2;
          this.running--;
          this.pump();
        });
    }
  }
}
