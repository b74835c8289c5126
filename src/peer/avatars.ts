/**
 * Avatars at a peer (docs/PROTOCOL.md §9.5): the user sets its own (signed here with the
 * session's key, kept at the server); others' are fetched from the server when first shown,
 * checked (certificate, signature, and that the bytes are a whole picture of their type), and cached in `<data>/avatars/` by user. A cached one is
 * asked about again when the server says it changed (`avatar`), or when it was last checked more
 * than a minute ago.
 */
import type crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { HchatError } from '../protocol/errors.js';
import { AvatarRecord, type AvatarType } from '../protocol/avatars.js';
import { avatarError, avatarHash, avatarPictureError, signAvatar } from '../shared/avatar-sig.js';
import type { ConnectionLog } from '../shared/connlog.js';
import { FILE_LIMITS } from '../shared/limits.js';
import type { SessionKeys } from '../shared/signing.js';
import type { EventHub } from './event-hub.js';
import type { ServerLink } from './server-link.js';

export interface PeerAvatarsDeps {
  dir: string;
  log: ConnectionLog;
  events: EventHub;
  server(): ServerLink | undefined;
  serverKey(): crypto.KeyObject | undefined;
  /** The logged-in user's name, keys and certificate (a user's session only). */
  me(): { username: string; keys: SessionKeys; cert: string } | undefined;
}

/** An avatar ready to show. */
export interface Avatar {
  username: string;
  type: AvatarType;
  data: Buffer;
  hash: string;
  ts: number;
}

/** A checked record as shown, with when it was last asked about. */
function entryOf(record: AvatarRecord, checked: number): { avatar: Avatar; checked: number } {
  const data = Buffer.from(record.data, 'base64');
  const avatar = {
    username: record.username,
    type: record.type,
    data,
    hash: avatarHash(data),
    ts: record.ts,
  };
  return { avatar, checked };
}

/** How long a cached avatar is shown without asking the server again. */
const FRESH_MS = 60_000;

export class PeerAvatars {
  private readonly cache = new Map<string, { avatar: Avatar; checked: number }>();

  constructor(private readonly d: PeerAvatarsDeps) {
    fs.mkdirSync(d.dir, { recursive: true, mode: 0o700 });
  }

  /** Signs and sets the user's avatar. */
  async set(
    type: AvatarType,
    data: Buffer,
  ): Promise<{ username: string; hash: string; ts: number }> {
    const me = this.d.me();
    if (!me) throw new HchatError('E_VISITOR_READ_ONLY', 'visitors have no avatar');
    if (data.length === 0) throw new HchatError('E_BAD_REQUEST', 'avatar: empty');
    if (data.length > FILE_LIMITS.maxAvatarBytes)
      throw new HchatError('E_FILE_TOO_LARGE', 'avatar: at most 256 KiB');
    // Refused here, before it is signed, as the server and every peer would refuse it.
    const notPicture = avatarPictureError(type, data);
    if (notPicture) throw notPicture;
    const server = this.d.server();
    if (!server) throw new HchatError('E_OFFLINE');
    const record = signAvatar(
      { username: me.username, type, data, ts: Date.now() },
      me.keys,
      me.cert,
    );
    const info = await server.request('avatar_set', { avatar: record });
    this.keep(record);
    this.d.events.emit('avatar', info);
    return info;
  }

  /**
   * Who of these users has an avatar: asked of the server, or — offline, or when the server
   * cannot answer now — what this peer's cache knows.
   */
  async list(usernames: string[]): Promise<Array<{ username: string; hash: string; ts: number }>> {
    const server = this.d.server();
    if (server && usernames.length > 0) {
      try {
        const { avatars } = await server.request('avatars', { usernames: usernames.slice(0, 100) });
        for (const a of avatars) {
          const c = this.cache.get(a.username.toLowerCase()) ?? this.load(a.username);
          if (c && c.avatar.hash === a.hash) c.checked = Date.now();
          else this.cache.delete(a.username.toLowerCase());
        }
        return avatars;
      } catch (err) {
        if (!(err instanceof HchatError)) throw err;
      }
    }
    return usernames.flatMap((u) => {
      const c = this.cache.get(u.toLowerCase()) ?? this.load(u);
      return c ? [{ username: c.avatar.username, hash: c.avatar.hash, ts: c.avatar.ts }] : [];
    });
  }

  /**
   * A user's avatar, from the cache while fresh (asked by its hash `want`: while it is that
   * one), else from the server (checked).
   */
  async get(username: string, want?: string): Promise<Avatar> {
    const key = username.toLowerCase();
    const cached = this.cache.get(key) ?? this.load(username);
    const server = this.d.server();
    // A version asked for by its hash (a page that heard of a change before this peer did) is
    // asked of the server unless it is the one held; otherwise a recent check is enough.
    const fresh =
      want === undefined
        ? Date.now() - (cached?.checked ?? 0) < FRESH_MS
        : cached?.avatar.hash === want;
    if (cached && (fresh || !server)) return cached.avatar;
    if (!server) throw new HchatError('E_NOT_FOUND', `no avatar of ${username} here`);
    let record: AvatarRecord;
    try {
      record = (await server.request('avatar_get', { username })).avatar;
    } catch (err) {
      if (err instanceof HchatError && err.code === 'E_NOT_FOUND') this.forget(key);
      // The server cannot answer now: the copy held here is still the user's (it was checked).
      else if (cached && err instanceof HchatError) return cached.avatar;
      throw err;
    }
    const bad =
      record.username.toLowerCase() !== key
        ? new HchatError('E_BAD_SIGNATURE', "avatar: another user's")
        : avatarError(record, this.d.serverKey());
    if (bad) {
      this.d.log.write('refused', { from: 'server', avatar: username, code: bad.code });
      throw bad;
    }
    return this.keep(record).avatar;
  }

  /** The server says a user's avatar changed. */
  changed(e: { username: string; hash: string; ts: number }): void {
    const c = this.cache.get(e.username.toLowerCase());
    if (c?.avatar.hash !== e.hash) this.forget(e.username.toLowerCase());
    this.d.events.emit('avatar', e);
  }

  private keep(record: AvatarRecord): { avatar: Avatar; checked: number } {
    const entry = entryOf(record, Date.now());
    const key = record.username.toLowerCase();
    this.cache.set(key, entry);
    fs.writeFileSync(this.file(key), JSON.stringify(record), { mode: 0o600 });
    return entry;
  }

  /** A record cached on disk, checked again as it is read (checked: never, so asked again). */
  private load(username: string): { avatar: Avatar; checked: number } | undefined {
    const key = username.toLowerCase();
    let record: AvatarRecord;
    try {
      const parsed = AvatarRecord.safeParse(JSON.parse(fs.readFileSync(this.file(key), 'utf8')));
      if (!parsed.success || parsed.data.username.toLowerCase() !== key) return undefined;
      if (avatarError(parsed.data, this.d.serverKey())) return undefined;
      record = parsed.data;
    } catch {
      return undefined;
    }
    const entry = entryOf(record, 0);
    this.cache.set(key, entry);
    return entry;
  }

  private forget(key: string): void {
    this.cache.delete(key);
    fs.rmSync(this.file(key), { force: true });
  }

  private file(key: string): string {
    // Usernames are [A-Za-z0-9_.-]: a safe file name once lower-cased (and never `.` alone).
    return path.join(this.d.dir, `${encodeURIComponent(key)}.json`);
  }
}
