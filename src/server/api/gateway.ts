/**
 * The REST API's real-time gateway (issue 17; docs/REST.md "Gateway"): a WebSocket at
 * `/api/v1/gateway` that streams what the token's account is pushed on the wire (new items of
 * its channels, typing), the presence of the users it may see (`peer_joined`, `peer_left`, by
 * the tracker's visibility rule) and member changes of its channels, each event numbered in its
 * gateway session, with resume after a disconnect. A gateway session is a connection of the server like a peer's (a `Conn` on a
 * `GatewayLink`), subscribed to the account's channels within the token's scope; it keeps
 * receiving while its socket is away (up to `resumeMs`), so a client that resumes with the last
 * seq it saw gets every event after it, once. Bounded: at most `bufferEvents` kept for resume,
 * each event encoded once and shared by the sessions that keep it, within a budget per account
 * and per instance (resume-buffers.ts); a socket that does not read (more than
 * `maxBufferedBytes` unsent) is closed, and resumes.
 */
import crypto from 'node:crypto';
import type { WebSocket } from 'ws';
import { HchatError } from '../../protocol/errors.js';
import { FrameDecoder } from '../../protocol/frame.js';
import type { OpName } from '../../protocol/server-link.js';
import type { WireError } from '../../protocol/rpc.js';
import type { z } from 'zod';
import type { ApiTokenRecord, ApiTokenStore } from '../../store/api-token-store.js';
import { Conn, type ConnLink } from '../conn.js';
import { scopedEvent } from './token-scope.js';
import type { FrameDispatch } from '../frame-dispatch.js';
import type { Channel, TrackerEntry } from '../../protocol/common.js';
import type { BusEvent } from '../bus.js';
import { eventFor, isOwn, type EntryChange, type Memberships, type Viewer } from '../tracker.js';
import { HeartbeatSweep } from '../../shared/heartbeat-sweep.js';
import { TELL_PAIRS_MAX } from '../presence.js';
import { API_LIMITS } from '../../shared/limits.js';
import {
  ResumeBudget,
  sharedEvent,
  eventText,
  type ResumeBuffer,
  type SharedEvent,
} from './resume-buffers.js';

/** How long a closing socket may take to answer the close frame before it is cut. */
const CLOSE_GRACE_MS = 1000;

export const GATEWAY_LIMITS = {
  /** Events kept per session for a resume. */
  bufferEvents: 1000,
  /** How long a session outlives its socket, waiting for a resume. */
  resumeMs: 60_000,
  /** Unsent bytes on a socket before it is closed as a slow reader (4008; it may resume). */
  maxBufferedBytes: 1024 * 1024,
  /** Server pings; a socket that answered none since the last one is closed. */
  heartbeatMs: 15_000,
  /** How often each session re-reads its token (revocation on another instance) and channels. */
  refreshMs: 5_000,
  /** Sessions per token at once. */
  sessionsPerToken: 4,
} as const;

type Wire = z.infer<typeof WireError>;
type Frame = Record<string, unknown>;

/** The link of a gateway session: pushes in, events out; answers to its own requests. */
class GatewayLink implements ConnLink {
  peerMaxFrame = 1024 * 1024;
  private open = true;
  private readonly waiting = new Map<number, (r: { body?: unknown; error?: Wire }) => void>();

  constructor(
    readonly remote: { ip: string; port: number },
    private readonly onEvent: (ev: string, body: unknown) => void,
    /** Decodes a frame encoded once for many links, once for all of them. */
    private readonly decode: (frame: Buffer) => readonly Frame[],
  ) {}

  get isOpen(): boolean {
    return this.open;
  }
  /** Resolves with the answer to request `id`. */
  expect(id: number): Promise<{ body?: unknown; error?: Wire }> {
    // Closed: nothing will answer (a request made after the session ended).
    if (!this.open) return Promise.resolve({ error: new HchatError('E_SHUTTING_DOWN').toWire() });
    return new Promise((resolve) => this.waiting.set(id, resolve));
  }
  send(obj: object): void {
    const f = obj as { t?: string; id?: number; ev?: string; body?: unknown; error?: Wire };
    if (f.t === 'res') {
      this.waiting.get(f.id!)?.({ body: f.body, error: f.error });
      this.waiting.delete(f.id!);
    } else if (f.t === 'ev') this.onEvent(f.ev!, f.body);
  }
  answer(id: number, body: unknown): void {
    this.send({ t: 'res', id, body });
  }
  /** Pushes encoded once for many connections: one frame, or several back to back. */
  sendEncoded(frame: Buffer): void {
    if (!this.open) return;
    for (const f of this.decode(frame)) this.send(f);
  }
  setMaxFrame(): void {}
  hold(): void {}
  release(): void {}
  fail(err: HchatError): void {
    this.open = false;
    for (const w of this.waiting.values()) w({ error: err.toWire() });
    this.waiting.clear();
  }
  close(reason?: HchatError): void {
    this.fail(reason ?? new HchatError('E_SHUTTING_DOWN'));
  }
}

/** What the gateway needs from its server. */
export interface GatewayDeps {
  frames: FrameDispatch;
  tokens: ApiTokenStore;
  channelsOf(username: string): Promise<Channel[]>;
  /** Who belongs where, for the presence a session may see (the server's Presence). */
  memberships: Memberships & {
    without(username: string, channelId: string): Memberships;
    plus(users: ReadonlySet<string>, channelId: string): Memberships;
  };
  /** The tracker's entries of a user. */
  entriesOf(username: string): readonly TrackerEntry[];
  /** Loads what a session of `account` needs here (its channels and their members). */
  attach(account: string): Promise<unknown>;
  /** Forgets what a session's connection left behind (subscriptions, views). */
  finished(conn: Conn): void;
  /** Bytes an account's sessions, and this instance's, keep for resume (API_LIMITS). */
  accountBytes?: number;
  instanceBytes?: number;
}

let lastGatewayConn = 1_000_000_000;

/** One gateway session: its connection, its numbered events, and its socket while attached. */
class GatewaySession {
  readonly id = `gw_${crypto.randomBytes(16).toString('base64url')}`;
  /** Its numbered events kept for a resume (references to events encoded once). */
  readonly buffer: ResumeBuffer;
  socket: WebSocket | undefined;
  readonly conn: Conn<GatewayLink>;
  /** The channels it is subscribed to (the account's, within the token's). */
  channels = new Set<string>();
  /**
   * Channels its account just left or was removed from: nothing more of them is told, also what
   * another instance pushes before this session is subscribed anew (PROTOCOL.md §2.2).
   */
  readonly left = new Set<string>();
  /** Its account as the tracker's visibility rule sees a viewer: a user who views no channel. */
  readonly viewer: Viewer;
  private nextReq = 1;
  expiry: NodeJS.Timeout | undefined;

  constructor(
    readonly token: ApiTokenRecord,
    remote: { ip: string; port: number },
    private readonly shared: SharedEvents,
    /** Ends the session when the budget drops its events (it can no longer resume). */
    drop: (s: GatewaySession) => void,
  ) {
    this.buffer = shared.budget.open(token.account, () => drop(this));
    const link = new GatewayLink(
      remote,
      (ev, body) => this.event(ev, body),
      (frame) => shared.decode(frame),
    );
    this.conn = new Conn(++lastGatewayConn, link);
    this.conn.helloDone = true;
    this.conn.session = { sessionId: this.id, username: token.account, role: 'user' };
    this.viewer = { username: token.account, role: 'user', views: new Set() };
  }

  /** Runs wire operation `op` on this session's own connection. */
  async run(frames: FrameDispatch, op: OpName, body: unknown): Promise<unknown> {
    const id = this.nextReq++;
    const answered = this.conn.fs.expect(id);
    frames.onFrame(this.conn, { t: 'req', id, op, body });
    const r = await answered;
    if (r.error) throw HchatError.fromWire(r.error);
    return r.body;
  }

  event(type: string, body: unknown): void {
    if (this.left.size > 0 && type !== 'member_left' && type !== 'member_joined') {
      const ch = channelOf(body);
      if (ch !== undefined && this.left.has(ch)) return;
    }
    // A token of some channels is told no other channel, also inside a tracker entry: that
    // event is its own; any other is encoded once for every session handed the same body.
    const data = scopedEvent(body, this.token.channels);
    const e = data === body ? this.shared.encode(type, body) : sharedEvent(type, data);
    const seq = this.shared.budget.push(this.buffer, e);
    const s = this.socket;
    if (!s || s.readyState !== s.OPEN) return;
    if (s.bufferedAmount > GATEWAY_LIMITS.maxBufferedBytes) {
      // A reader this far behind is cut; it resumes from the last seq it read.
      s.close(4008, 'slow consumer: resume from your last seq');
      return;
    }
    s.send(eventText(seq, e));
  }
}

/**
 * What the sessions of an instance share: frames pushed to many of them decoded once, events
 * encoded once per body (every session handed the same body object holds the same encoding),
 * and the budget of what they keep.
 */
class SharedEvents {
  private readonly decoded = new WeakMap<Buffer, readonly Frame[]>();
  private readonly encoded = new WeakMap<object, { type: string; e: SharedEvent }>();

  constructor(readonly budget: ResumeBudget) {}

  decode(frame: Buffer): readonly Frame[] {
    let frames = this.decoded.get(frame);
    if (!frames) {
      frames = new FrameDecoder(16 * 1024 * 1024).push(frame);
      this.decoded.set(frame, frames);
    }
    return frames;
  }

  encode(type: string, body: unknown): SharedEvent {
    if (typeof body !== 'object' || body === null) return sharedEvent(type, body);
    const known = this.encoded.get(body);
    if (known?.type === type) return known.e;
    const e = sharedEvent(type, body);
    this.encoded.set(body, { type, e });
    return e;
  }
}

/** Every gateway session of this instance. */
export class Gateway {
  private readonly sessions = new Map<string, GatewaySession>();
  /** The instance is going: a new socket is closed 1001 at once, to go to another instance. */
  private closed = false;
  private readonly timer: NodeJS.Timeout;
  private readonly shared: SharedEvents;

  constructor(private readonly d: GatewayDeps) {
    this.shared = new SharedEvents(
      new ResumeBudget({
        bufferEvents: GATEWAY_LIMITS.bufferEvents,
        accountBytes: d.accountBytes ?? API_LIMITS.gatewayAccountBytes,
        instanceBytes: d.instanceBytes ?? API_LIMITS.gatewayInstanceBytes,
      }),
    );
    this.timer = setInterval(() => void this.refreshAll(), GATEWAY_LIMITS.refreshMs);
    this.timer.unref();
  }

  /**
   * A socket authenticated with `token`: resumes session `resume` from `seq` when it can (then
   * `resumed` follows the replayed events), or starts a new one (`invalid_session` first if a
   * resume was asked for and cannot be served, then `ready`).
   */
  async open(
    socket: WebSocket,
    token: ApiTokenRecord,
    remote: { ip: string; port: number },
    resume?: { session: string; seq: number },
  ): Promise<void> {
    if (this.closed) return this.turnAway(socket);
    const old = resume ? this.sessions.get(resume.session) : undefined;
    if (old && old.token.id === token.id && old.buffer.covers(resume!.seq)) {
      this.attach(old, socket);
      for (const text of old.buffer.after(resume!.seq)) socket.send(text);
      socket.send(JSON.stringify({ t: 'resumed', session: old.id, seq: old.buffer.seq }));
      return;
    }
    if (resume) socket.send(JSON.stringify({ t: 'invalid_session' }));
    const mine = [...this.sessions.values()].filter((s) => s.token.id === token.id);
    if (mine.length >= GATEWAY_LIMITS.sessionsPerToken)
      this.end(mine[0]!, 4005, 'too many gateway sessions for this token');
    // A session whose events the budget drops ends: a resume of it is invalid_session.
    const s = new GatewaySession(token, remote, this.shared, (dropped) =>
      this.end(dropped, 1000, 'events dropped'),
    );
    this.sessions.set(s.id, s);
    // The instance may begin to drain (or close) while the store answers: the session is then
    // ended with no socket to tell yet, and the socket hears 1001 here, as a later one does.
    const gone = () => this.closed || this.sessions.get(s.id) !== s;
    let channels: string[];
    try {
      await this.d.attach(token.account);
      channels = await this.subscribe(s);
    } catch (err) {
      if (gone()) return this.turnAway(socket);
      throw err;
    }
    if (gone()) return this.turnAway(socket);
    // Ready first (seq 0), then what arrived while subscribing, then the rest as it comes.
    socket.send(
      JSON.stringify({
        t: 'ready',
        session: s.id,
        seq: 0,
        user: token.account,
        channels,
        heartbeatMs: GATEWAY_LIMITS.heartbeatMs,
      }),
    );
    this.attach(s, socket);
    for (const text of s.buffer.after(0)) socket.send(text);
  }

  /** The account's channels changed (a join or leave through this instance): subscribe anew. */
  refresh(account: string): void {
    for (const s of this.sessions.values())
      if (s.token.account.toLowerCase() === account.toLowerCase()) void this.subscribe(s);
  }

  /**
   * A tracker entry changed: each session hears of it as its account may see it (the rule of
   * `peer_joined` and `peer_left` on the wire), and, for a token of some channels only, when the
   * entry's user is a member of one of them.
   */
  entryChanged(change: EntryChange): void {
    const e = change.after ?? change.before;
    if (!e) return;
    for (const s of this.sessions.values()) {
      if (isOwn(s.viewer, e)) continue;
      const scope = s.token.channels;
      const name = e.username.toLowerCase();
      if (scope && !scope.some((id) => this.d.memberships.membersOf(id).has(name))) continue;
      const ev = eventFor(s.viewer, change, this.d.memberships);
      if (ev) s.event(ev.ev, { entry: ev.entry });
    }
  }

  /**
   * A user joined or left a channel (or its owner removed them): the sessions subscribed to it
   * hear of it, and so do the user's own, which then subscribe anew. A join also makes entries
   * visible (the joiner's to the members, the members' to the joiner): `peer_joined` for those.
   */
  memberChanged(e: Extract<BusEvent, { kind: 'member_joined' | 'member_left' }>): void {
    const name = e.username.toLowerCase();
    for (const s of this.sessions.values()) {
      const own = s.token.account.toLowerCase() === name;
      const inScope = s.token.channels === null || s.token.channels.includes(e.channelId);
      if (!inScope || !(own || s.channels.has(e.channelId))) continue;
      s.event(e.kind, { channelId: e.channelId, username: e.username });
      const m = this.d.memberships;
      const before =
        e.kind === 'member_joined'
          ? m.without(name, e.channelId)
          : m.plus(new Set([name]), e.channelId);
      this.visibilityChanged(s, e.channelId, name, own, before);
      if (own && e.kind === 'member_left') {
        // After this turn's pushes (the removal item itself reaches the removed member).
        process.nextTick(() => s.left.add(e.channelId));
      } else if (own) s.left.delete(e.channelId);
      if (own) void this.subscribe(s).catch(() => undefined);
    }
  }

  /**
   * `channelId` was deleted, `was` its members loaded here: each member's sessions hear of the
   * entries they no longer see (`peer_left`), as wire sessions do (presence.ts), within the
   * same bound (TELL_PAIRS_MAX pairs).
   */
  channelDeleted(channelId: string, was: ReadonlySet<string>): void {
    if (was.size * was.size > TELL_PAIRS_MAX) return;
    const m = this.d.memberships;
    const before = m.plus(was, channelId);
    for (const s of this.sessions.values()) {
      const a = s.token.account.toLowerCase();
      if (!was.has(a)) continue;
      if (s.token.channels !== null && !s.token.channels.includes(channelId)) continue;
      for (const b of was) {
        if (b === a) continue;
        for (const entry of this.d.entriesOf(b)) {
          const ev = eventFor(s.viewer, { before: entry, after: entry }, m, before);
          if (ev) s.event(ev.ev, { entry: ev.entry });
        }
      }
    }
  }

  /**
   * What `username`'s join or leave of `channelId` changed in what `s` sees: `peer_joined` for
   * the entries it made visible, `peer_left` (or the entry cut anew) for those it hid. Presence
   * already holds the memberships after the change; `before` is how they were.
   */
  private visibilityChanged(
    s: GatewaySession,
    channelId: string,
    username: string,
    own: boolean,
    before: Memberships,
  ) {
    const m = this.d.memberships;
    const users = own ? [...m.membersOf(channelId)].filter((u) => u !== username) : [username];
    for (const u of users)
      for (const entry of this.d.entriesOf(u)) {
        const ev = eventFor(s.viewer, { before: entry, after: entry }, m, before);
        if (ev) s.event(ev.ev, { entry: ev.entry });
      }
  }

  /** A token was revoked (on any instance): its sessions here end now. */
  revoked(tokenId: string): void {
    for (const s of [...this.sessions.values()])
      if (s.token.id === tokenId) this.end(s, 4004, 'E_TOKEN_INVALID');
  }

  /** The instance is going (a drain begins, or it closes): every session ends with 1001. */
  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    for (const s of [...this.sessions.values()]) {
      const socket = s.socket;
      this.end(s, 1001, 'E_SHUTTING_DOWN');
      // The close frame is sent; a client that never answers it does not hold the process.
      if (socket) setTimeout(() => socket.terminate(), CLOSE_GRACE_MS).unref();
    }
  }

  private attach(s: GatewaySession, socket: WebSocket): void {
    s.socket?.close(4009, 'resumed elsewhere');
    clearTimeout(s.expiry);
    this.shared.budget.attach(s.buffer);
    s.socket = socket;
    let alive = true;
    // Not answered since the last tick: gone (a tick late by this process's own stall first
    // reads what came meanwhile: shared/heartbeat-sweep.ts).
    const ping = new HeartbeatSweep(GATEWAY_LIMITS.heartbeatMs, () => {
      if (!alive) return socket.terminate();
      alive = false;
      socket.ping();
    });
    socket.on('pong', () => (alive = true));
    socket.on('message', (data) => {
      alive = true;
      if (String(data) === '{"t":"ping"}') socket.send('{"t":"pong"}');
    });
    socket.on('close', () => {
      ping.stop();
      if (s.socket !== socket) return;
      s.socket = undefined;
      this.shared.budget.detach(s.buffer);
      s.expiry = setTimeout(() => this.end(s, 1000, 'expired'), GATEWAY_LIMITS.resumeMs);
      s.expiry.unref();
    });
  }

  /** Subscribes the session to its account's channels within its token's; their ids. */
  private async subscribe(s: GatewaySession): Promise<string[]> {
    const t = s.token;
    const ids = (await this.d.channelsOf(t.account))
      .map((c) => c.id)
      .filter((id) => t.channels === null || t.channels.includes(id));
    const r = (await s.run(this.d.frames, 'subscribe', { channelIds: ids })) as {
      channelIds: string[];
    };
    s.channels = new Set(r.channelIds);
    for (const id of r.channelIds) s.left.delete(id);
    return r.channelIds;
  }

  private async refreshAll(): Promise<void> {
    for (const s of [...this.sessions.values()]) {
      try {
        const t = await this.d.tokens.getToken(s.token.id);
        if (!t || t.revokedAt !== null || (t.expiresAt !== null && t.expiresAt <= Date.now()))
          this.end(s, 4004, 'E_TOKEN_INVALID');
        else await this.subscribe(s);
      } catch {
        // The store is away: the next round tries again.
      }
    }
  }

  /** A socket this going instance takes no session on: 1001, to resume on another instance. */
  private turnAway(socket: WebSocket): void {
    socket.close(1001, 'E_SHUTTING_DOWN');
    setTimeout(() => socket.terminate(), CLOSE_GRACE_MS).unref();
  }

  private end(s: GatewaySession, code: number, reason: string): void {
    if (!this.sessions.delete(s.id)) return;
    clearTimeout(s.expiry);
    this.shared.budget.release(s.buffer);
    s.socket?.close(code, reason);
    s.conn.fs.close();
    this.d.finished(s.conn);
  }
}

/** The channel an event is about (a message's, or the `channelId` of its body), if any. */
function channelOf(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const b = body as { channelId?: unknown; message?: { channelId?: unknown } };
  const id = typeof b.channelId === 'string' ? b.channelId : b.message?.channelId;
  return typeof id === 'string' ? id : undefined;
}
