/**
 * Direct messages at the server (docs/PROTOCOL.md §10.1, §10.2): devices publish their keys,
 * senders fetch prekey bundles and leave envelopes in the recipients' mailboxes, devices empty
 * them. The server checks who may see whose address and spends nobody's prekeys or mailbox for
 * an attacker; it never sees what an envelope holds.
 */
import { HchatError } from '../protocol/errors.js';
import type { OpReq, OpRes } from '../protocol/server-link.js';
import type { MailEnvelope, PrekeyBundle } from '../protocol/dm.js';
import type { TrackerEntry } from '../protocol/common.js';
import { fitPage, pageBudget } from '../protocol/page-budget.js';
import type { ConnectionLog } from '../shared/connlog.js';
import { verifyEd25519 } from '../shared/ed25519.js';
import { DM_LIMITS, DM_SERVER_LIMITS } from '../shared/limits.js';
import { RateLimiter } from '../shared/rate-limit.js';
import { randomBytes } from 'node:crypto';
import { KeyedQueue } from '../shared/keyed-queue.js';
import type { DeviceRecord, DmStore, MailIn, PublishRefusal } from '../store/dm-store.js';
import type { EventBus } from './bus.js';
import type { Conn } from './conn.js';
import { isPublic, sameUser, viewOf, type Memberships } from './tracker.js';

/** The bytes a device's identity key signs to vouch for its signed prekey (§10.1). */
export const SPK_CONTEXT = Buffer.from('hchat-dm-spk-v1', 'utf8');

export interface DmServiceDeps {
  dms: DmStore;
  bus: EventBus;
  log: ConnectionLog;
  /** A registered user's name as registered, or undefined. */
  registered(username: string): Promise<string | undefined>;
  /** Who belongs to which channel (the tracker's rule). */
  memberships: Memberships;
  /** A user's tracker entries, this instance's and (in a cluster) the other instances'. */
  entriesOf(username: string): readonly TrackerEntry[];
  /** This instance's connections with a session of `username` (lower-case). */
  connsOf(username: string): Iterable<Conn>;
  /** A store write done in the background failed. */
  internalError(what: string, err: unknown): void;
  /** Envelopes one device's mailbox holds (DM_LIMITS.maxMailbox). */
  maxMailbox: number;
}

const L = DM_SERVER_LIMITS;

const REFUSALS: Record<PublishRefusal, string> = {
  other_user: 'that device belongs to another user',
  identity_changed: "a device's identity key never changes",
  identity_taken: 'that identity key is already another device’s',
};
const NO_VIEWS: ReadonlySet<string> = new Set();

/**
 * Devices, prekey bundles, mailboxes and blocks of direct messages on one server instance.
 *
 * Several instances: a device's `dm` push reaches its connections wherever they are, since the
 * bus event names the device and every instance delivers to the connections bound here. Which
 * session speaks for a device is kept in the store with this instance's id (bind/unbind), so
 * `dm_devices` on any instance finds that session's tracker entry in its replica of the list;
 * an instance that dies leaves rows behind, but its entries leave every replica, so no address
 * is given for them (and the session's next `dm_publish`, wherever it lands, takes the row).
 */
export class DmService {
  /** This instance's connections bound to each device (by `dm_publish`). */
  private readonly bound = new Map<string, Set<Conn>>();
  /** This process's name in the store's bindings. */
  private readonly instance = randomBytes(9).toString('base64url');
  /** The store's binding writes of one device, in the order they were made here. */
  private readonly bindings = new KeyedQueue();
  private readonly bundleLimiter = new RateLimiter(L.bundlesPerSecond, L.bundleBurst);
  private readonly pairLimiter = new RateLimiter(
    L.prekeysPerPairPerHour / 3600,
    L.prekeysPerPairBurst,
  );
  private readonly envelopeLimiter = new RateLimiter(L.envelopesPerSecond, L.envelopeBurst);
  private readonly lookupLimiter = new RateLimiter(L.lookupsPerSecond, L.lookupBurst);

  constructor(private readonly d: DmServiceDeps) {}

  // ---- devices and prekeys (§10.1) -----------------------------------------------------------

  async publish(conn: Conn, b: OpReq<'dm_publish'>): Promise<OpRes<'dm_publish'>> {
    const s = conn.session!;
    const spk = b.signedPrekey;
    const signed = Buffer.concat([SPK_CONTEXT, Buffer.from(spk.key, 'base64url')]);
    const ik = Buffer.from(b.identityKey, 'base64url');
    if (!verifyEd25519(signed, Buffer.from(spk.sig, 'base64url'), ik))
      throw new HchatError('E_BAD_SIGNATURE', "signedPrekey: the identity key's signature fails");
    const r = await this.d.dms.publish(
      {
        deviceId: b.deviceId,
        username: s.username,
        identityKey: b.identityKey,
        signedPrekey: spk,
        oneTimePrekeys: b.oneTimePrekeys,
      },
      Date.now(),
      DM_LIMITS.maxDevicesPerUser,
      DM_LIMITS.maxPrekeysHeld,
    );
    if ('refused' in r) throw new HchatError('E_FORBIDDEN', REFUSALS[r.refused]);
    for (const gone of r.dropped) for (const c of this.bound.get(gone) ?? []) this.unbind(c);
    if (conn.dmDevice !== b.deviceId) this.unbind(conn);
    await this.storeBinding(b.deviceId, s.sessionId, true);
    // The connection closed, or its session ended, while the store answered: nothing to bind.
    if (conn.session !== s || !conn.fs.isOpen) {
      if (!this.sessionBoundHere(b.deviceId, s.sessionId))
        await this.storeBinding(b.deviceId, s.sessionId, false);
      return { oneTimePrekeys: r.held };
    }
    conn.dmDevice = b.deviceId;
    addTo(this.bound, b.deviceId, conn);
    this.d.log.dm(s.username, 'dm_publish', {
      peer: conn.name,
      device: b.deviceId,
      prekeys: b.oneTimePrekeys.length,
      held: r.held,
      dropped: r.dropped.length || undefined,
    });
    return { oneTimePrekeys: r.held };
  }

  /** The connection no longer speaks for its device (it closed, or its session ended). */
  unbind(conn: Conn): void {
    const device = conn.dmDevice;
    if (device === undefined) return;
    removeFrom(this.bound, device, conn);
    conn.dmDevice = undefined;
    const session = conn.session?.sessionId;
    if (session !== undefined && !this.sessionBoundHere(device, session))
      this.storeBinding(device, session, false).catch((err: unknown) =>
        this.d.internalError('forgetting a DM device binding failed', err),
      );
  }

  /** True while a connection here of `sessionId` is bound to the device. */
  private sessionBoundHere(deviceId: string, sessionId: string): boolean {
    for (const c of this.bound.get(deviceId) ?? [])
      if (c.session?.sessionId === sessionId) return true;
    return false;
  }

  /** Writes or forgets a binding in the store, after this device's earlier writes from here. */
  private storeBinding(deviceId: string, sessionId: string, bound: boolean): Promise<void> {
    return this.bindings.run(deviceId, () =>
      bound
        ? this.d.dms.bind(deviceId, sessionId, this.instance)
        : this.d.dms.unbind(deviceId, sessionId, this.instance),
    );
  }

  async devices(conn: Conn, b: OpReq<'dm_devices'>): Promise<OpRes<'dm_devices'>> {
    const me = conn.session!.username;
    this.budget(this.lookupLimiter, conn.session!.sessionId, b.usernames.length, 'dm_devices');
    const names = await Promise.all(b.usernames.map((u) => this.d.registered(u)));
    const users: OpRes<'dm_devices'>['users'] = [];
    const seen = new Set<string>();
    for (const username of names) {
      if (!username || seen.has(username.toLowerCase())) continue;
      seen.add(username.toLowerCase());
      const own = sameUser(username, me);
      // A check of a sender's keys (a device receiving from it) is not a lookup: receiving an
      // envelope must not hand its sender this user's address.
      if (!own && !b.check) await this.d.dms.recordLookup(me, username);
      // A user who blocks the asker is never located by it.
      const mayLocate = !b.check && (own || !(await this.d.dms.isBlocked(username, me)));
      const devices = [];
      for (const dev of await this.d.dms.devicesOf(username)) {
        const entry = mayLocate ? await this.entryOfDevice(dev, me, own) : undefined;
        const listed = { deviceId: dev.deviceId, identityKey: dev.identityKey };
        devices.push(entry ? { ...listed, entry } : listed);
      }
      users.push({ username, devices });
    }
    return { users };
  }

  /**
   * The tracker entry of a session bound to the device, as `asker` may see it: its own user's
   * always; another user's only while online and either sharing a channel with the asker (the
   * tracker's rule, viewOf) or having looked the asker up itself.
   */
  private async entryOfDevice(
    dev: DeviceRecord,
    asker: string,
    own: boolean,
  ): Promise<TrackerEntry | undefined> {
    const m = this.d.memberships;
    const entries = this.d.entriesOf(dev.username);
    if (entries.length === 0) return undefined;
    const sessions = new Set(await this.d.dms.boundSessions(dev.deviceId));
    for (const e of entries) {
      if (!sessions.has(e.sessionId)) continue;
      if (own) return e;
      const viewer = { username: asker, role: 'user' as const, views: NO_VIEWS };
      const shared = viewOf(viewer, e, m);
      if (shared) return shared;
      if (isPublic(e) && (await this.d.dms.hasLookedUp(e.username, asker))) {
        // Its address only: the channels it hosts or streams stay the asker's business alone.
        const mine = m.channelsOf(asker);
        return {
          ...e,
          hosts: e.hosts.filter((id) => mine.has(id)),
          live: e.live.filter((l) => mine.has(l.channelId)),
        };
      }
    }
    return undefined;
  }

  async bundles(conn: Conn, b: OpReq<'dm_bundles'>): Promise<OpRes<'dm_bundles'>> {
    const me = conn.session!.username;
    this.budget(this.bundleLimiter, me.toLowerCase(), b.devices.length, 'dm_bundles');
    const bundles: PrekeyBundle[] = [];
    for (const a of b.devices) {
      const dev = await this.d.dms.device(a.deviceId);
      if (!dev || !sameUser(dev.username, a.username)) continue;
      const bundle: PrekeyBundle = {
        username: dev.username,
        deviceId: dev.deviceId,
        identityKey: dev.identityKey,
        signedPrekey: dev.signedPrekey,
      };
      // Past its budget for this device, an asker gets bundles without a one-time prekey (X3DH
      // runs without it). A blocked asker is treated alike: a bundle must not tell it is blocked,
      // and the budget bounds what it can spend.
      const spend = this.pairLimiter.take(`${me.toLowerCase()} ${dev.deviceId}`) === 0;
      const otk = spend ? await this.d.dms.takePrekey(dev.deviceId) : undefined;
      bundles.push(otk ? { ...bundle, oneTimePrekey: otk } : bundle);
    }
    return { bundles };
  }

  // ---- mailbox (§10.2) -----------------------------------------------------------------------

  async send(conn: Conn, b: OpReq<'dm_send'>): Promise<OpRes<'dm_send'>> {
    const s = conn.session!;
    const from = await this.boundDevice(conn);
    this.budget(this.envelopeLimiter, s.sessionId, b.envelopes.length, 'dm_send');
    const ts = Date.now();
    const results: OpRes<'dm_send'>['results'] = [];
    const batch: MailIn[] = [];
    const at: number[] = []; // index in results of each batch entry
    for (const env of b.envelopes) {
      const to = await this.d.dms.device(env.to.deviceId);
      const line = sendLine(conn, `${s.username}/${from}`, env.to, env.id, env.body);
      if (!to || !sameUser(to.username, env.to.username)) {
        const error = new HchatError('E_NOT_FOUND', `${env.id}: no such device`).toWire();
        results.push({ id: env.id, error });
        this.d.log.dm(s.username, 'dm_send', { ...line, code: error.code });
        continue;
      }
      results.push({ id: env.id, ok: true });
      // A recipient who blocks the sender stores nothing of it; the sender is not told.
      if (await this.d.dms.isBlocked(to.username, s.username)) {
        this.d.log.dm(s.username, 'dm_send', { ...line, blocked: true });
        continue;
      }
      at.push(results.length - 1);
      batch.push({
        id: env.id,
        toUser: to.username,
        toDevice: to.deviceId,
        fromUser: s.username,
        fromDevice: from,
        ts,
        body: env.body,
      });
    }
    const stored = await this.d.dms.send(batch, this.d.maxMailbox);
    stored.forEach((r, i) => {
      const m = batch[i]!;
      const to = { username: m.toUser, deviceId: m.toDevice };
      const line = sendLine(conn, `${m.fromUser}/${m.fromDevice}`, to, m.id, m.body);
      if (r === 'full') {
        const error = new HchatError(
          'E_QUOTA_EXCEEDED',
          `${m.id}: the recipient device's mailbox is full`,
        ).toWire();
        results[at[i]!] = { id: m.id, error };
        this.d.log.dm(m.fromUser, 'dm_send', { ...line, code: error.code });
        return;
      }
      this.d.log.dm(
        m.fromUser,
        'dm_send',
        r === 'dup' ? { ...line, dup: true } : { ...line, seq: r },
      );
      if (r === 'dup') return;
      const envelope: MailEnvelope = {
        seq: r,
        id: m.id,
        from: { username: m.fromUser, deviceId: m.fromDevice },
        ts,
        body: m.body,
      };
      this.d.bus.publish({ kind: 'dm', deviceId: m.toDevice, envelope });
    });
    return { results };
  }

  async fetch(conn: Conn, b: OpReq<'dm_fetch'>): Promise<OpRes<'dm_fetch'>> {
    const device = await this.boundDevice(conn);
    const rows = await this.d.dms.mail(device, b.after, L.fetchPage + 1);
    const page = rows.slice(0, L.fetchPage);
    const fit = fitPage(page, pageBudget(conn.fs.peerMaxFrame), 'start');
    const more = fit.cut || rows.length > page.length;
    this.d.log.read(conn.reader, 'dm_fetch', {
      peer: conn.name,
      device,
      after: b.after,
      count: fit.items.length,
      more: more || undefined,
    });
    return { envelopes: fit.items, more };
  }

  async ack(conn: Conn, b: OpReq<'dm_ack'>): Promise<OpRes<'dm_ack'>> {
    const device = await this.boundDevice(conn);
    const count = await this.d.dms.ack(device, b.upTo);
    this.d.log.dm(conn.session!.username, 'dm_ack', {
      peer: conn.name,
      device,
      upTo: b.upTo,
      count,
    });
    return {};
  }

  /** A bus event: the connections bound here to the envelope's device hear of it. */
  deliver(e: { deviceId: string; envelope: MailEnvelope }): void {
    for (const c of this.bound.get(e.deviceId) ?? [])
      if (c.session && c.fs.isOpen) c.fs.send({ t: 'ev', ev: 'dm', body: e.envelope });
  }

  // ---- blocks --------------------------------------------------------------------------------

  async block(conn: Conn, b: OpReq<'dm_block'>): Promise<OpRes<'dm_block'>> {
    const me = conn.session!.username;
    if (sameUser(b.username, me))
      throw new HchatError('E_BAD_REQUEST', 'you cannot block yourself');
    const target = await this.d.registered(b.username);
    if (!target) throw new HchatError('E_NOT_FOUND', `no user ${b.username}`);
    if (!(await this.d.dms.setBlocked(me, target, b.blocked, L.maxBlocks)))
      throw new HchatError('E_QUOTA_EXCEEDED', `at most ${L.maxBlocks} blocked users`);
    const blocked = await this.d.dms.blocks(me);
    // The user's other devices decide alone what reaches them over P2P: they hear at once.
    this.d.bus.publish({ kind: 'dm_blocks', username: me, blocked });
    return { blocked };
  }

  /** A bus event: the user's devices bound here hear their new block list. */
  blocksChanged(e: { username: string; blocked: string[] }): void {
    for (const c of this.d.connsOf(e.username.toLowerCase()))
      if (c.dmDevice !== undefined && c.fs.isOpen)
        c.fs.send({ t: 'ev', ev: 'dm_blocks', body: { blocked: e.blocked } });
  }

  async blocks(conn: Conn): Promise<OpRes<'dm_blocks'>> {
    return { blocked: await this.d.dms.blocks(conn.session!.username) };
  }

  // ---- helpers -------------------------------------------------------------------------------

  /** The device this connection's session speaks for; it must have published it (and kept it). */
  private async boundDevice(conn: Conn): Promise<string> {
    const id = conn.dmDevice;
    const dev = id === undefined ? undefined : await this.d.dms.device(id);
    if (!dev || !sameUser(dev.username, conn.session!.username)) {
      if (conn.dmDevice === id) this.unbind(conn);
      throw new HchatError('E_BAD_REQUEST', 'publish your device first (dm_publish)');
    }
    return dev.deviceId;
  }

  private budget(limiter: RateLimiter, key: string, n: number, op: string): void {
    const wait = limiter.take(key, n);
    if (wait > 0) throw HchatError.rateLimited(`${op}: too many at once`, wait);
  }
}

/** The fields of a `dm_send` log line: sizes and ids, never contents. */
function sendLine(
  conn: Conn,
  from: string,
  to: { username: string; deviceId: string },
  id: string,
  body: unknown,
) {
  return {
    peer: conn.name,
    from,
    to: `${to.username}/${to.deviceId}`,
    env: id,
    bytes: Buffer.byteLength(JSON.stringify(body)),
  };
}

function addTo<K, V>(map: Map<K, Set<V>>, k: K, v: V): void {
  let set = map.get(k);
  if (!set) map.set(k, (set = new Set()));
  set.add(v);
}

function removeFrom<K, V>(map: Map<K, Set<V>>, k: K, v: V): void {
  const set = map.get(k);
  set?.delete(v);
  if (set?.size === 0) map.delete(k);
}
