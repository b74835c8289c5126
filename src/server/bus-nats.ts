/**
 * The event bus over NATS (SPEC §11): several server instances sharing one database each run a
 * `NatsBus`, and a message stored by one is pushed by every instance whose connections
 * subscribe to its channel.
 *
 * - An instance delivers its own events to its own subscribers synchronously, exactly as
 *   `LocalBus` does, so one instance behaves the same with or without NATS; it also publishes
 *   them, JSON-encoded in an envelope naming the instance. What comes back with its own id
 *   (an echo, or a copy replayed by anyone) is ignored: nothing is delivered twice.
 * - Subjects are `hchat.<namespace>.<kind>[.<channel or device>]` (`subjectOf`), so that a later
 *   step can subscribe by interest; today each instance subscribes to `hchat.<namespace>.>`.
 *   The namespace lets several deployments, or parallel tests, share one NATS.
 * - Whatever arrives is input: bigger than the limit, not JSON, not a `BusEvent`
 *   (bus-events.ts) or on a subject that is not its own — dropped, counted and logged, never
 *   delivered and never a crash.
 * - NATS is best effort: an event too big for NATS's `max_payload`, or published while the link
 *   is down, reaches this instance's subscribers only (counted as dropped). The store already has
 *   what it says; `onReconnect` handlers are how an instance catches up from it.
 */
import { randomBytes } from 'node:crypto';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { z } from 'zod';
import { BusEvent } from './bus-events.js';
import type { BusHandler, EventBus } from './bus.js';
import type { LogValue } from '../shared/connlog.js';
import { BUS_LIMITS } from '../shared/limits.js';
import { parseNatsUrl, type NatsTarget } from './nats-url.js';

/** Version of the envelope around each event on NATS; another version is dropped as foreign. */
export const BUS_WIRE_VERSION = 1;

const InstanceId = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, 'expected an instance id');
/** What travels on a subject: the event and the instance that published it. */
export const BusEnvelope = z.object({
  v: z.literal(BUS_WIRE_VERSION),
  from: InstanceId,
  event: BusEvent,
});
export type BusEnvelope = z.infer<typeof BusEnvelope>;

/** Namespaces are one subject token. */
const NAMESPACE = /^[A-Za-z0-9_-]{1,64}$/;

/** Why an event was not delivered (inbound) or not sent (outbound). */
export type BusDropReason =
  /** Not JSON, not UTF-8, or not a BusEvent of this version. */
  | 'malformed'
  /** A valid event on a subject that is not its own. */
  | 'foreign'
  /** Bigger than the limit, or than NATS's max_payload. */
  | 'oversize'
  /** Published while the link to NATS was down, or NATS refused it. */
  | 'unsent'
  /** A subscriber threw on an event from another instance. */
  | 'handler';

/** What the bus has done since it started. */
export interface NatsBusCounts {
  published: number;
  received: number;
  reconnects: number;
  dropped: Record<BusDropReason, number>;
}

/** Settings of a NatsBus; every one has a default (shared/limits.ts BUS_LIMITS). */
export interface NatsBusOptions {
  /** Subject namespace shared by the instances of one deployment (default "hchat"). */
  namespace?: string;
  /** This instance's id (default: 96 random bits). */
  instanceId?: string;
  maxEventBytes?: number;
  reconnectWaitMs?: number;
  reconnectJitterMs?: number;
  pingIntervalMs?: number;
  maxPingsOut?: number;
  /** Time to reach NATS at the start before `connect` fails (5 s). */
  connectTimeoutMs?: number;
  drainMs?: number;
  /** Told of link changes (`bus_down`, `bus_up`) and dropped events (`bus_drop`, throttled). */
  log?: (ev: string, fields: Record<string, LogValue>) => void;
}

/** The subject an event travels on, under `hchat.<namespace>`. */
export function subjectOf(namespace: string, e: BusEvent): string {
  const p = `hchat.${namespace}`;
  switch (e.kind) {
    case 'message':
      return `${p}.msg.${e.channelId}`;
    case 'typing':
      return `${p}.typing.${e.channelId}`;
    case 'member_joined':
      return `${p}.member_joined.${e.channelId}`;
    case 'member_left':
      return `${p}.member_left.${e.channelId}`;
    case 'channel_changed':
      return `${p}.channel.${e.channelId}`;
    case 'dm':
      return `${p}.dm.${e.deviceId}`;
    case 'dm_blocks':
      return `${p}.dm_blocks`;
    case 'tracker':
      return `${p}.tracker`;
    case 'session_revoked':
      return `${p}.session`;
    case 'instance_up':
    case 'instance_alive':
    case 'tracker_sync':
      return `${p}.instance`;
    case 'avatar':
      return `${p}.avatar`;
    case 'token_revoked':
      return `${p}.token`;
    case 'nat_signal':
      return `${p}.nat`;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

/** An EventBus shared through a NATS server or cluster. */
export class NatsBus implements EventBus {
  /** This instance's id, carried by everything it publishes. */
  readonly instanceId: string;
  readonly namespace: string;
  /** The servers, without credentials. */
  readonly target: string;
  readonly counts: NatsBusCounts = {
    published: 0,
    received: 0,
    reconnects: 0,
    dropped: { malformed: 0, foreign: 0, oversize: 0, unsent: 0, handler: 0 },
  };
  private readonly handlers = new Set<BusHandler>();
  private readonly reconnectHandlers = new Set<() => void>();
  private readonly lastDropLog = new Map<BusDropReason, number>();
  private readonly maxEventBytes: number;
  private readonly drainMs: number;
  private readonly log: NonNullable<NatsBusOptions['log']>;
  /** NATS says the link is up: events are sent. */
  private linked = true;
  /** And NATS has confirmed this instance's subscription since (a flush after it). */
  private subscribed = true;
  /** Counts link changes, so that a flush that returns after the next outage changes nothing. */
  private generation = 0;
  private closing = false;
  private readonly watching: Promise<void>;

  private constructor(
    private readonly nc: NatsConnection,
    target: NatsTarget,
    namespace: string,
    instanceId: string,
    opts: NatsBusOptions,
  ) {
    this.target = target.display;
    this.namespace = namespace;
    this.instanceId = instanceId;
    this.maxEventBytes = opts.maxEventBytes ?? BUS_LIMITS.maxEventBytes;
    this.drainMs = opts.drainMs ?? BUS_LIMITS.drainMs;
    this.log = opts.log ?? (() => {});
    nc.subscribe(`hchat.${namespace}.>`, {
      callback: (err, msg) => {
        if (!err) return this.receive(msg.subject, msg.data);
        // A refused subscription (a permission violation) hears nothing: not ready until the
        // link comes back and subscribes again.
        this.subscribed = false;
        this.log('bus_subscription_error', { error: err.message });
      },
    });
    this.watching = this.watch();
  }

  /**
   * Connects to NATS at `url` (parseNatsUrl) and subscribes. Fails if no server of the list
   * answers within `connectTimeoutMs`; once connected, the bus reconnects for ever after an
   * outage.
   */
  static async connect(url: string, opts: NatsBusOptions = {}): Promise<NatsBus> {
    const target = parseNatsUrl(url);
    const namespace = opts.namespace ?? 'hchat';
    if (!NAMESPACE.test(namespace))
      throw new Error('bus namespace: 1-64 characters of A-Z a-z 0-9 _ -');
    const instanceId = opts.instanceId ?? randomBytes(12).toString('base64url');
    InstanceId.parse(instanceId);
    const jitter = opts.reconnectJitterMs ?? BUS_LIMITS.reconnectJitterMs;
    let nc: NatsConnection;
    try {
      nc = await connect({
        servers: target.servers,
        tls: target.tls ? {} : undefined,
        user: target.user,
        pass: target.pass,
        token: target.token,
        name: `hchat-${namespace}-${instanceId}`,
        // Our own events were delivered here already; NATS need not send them back.
        noEcho: true,
        maxReconnectAttempts: -1,
        reconnectTimeWait: opts.reconnectWaitMs ?? BUS_LIMITS.reconnectWaitMs,
        reconnectJitter: jitter,
        reconnectJitterTLS: jitter,
        pingInterval: opts.pingIntervalMs ?? BUS_LIMITS.pingIntervalMs,
        maxPingOut: opts.maxPingsOut ?? BUS_LIMITS.maxPingsOut,
        timeout: opts.connectTimeoutMs ?? 5000,
      });
    } catch (err) {
      throw new Error(`cannot reach NATS at ${target.display}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const bus = new NatsBus(nc, target, namespace, instanceId, opts);
    // Ready means subscribed: NATS answered a ping sent after the subscription.
    try {
      await nc.flush();
    } catch (err) {
      await bus.close();
      throw new Error(`cannot reach NATS at ${target.display}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    return bus;
  }

  publish(event: BusEvent): void {
    this.send(event);
    for (const h of this.handlers) h(event);
  }

  subscribe(handler: BusHandler): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  /** Connected to NATS now, with this instance's subscription in place. */
  ready(): boolean {
    return this.linked && this.subscribed && !this.closing;
  }

  onReconnect(handler: () => void): () => void {
    this.reconnectHandlers.add(handler);
    return () => this.reconnectHandlers.delete(handler);
  }

  /** Sends what was published and stops; after `drainMs` it just closes. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.nc.drain().catch(() => {}),
      new Promise<void>((r) => (timer = setTimeout(r, this.drainMs))),
    ]);
    clearTimeout(timer);
    if (!this.nc.isClosed()) await this.nc.close().catch(() => {});
    await this.watching;
    this.handlers.clear();
    this.reconnectHandlers.clear();
  }

  private send(event: BusEvent): void {
    if (this.closing) return;
    if (!this.linked) return this.drop('unsent', { kind: event.kind });
    const bytes = encoder.encode(
      JSON.stringify({ v: BUS_WIRE_VERSION, from: this.instanceId, event } satisfies BusEnvelope),
    );
    const max = Math.min(this.maxEventBytes, this.nc.info?.max_payload ?? Infinity);
    if (bytes.length > max)
      return this.drop('oversize', { kind: event.kind, bytes: bytes.length, max });
    try {
      this.nc.publish(subjectOf(this.namespace, event), bytes);
      this.counts.published++;
    } catch (err) {
      // The link went down, or a server with a lower max_payload took over, since the checks.
      this.drop('unsent', { kind: event.kind, error: (err as Error).message });
    }
  }

  private receive(subject: string, data: Uint8Array): void {
    this.counts.received++;
    if (data.length > this.maxEventBytes)
      return this.drop('oversize', { subject, bytes: data.length });
    let wire: unknown;
    try {
      wire = JSON.parse(utf8.decode(data));
    } catch {
      return this.drop('malformed', { subject, why: 'not JSON' });
    }
    const r = BusEnvelope.safeParse(wire);
    if (!r.success) {
      const issue = r.error.issues[0];
      return this.drop('malformed', {
        subject,
        why: `${issue?.path.join('.') ?? ''}: ${issue?.message ?? ''}`,
      });
    }
    if (r.data.from === this.instanceId) return;
    const event = r.data.event;
    if (subjectOf(this.namespace, event) !== subject)
      return this.drop('foreign', { subject, kind: event.kind, from: r.data.from });
    for (const h of this.handlers) {
      try {
        h(event, r.data.from);
      } catch (err) {
        // One bad event must not stop the others, nor end the instance (its connections).
        this.drop('handler', { kind: event.kind, error: String((err as Error)?.stack ?? err) });
      }
    }
  }

  /** Follows the link's state: down on a disconnect, up (and handlers run) on a reconnect. */
  private async watch(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === 'disconnect') {
        this.generation++;
        this.linked = this.subscribed = false;
        if (!this.closing) this.log('bus_down', { server: s.server });
      } else if (s.type === 'reconnect') {
        const generation = ++this.generation;
        this.linked = true;
        this.counts.reconnects++;
        this.log('bus_up', { server: s.server });
        // The client subscribed again before this status; once NATS has answered a ping sent
        // after that, events published anywhere reach this instance: then catch up.
        this.nc.flush().then(
          () => {
            if (generation === this.generation && !this.closing) this.resubscribed();
          },
          () => {},
        );
      } else if (s.type === 'close') {
        this.linked = this.subscribed = false;
        break;
      }
    }
  }

  private resubscribed(): void {
    this.subscribed = true;
    for (const h of this.reconnectHandlers) {
      try {
        h();
      } catch (err) {
        this.log('bus_reconnect_handler', { error: String((err as Error)?.stack ?? err) });
      }
    }
  }

  private drop(reason: BusDropReason, fields: Record<string, LogValue>): void {
    const n = ++this.counts.dropped[reason];
    const now = Date.now();
    const last = this.lastDropLog.get(reason);
    if (last !== undefined && now - last < BUS_LIMITS.dropLogIntervalMs) return;
    this.lastDropLog.set(reason, now);
    this.log('bus_drop', { reason, ...fields, dropped: n });
  }
}
