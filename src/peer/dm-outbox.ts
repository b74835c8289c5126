/**
 * Sending direct messages (docs/PROTOCOL.md §10.6): a message written here is stored pending
 * first; then it is sealed — encrypted once for every device of every other member and every
 * other device of the sender's own user, each envelope stored with the session state it
 * advanced, in one transaction — and the sealed envelopes are handed over: straight to the
 * device over P2P when the server lists it online, else to its mailbox at the server. An
 * envelope keeps its id across retries and is dropped only once a device or the server took it,
 * so a crash anywhere sends nothing twice and loses nothing; the message turns delivered when
 * its last envelope is gone.
 */
import crypto from 'node:crypto';
import { HchatError } from '../protocol/errors.js';
import type { Device, DmCipher, DmPayload, OutEnvelope } from '../protocol/dm.js';
import type { TrackerEntry } from '../protocol/common.js';
import { hostName, type ConnectionLog } from '../shared/connlog.js';
import { DM_LIMITS } from '../shared/limits.js';
import { OneAtATime } from '../shared/one-at-a-time.js';
import type { DmMessageRow, OutboxRow, PeerDmStore } from '../store/peer-dm-store.js';
import type { DmDirectory } from './dm-directory.js';
import type { DmKeys } from './dm-keys.js';
import type { DmSessions } from './dm-sessions.js';
import type { HostLink } from './host-link.js';
import type { ServerLink } from './server-link.js';

/** How long a device has to answer a P2P delivery before the server takes the envelopes. */
const P2P_TIMEOUT_MS = 3000;
/** How soon a send that could not finish is tried again. */
const RETRY_MS = 3000;
/** Bytes of envelopes in one request: well under any receiver's frame limit (64 KiB at least). */
const BATCH_BYTES = 48 * 1024;

/** Rows in batches of at most DM_LIMITS.maxBatch and about BATCH_BYTES (one row at least). */
function batches(rows: OutboxRow[]): OutboxRow[][] {
  const out: OutboxRow[][] = [];
  let cur: OutboxRow[] = [];
  let bytes = 0;
  for (const r of rows) {
    if (cur.length && (cur.length >= DM_LIMITS.maxBatch || bytes + r.body.length > BATCH_BYTES)) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(r);
    bytes += r.body.length + 200;
  }
  if (cur.length) out.push(cur);
  return out;
}

export interface DmOutboxDeps {
  store: PeerDmStore;
  log: ConnectionLog;
  keys: DmKeys;
  sessions: DmSessions;
  directory: DmDirectory;
  account(): string | undefined;
  /** The server link while it is bound to this account's device, else undefined. */
  server(account: string): ServerLink | undefined;
  dial(entry: TrackerEntry): HostLink | undefined;
  closed(): boolean;
  /** Every envelope of an own message (or change, or reaction) was taken. */
  delivered(conversationId: string, id: string): void;
}

export class DmOutbox {
  private readonly drainer = new OneAtATime(
    () => this.once(),
    () => this.d.closed(),
  );
  private retry: NodeJS.Timeout | undefined;
  /** Open P2P links to recipient devices, by tracker entry. */
  private readonly links = new Map<string, HostLink>();

  constructor(private readonly d: DmOutboxDeps) {}

  close(): void {
    clearTimeout(this.retry);
    for (const l of this.links.values()) l.stop();
    this.links.clear();
  }

  /** Seals what is unsealed and hands over what is sealed; runs once at a time. */
  async drain(): Promise<void> {
    return this.drainer.run();
  }

  private async once(): Promise<void> {
    const account = this.d.account();
    if (!account || this.d.closed()) return;
    let unfinished = false;
    const server = this.d.server(account);
    // Each user's devices are asked once per pass, however many messages the pass seals.
    const pass = new Map<string, Device[]>();
    for (const m of this.d.store.unsealed(account)) {
      if (!server) {
        unfinished = true;
        break;
      }
      try {
        if (!(await this.seal(server, account, m, pass))) unfinished = true;
      } catch (err) {
        if (!(err instanceof HchatError)) throw err;
        this.d.log.write('dm_wait', { id: m.id, code: err.code, why: err.message.slice(0, 120) });
        unfinished = true;
      }
    }
    const rows = this.d.store.outbox(account);
    if (rows.length && !(await this.deliver(account, rows, pass))) unfinished = true;
    if (this.d.store.outbox(account, 1).length) unfinished = true;
    if (unfinished && !this.d.closed()) {
      clearTimeout(this.retry);
      this.retry = setTimeout(() => void this.drain().catch(() => undefined), RETRY_MS);
      this.retry.unref();
    }
  }

  /**
   * Seals one message for every device of its conversation. False when it must wait: a member
   * has no device yet (never logged in since DMs exist), or the conversation is unknown.
   */
  private async seal(
    server: ServerLink,
    account: string,
    m: DmMessageRow,
    pass: Map<string, Device[]>,
  ): Promise<boolean> {
    const conv = this.d.store.conversation(account, m.conversation);
    if (!conv) return false;
    const own = this.d.keys.own(account);
    const devices = await this.devicesOf(server, account, conv.members, pass);
    const targets: Array<{ username: string; deviceId: string }> = [];
    for (const u of conv.members) {
      const list = devices.get(u.toLowerCase()) ?? [];
      const mine = u.toLowerCase() === account.toLowerCase();
      if (!mine && list.length === 0) {
        this.d.log.write('dm_wait', { id: m.id, user: u, why: 'no device yet' });
        return false;
      }
      for (const dev of list)
        if (dev.deviceId !== own.deviceId) targets.push({ username: u, deviceId: dev.deviceId });
    }
    const fresh = targets.filter((t) => !this.d.sessions.has(account, t.username, t.deviceId));
    for (let i = 0; i < fresh.length; i += DM_LIMITS.maxDevicesPerAsk) {
      const ask = fresh.slice(i, i + DM_LIMITS.maxDevicesPerAsk);
      const { bundles } = await server.request('dm_bundles', { devices: ask });
      for (const b of bundles) {
        // The bundle must carry the key the device list showed (and the user was shown).
        const listed = devices
          .get(b.username.toLowerCase())
          ?.find((d) => d.deviceId === b.deviceId);
        if (!listed || listed.identityKey !== b.identityKey)
          throw new HchatError(
            'E_BAD_SIGNATURE',
            `${b.username}: bundle key differs from its list`,
          );
        this.d.sessions.start(account, own, b);
      }
    }
    const payload = payloadOf(m, conv.id, conv.members);
    const plaintext = Buffer.from(JSON.stringify(payload));
    const ready = targets.filter((t) => this.d.sessions.has(account, t.username, t.deviceId));
    this.d.store.tx(() => {
      for (const t of ready) {
        const { body, commit } = this.d.sessions.seal(account, t.username, t.deviceId, plaintext);
        commit();
        this.d.store.addEnvelope(account, {
          envelopeId: crypto.randomUUID(),
          messageId: m.id,
          toUser: t.username,
          toDevice: t.deviceId,
          body: JSON.stringify(body),
        });
      }
      this.d.store.markSealed(account, m.id);
    });
    this.d.log.write('dm_seal', { id: m.id, devices: ready.length });
    // Only this device in the conversation's reach (every other member's devices vanished):
    // nothing to hand over.
    if (ready.length === 0 && this.d.store.setDelivered(account, m.id))
      this.d.delivered(m.conversation, m.id);
    return true;
  }

  /** The devices of `users` (lower case keys), asked of the server unless this pass did. */
  private async devicesOf(
    server: ServerLink,
    account: string,
    users: string[],
    pass: Map<string, Device[]>,
  ): Promise<Map<string, Device[]>> {
    const ask = [...new Set(users.map((u) => u.toLowerCase()))].filter((u) => !pass.has(u));
    for (let i = 0; i < ask.length; i += DM_LIMITS.maxMembers) {
      const part = ask.slice(i, i + DM_LIMITS.maxMembers);
      const got = await this.d.directory.refresh(server, account, part);
      // A user the server does not know has no devices.
      for (const u of part) pass.set(u, got.get(u) ?? []);
    }
    return new Map(users.map((u) => [u.toLowerCase(), pass.get(u.toLowerCase()) ?? []]));
  }

  /** Hands envelopes over, device by device; true when every one was taken. */
  private async deliver(
    account: string,
    rows: OutboxRow[],
    pass: Map<string, Device[]>,
  ): Promise<boolean> {
    const server = this.d.server(account);
    const byDevice = new Map<string, OutboxRow[]>();
    for (const r of rows) {
      const k = `${r.toUser.toLowerCase()}/${r.toDevice}`;
      byDevice.set(k, [...(byDevice.get(k) ?? []), r]);
    }
    // Where each device is now (a device that went away is tried through the server).
    if (server)
      await this.devicesOf(server, account, [...new Set(rows.map((r) => r.toUser))], pass).catch(
        () => undefined,
      );
    let all = true;
    const own = this.d.keys.own(account);
    for (const group of byDevice.values()) {
      const { toUser, toDevice } = group[0]!;
      let left = group;
      const entry = this.d.directory.entry(toUser, toDevice);
      if (entry) left = await this.viaPeer(account, own.deviceId, entry, group);
      if (left.length && server) left = await this.viaServer(account, server, left);
      if (left.length) all = false;
    }
    return all;
  }

  /** Delivers to the device itself; answers the envelopes it did not take. */
  private async viaPeer(
    account: string,
    fromDevice: string,
    entry: TrackerEntry,
    rows: OutboxRow[],
  ): Promise<OutboxRow[]> {
    const key = `${entry.ip}:${entry.port}/${entry.sessionId}`;
    let link = this.links.get(key);
    if (!link) {
      link = this.d.dial(entry);
      if (!link) return rows;
      this.links.set(key, link);
    }
    const peer = hostName(entry.username, entry.ip, entry.port);
    const left: OutboxRow[] = [];
    try {
      await link.start();
      if (!link.connected) throw new HchatError('E_CONNECTION_CLOSED');
      for (const batch of batches(rows)) {
        const { results } = await link.request(
          'dm_deliver',
          {
            fromDevice,
            envelopes: batch.map((r) => ({
              id: r.envelopeId,
              to: r.toDevice,
              body: JSON.parse(r.body) as DmCipher,
            })),
          },
          P2P_TIMEOUT_MS,
        );
        left.push(...this.settle(account, batch, results, peer));
      }
      return left;
    } catch (err) {
      if (!(err instanceof HchatError)) throw err;
      link.stop();
      this.links.delete(key);
      this.d.log.write('dm_p2p_failed', { peer, code: err.code });
      return rows.filter((r) => this.d.store.hasEnvelope(account, r.envelopeId));
    }
  }

  private async viaServer(
    account: string,
    server: ServerLink,
    rows: OutboxRow[],
  ): Promise<OutboxRow[]> {
    const left: OutboxRow[] = [];
    try {
      for (const batch of batches(rows)) {
        // Logged out (or in as another) meanwhile: the connection no longer sends as us.
        if (this.d.server(account) !== server)
          return rows.filter((r) => this.d.store.hasEnvelope(account, r.envelopeId));
        const envelopes: OutEnvelope[] = batch.map((r) => ({
          id: r.envelopeId,
          to: { username: r.toUser, deviceId: r.toDevice },
          body: JSON.parse(r.body) as DmCipher,
        }));
        const { results } = await server.request('dm_send', { envelopes });
        left.push(...this.settle(account, batch, results, 'server'));
      }
    } catch (err) {
      if (!(err instanceof HchatError)) throw err;
      this.d.log.write('dm_send_failed', { peer: 'server', code: err.code });
      return rows.filter((r) => this.d.store.hasEnvelope(account, r.envelopeId));
    }
    return left;
  }

  /** Drops what was taken (or can never be: the device is gone); answers the rest. */
  private settle(
    account: string,
    batch: OutboxRow[],
    results: Array<{ id: string; ok: true } | { id: string; error: { code: string } }>,
    via: string,
  ): OutboxRow[] {
    const byId = new Map(results.map((r) => [r.id, r]));
    const left: OutboxRow[] = [];
    for (const row of batch) {
      const r = byId.get(row.envelopeId);
      const gone = r && 'error' in r && r.error.code === 'E_NOT_FOUND' && via === 'server';
      if (!r || ('error' in r && !gone)) {
        left.push(row);
        continue;
      }
      this.d.log.dm(account, gone ? 'dm_drop' : 'dm_out', {
        peer: via,
        id: row.messageId,
        envelope: row.envelopeId,
        to: `${row.toUser}/${row.toDevice}`,
        bytes: row.body.length,
      });
      const done = this.d.store.dropEnvelope(account, row.envelopeId);
      if (done && this.d.store.setDelivered(account, done)) {
        // A message, or a change or reaction (its waiting writer hears too).
        const m = this.d.store.item(account, done, account);
        if (m) this.d.delivered(m.conversation, done);
      }
    }
    return left;
  }
}

/**
 * What goes inside the envelopes of an own message, edit, deletion or reaction (PROTOCOL.md
 * §10.4).
 */
function payloadOf(m: DmMessageRow, conversation: string, members: string[]): DmPayload {
  const head = { conversation, members, id: m.id, ts: m.ts };
  const mentions = m.mentions.length ? { mentions: m.mentions } : {};
  if (m.kind === 'edit')
    return { t: 'edit', ...head, target: m.target!, text: m.text, ...mentions };
  if (m.kind === 'delete') return { t: 'delete', ...head, target: m.target! };
  if (m.kind === 'react' || m.kind === 'unreact')
    return {
      t: m.kind,
      ...head,
      target: m.target!,
      targetAuthor: m.targetAuthor!,
      emoji: m.emoji!,
    };
  const reply = m.replyTo ? { replyTo: m.replyTo } : {};
  return { t: 'msg', ...head, text: m.text, ...mentions, ...reply };
}
