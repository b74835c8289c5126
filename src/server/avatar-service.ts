/**
 * Avatars at the server (docs/PROTOCOL.md §9.5): a user sets its own (checked as every peer
 * checks it: the user's certificate and signature, the size, the clock, that the bytes are a
 * whole picture of its type; and, as only the server can, that the signing session was not
 * revoked before the avatar's time), anyone with a session
 * reads them, and the users who share a channel with it hear of a change (`avatar`).
 */
import type crypto from 'node:crypto';
import { HchatError } from '../protocol/errors.js';
import type { OpReq, OpRes } from '../protocol/server-link.js';
import { avatarError } from '../shared/avatar-sig.js';
import type { ConnectionLog } from '../shared/connlog.js';
import { FILE_LIMITS, MESSAGE_LIMITS } from '../shared/limits.js';
import { RateLimiter } from '../shared/rate-limit.js';
import type { AvatarStore } from '../store/avatar-store.js';
import type { EventBus } from './bus.js';
import type { Conn } from './conn.js';
import type { Revocations } from './revocations.js';

export interface AvatarServiceDeps {
  avatars: AvatarStore;
  bus: EventBus;
  log: ConnectionLog;
  serverKey(): crypto.KeyObject;
  /** Which sessions were revoked: an avatar signed after its session's end is refused. */
  revocations: Pick<Revocations, 'load' | 'signedAfter'>;
  /**
   * The ids of the user's channels: the cache a session of it here loaded, else the store's (in a
   * cluster the user may have no session on this instance).
   */
  channelsOf(username: string): Promise<Iterable<string>>;
  /** A channel's members (lower case). */
  membersOf(channelId: string): Promise<ReadonlySet<string>>;
  connsOf(username: string): Iterable<Conn>;
  /** The connections viewing a channel (visitors included). */
  viewersOf(channelId: string): Iterable<Conn>;
  internalError(what: string, err: unknown): void;
}

export class AvatarService {
  /** Changes per user (FILE_LIMITS.avatarBurst, then one per avatarEveryMs), on this instance. */
  private readonly changes = new RateLimiter(
    1000 / FILE_LIMITS.avatarEveryMs,
    FILE_LIMITS.avatarBurst,
  );

  constructor(private readonly d: AvatarServiceDeps) {}

  async set(conn: Conn, b: OpReq<'avatar_set'>): Promise<OpRes<'avatar_set'>> {
    const s = conn.session!;
    const a = b.avatar;
    if (a.username.toLowerCase() !== s.username.toLowerCase())
      throw new HchatError('E_FORBIDDEN', 'avatar: only your own');
    if (Buffer.from(a.data, 'base64').length > FILE_LIMITS.maxAvatarBytes)
      throw new HchatError('E_FILE_TOO_LARGE', 'avatar: at most 256 KiB');
    if (a.ts > Date.now() + MESSAGE_LIMITS.maxClockSkewMs)
      throw new HchatError('E_CLOCK_SKEW', 'avatar: set in the future');
    const bad = avatarError(a, this.d.serverKey());
    if (bad) throw bad;
    // As for posts (§3.3 logout): the key of a session that has ended signs nothing new.
    await this.d.revocations.load(a.cert);
    const revoked = this.d.revocations.signedAfter('avatar', a);
    if (revoked) throw revoked;
    // Counted once it would be stored: a refused one costs its user nothing.
    const wait = this.changes.take(s.username.toLowerCase());
    if (wait > 0) throw HchatError.rateLimited('avatar: changed too often', wait);
    const before = await this.d.avatars.info(s.username);
    const info = await this.d.avatars.put({ ...a, username: s.username });
    // PROTOCOL.md §9.5: an older or the same avatar changes nothing, and nobody hears of it.
    if (before && before.ts === info.ts && before.hash === info.hash) return info;
    this.d.log.write('avatar', { peer: conn.name, user: s.username, hash: info.hash });
    this.d.bus.publish({ kind: 'avatar', ...info });
    return info;
  }

  async list(b: OpReq<'avatars'>): Promise<OpRes<'avatars'>> {
    const held = await Promise.all(b.usernames.map((u) => this.d.avatars.info(u)));
    return { avatars: held.flatMap((a) => a ?? []) };
  }

  async get(b: OpReq<'avatar_get'>): Promise<OpRes<'avatar_get'>> {
    const avatar = await this.d.avatars.get(b.username);
    if (!avatar) throw new HchatError('E_NOT_FOUND', `${b.username} has no avatar`);
    return { avatar };
  }

  /**
   * A bus event: the co-members of its user connected here, and who views its channels, hear of
   * it. Its user's channels are read from the store when no session here loaded them (the set
   * may have been made on another instance).
   */
  deliver(e: { username: string; hash: string; ts: number }): void {
    // The event as PROTOCOL.md §9.5 spells it: the bus event's own members (its `kind`) stay
    // off the wire.
    const body = { username: e.username, hash: e.hash, ts: e.ts };
    this.recipients(e.username).then(
      (to) => {
        for (const c of to)
          if (c.session && c.fs.isOpen) c.fs.send({ t: 'ev', ev: 'avatar', body });
      },
      (err: unknown) => this.d.internalError('delivering an avatar change failed', err),
    );
  }

  private async recipients(username: string): Promise<Set<Conn>> {
    const to = new Set<Conn>(this.d.connsOf(username.toLowerCase()));
    for (const id of await this.d.channelsOf(username)) {
      for (const u of await this.d.membersOf(id)) for (const c of this.d.connsOf(u)) to.add(c);
      for (const c of this.d.viewersOf(id)) to.add(c);
    }
    return to;
  }
}
