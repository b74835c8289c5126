/**
 * Delivery of what this peer's user writes (SPEC §5): the outbox drain (pending messages to the
 * channel's host when reachable, else to the server, each acknowledged once) and, for channels
 * hosted here, the upload of every message the server lacks. Waiters let a post answer
 * `delivered` when an acknowledgement comes in time.
 */
import { HchatError, type ErrorCode } from '../protocol/errors.js';
import { toStored, type LocalMessage } from '../store/peer-store.js';
import type { NodeContext } from './context.js';
import { DEFAULT_MAX_FRAME } from '../protocol/frame.js';
import { fitPage, pageBudget } from '../protocol/page-budget.js';
import { SETTLE_MS } from './sources.js';

const DRAIN_BATCH = 256;
const UPLOAD_BATCH = 500;

/** Errors after which an outbox message is retried later; any other refusal is final. */
export const TRANSIENT: ReadonlySet<ErrorCode> = new Set([
  'E_OFFLINE',
  'E_TIMEOUT',
  'E_CONNECTION_CLOSED',
  'E_SHUTTING_DOWN',
  'E_INTERNAL',
  'E_AUTH_REQUIRED',
  'E_SESSION_INVALID',
  'E_SLOW_CONSUMER',
  'E_HEARTBEAT_TIMEOUT',
  'E_RATE_LIMITED',
  'E_STORAGE_FULL',
]);

/** How long the outbox waits after E_RATE_LIMITED or E_STORAGE_FULL without a hint. */
const RETRY_MS = 1000;

/** A replica's answer to one outbox message: its seq, or its error; `name` is that replica's. */
type Sent =
  { seq: number; via: 'server' | 'host'; name: string } | { name: string; error: HchatError };

/** The outbox and the host's upload of one node. */
export class Delivery {
  private draining = false;
  /** A drain was asked for while one ran: the running one takes another round. */
  private drainAgain = false;
  /** Outbox messages sent and not answered yet. */
  private readonly inFlight = new Set<string>();
  private kickQueued = false;
  private uploading = false;
  /** Hosted messages the server refused for good: not offered again in this run. */
  private readonly uploadRefused = new Set<string>();
  private readonly waiters = new Map<string, Array<() => void>>();
  private readonly timers: Record<'drain' | 'upload', NodeJS.Timeout | undefined> = {
    drain: undefined,
    upload: undefined,
  };

  constructor(private readonly ctx: NodeContext) {}

  /**
   * Runs the outbox drain or the host's upload again after `ms` (a replica asked us to slow
   * down); one timer each, so repeated requests to wait do not pile up.
   */
  private later(task: 'drain' | 'upload', ms: number): void {
    if (this.timers[task]) return;
    const t = setTimeout(() => {
      this.timers[task] = undefined;
      if (!this.ctx.closed) this.ctx.background(task === 'drain' ? this.drain() : this.upload());
    }, ms);
    t.unref();
    this.timers[task] = t;
  }

  /** Wakes every waiter (the node is closing). */
  releaseAll(): void {
    clearTimeout(this.timers.drain);
    clearTimeout(this.timers.upload);
    for (const ws of this.waiters.values()) ws.forEach((w) => w());
    this.waiters.clear();
  }

  /**
   * Sends pending outbox messages, oldest first, pipelined, each to its channel's host when
   * reachable (waiting a little for a link being made), else to the server; each is
   * acknowledged once (resends are idempotent by id). Each message's answer is taken on its own
   * as it comes: a host that never answers (hostile, or hung while its link still answers pings)
   * holds its own channel's messages until the request times out, never another channel's.
   */
  async drain(): Promise<void> {
    const s = this.ctx.session;
    if (!s || s.role !== 'user') return;
    if (this.draining) {
      this.drainAgain = true; // the running drain takes another look when its round is out
      return;
    }
    this.draining = true;
    try {
      do {
        this.drainAgain = false;
        if (this.ctx.closed || this.switched(s)) return;
        const room = DRAIN_BATCH - this.inFlight.size;
        if (room <= 0) return; // each answer that comes starts another round
        const limit = DRAIN_BATCH + this.inFlight.size;
        const pending = this.ctx.store.pending(s.username, limit);
        // A change to a message not delivered yet (on its way, or waiting in this round) waits
        // for it: sent together, pipelined, it could reach the replica before that message.
        const ids = new Set(pending.map((m) => m.id));
        // A message with files waits until the server holds them (its readers fetch them).
        const waiting = pending.filter((m) => !this.ctx.filesBackedUp(m));
        for (const m of waiting) ids.add(m.id);
        const batch = pending
          .filter(
            (m) =>
              !this.inFlight.has(m.id) &&
              !waiting.includes(m) &&
              (m.target === undefined || !ids.has(m.target)),
          )
          .slice(0, room);
        if (batch.length === 0) continue;
        // Each goes to its channel's host when the host is reachable: a peer back online (or
        // reconnected) has just heard the tracker list and is still opening its host links, so
        // a link being made (and the list, while the server sends it) is waited for, bounded,
        // before the server is chosen. A host not listed, or not answering, costs no wait.
        await this.ctx.sources.settleAll(
          batch.map((m) => m.channelId),
          SETTLE_MS,
          this.ctx.authed,
        );
        if (this.ctx.closed) return;
        // Another account logged in meanwhile: this one's messages wait for its next session
        // (sent now, they would go out under the new account's session and be refused).
        if (this.switched(s)) return;
        for (const m of batch) {
          if (this.inFlight.has(m.id)) continue; // sent by a round that ran while this one waited
          this.inFlight.add(m.id);
          this.ctx.background(
            this.send(m).then(
              (sent) => {
                this.inFlight.delete(m.id);
                this.settle(m, sent, s);
              },
              (err: unknown) => {
                this.inFlight.delete(m.id);
                // Switched while it was on its way: not a replica's answer, nor a bug of ours.
                if (!this.switched(s)) throw err;
              },
            ),
          );
        }
        // A full round may have left more behind it.
        if (pending.length === limit) this.drainAgain = true;
      } while (this.drainAgain);
    } finally {
      this.draining = false;
      // The account that logged in meanwhile found this drain busy: its own starts now.
      if (this.switched(s)) this.later('drain', 0);
    }
  }

  /**
   * Another round once answers came: one for the answers of a turn (pipelined answers come
   * together), and while many are on their way only once half of them are answered.
   */
  private kick(): void {
    if (this.kickQueued || this.inFlight.size > DRAIN_BATCH / 2) return;
    this.kickQueued = true;
    setImmediate(() => {
      this.kickQueued = false;
      if (!this.ctx.closed) this.ctx.background(this.drain());
    });
  }

  /** One outbox message's answer: delivered, to be tried again, or refused for good. */
  private settle(m: LocalMessage, sent: Sent, s: { sessionId: string }): void {
    if (this.ctx.closed) return;
    if ('seq' in sent) {
      const { seq, via, name } = sent;
      this.ctx.store.markDelivered(m.id, seq, via);
      this.ctx.log.write('post', { to: name, channel: m.channelId, msg: m.id, seq });
      this.ctx.announce([m]);
      this.resolveDelivery(m.id);
      // What waited for it (a change naming it) may go now.
      this.kick();
      return;
    }
    // Switched while it was on its way: a refusal may be the new session's, not final.
    if (this.switched(s)) return;
    const e = sent.error;
    if (TRANSIENT.has(e.code)) {
      // Not now. A link coming up or a new message starts the drain again; a replica that asked
      // us to wait, or did not answer in time while its link stays up, is asked again later.
      if (e.code === 'E_RATE_LIMITED' || e.code === 'E_STORAGE_FULL' || e.code === 'E_TIMEOUT')
        this.later('drain', e.retryAfterMs ?? RETRY_MS);
      return;
    }
    if (this.targetOnItsWay(m, e)) {
      // The replica lacks the message this change names, yet a replica holds it (the host has
      // not uploaded it to the server yet): it will get there; try again.
      this.later('drain', RETRY_MS);
      return;
    }
    this.ctx.store.markFailed(m.id, `${e.code}: ${e.message}`);
    this.ctx.log.write('refused', {
      from: sent.name,
      channel: m.channelId,
      msg: m.id,
      code: e.code,
    });
    this.ctx.announce([m]);
    // Said for a message too: its channel may be gone from the user's list (removed, or
    // deleted, while it waited here), where its `failed` state shows nowhere.
    this.ctx.events.emit('refused', {
      channelId: m.channelId,
      id: m.id,
      from: 'outbox',
      code: e.code,
      reason: e.message,
    });
    this.resolveDelivery(m.id);
  }

  /** True when the session `s` is no longer this peer's (logged out, or another logged in). */
  private switched(s: { sessionId: string }): boolean {
    return this.ctx.session?.sessionId !== s.sessionId;
  }

  /** E_NOT_FOUND for a change whose message a replica acknowledged: not final. */
  private targetOnItsWay(m: LocalMessage, e: HchatError): boolean {
    if (e.code !== 'E_NOT_FOUND' || m.target === undefined) return false;
    const target = this.ctx.store.getMessage(m.target);
    return target !== undefined && target.state === 'delivered';
  }

  /**
   * Sends `m` to its channel's host, or else to the server: what that replica answered, named as
   * the connection log names it (`server`, `host:…`; `local` for what this peer refuses itself).
   */
  private async send(m: LocalMessage): Promise<Sent> {
    const { author: _author, ...message } = toStored(m);
    // Deleted before it was delivered: only its tombstone goes, with the delete that erased it.
    const del = m.digest === undefined ? undefined : this.ctx.store.eraserOf(m);
    if (m.digest !== undefined && !del) {
      const error = new HchatError(
        'E_BAD_REQUEST',
        'a tombstone without the delete that erased it',
      );
      return { name: 'local', error };
    }
    const params = del ? { message, deletedBy: toStored(del) } : { message };
    const host = this.ctx.sources.linkFor(m.channelId);
    const name = host ? host.name : 'server';
    try {
      if (host) return { seq: (await host.request('post', params)).seq, via: 'host', name };
      if (!this.ctx.authed) throw new HchatError('E_OFFLINE');
      return { seq: (await this.ctx.link.request('post', params)).seq, via: 'server', name };
    } catch (err) {
      if (err instanceof HchatError) return { name, error: err };
      throw err;
    }
  }

  /** Forwards every message of hosted channels the server lacks, once each, in host order. */
  async upload(): Promise<void> {
    const s = this.ctx.session;
    if (this.uploading || !this.ctx.authed || !s || s.role !== 'user') return;
    this.uploading = true;
    try {
      while (this.ctx.authed && !this.ctx.closed) {
        const candidates = this.ctx.store
          .toUpload(UPLOAD_BATCH + this.uploadRefused.size)
          .filter((m) => !this.uploadRefused.has(m.id))
          .slice(0, UPLOAD_BATCH);
        if (candidates.length === 0) break;
        // At most what the server's frame limit takes (long messages make a short batch).
        const max = this.ctx.link.server?.maxFrame ?? DEFAULT_MAX_FRAME;
        const batch = fitPage(candidates, pageBudget(max), 'start').items;
        const { results } = await this.ctx.link.request('forward', {
          messages: batch.map(toStored),
        });
        if (this.ctx.closed) return;
        // Another account logged in while the batch was on its way: a refusal may be its.
        const switched = this.switched(s);
        const byId = new Map(batch.map((m) => [m.id, m]));
        let retryIn: number | undefined;
        this.ctx.store.setServerSeqs(results.flatMap((r) => ('seq' in r ? [r] : [])));
        // A deleted channel's last item is on the server: nothing of it stays here.
        for (const r of results) {
          const m = byId.get(r.id);
          if ('seq' in r && m?.kind === 'channel' && m.change?.deleted)
            this.ctx.store.purgeDeleted(m.channelId);
        }
        for (const r of results) {
          const m = byId.get(r.id);
          if (!m) continue;
          if ('seq' in r) {
            this.ctx.log.write('forward', {
              to: 'server',
              channel: m.channelId,
              msg: m.id,
              seq: r.seq,
            });
            if (m.state === 'pending') this.ctx.announce([m]);
          } else if (TRANSIENT.has(r.error.code as ErrorCode)) {
            // Not now (rate limit, full disk): the same batch goes again later.
            retryIn = r.error.retryAfterMs ?? RETRY_MS;
          } else if (switched) {
            continue; // kept for the next upload, whoever is logged in then
          } else {
            this.uploadRefused.add(r.id);
            this.ctx.log.write('refused', {
              from: 'server',
              channel: m.channelId,
              msg: m.id,
              code: r.error.code,
            });
            if (m.state === 'pending')
              this.ctx.store.markFailed(m.id, `${r.error.code}: ${r.error.message}`);
          }
          this.resolveDelivery(r.id);
        }
        if (switched) break;
        if (retryIn !== undefined) {
          this.later('upload', retryIn);
          break;
        }
      }
    } finally {
      this.uploading = false;
    }
  }

  resolveDelivery(id: string): void {
    const ws = this.waiters.get(id);
    if (!ws) return;
    this.waiters.delete(id);
    ws.forEach((w) => w());
  }

  waitDelivery(id: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const list = this.waiters.get(id) ?? [];
      list.push(done);
      this.waiters.set(id, list);
      function done() {
        clearTimeout(timer);
        resolve();
      }
    });
  }
}
