/**
 * The DM store of a single server process (no `--store`), in `<dir>/dms.db`: the synchronous
 * SQLite driver inside, each method's answer a settled promise (dm-store.ts says what each does).
 */
import path from 'node:path';
import type Database from 'better-sqlite3';
import type { DmCipher } from '../protocol/dm.js';
import {
  canonicalMail,
  type DeviceRecord,
  type DevicePublish,
  type DmStore,
  type MailIn,
  type MailOut,
  type PublishRefusal,
} from './dm-store.js';
import { openDatabase } from './sqlite.js';

const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE devices (
    device_id TEXT PRIMARY KEY,
    username_lc TEXT NOT NULL,
    username TEXT NOT NULL,
    identity_key TEXT NOT NULL,
    spk_id INTEGER NOT NULL,
    spk_key TEXT NOT NULL,
    spk_sig TEXT NOT NULL,
    created INTEGER NOT NULL,
    last_seen INTEGER NOT NULL
  );
  CREATE INDEX devices_user ON devices (username_lc, last_seen);
  -- A key is one device's: nobody republishes another's identity under a device of its own.
  CREATE UNIQUE INDEX devices_identity ON devices (identity_key);
  -- n: the order prekeys arrived in (the oldest are handed out, and dropped, first).
  CREATE TABLE prekeys (
    n INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL REFERENCES devices (device_id) ON DELETE CASCADE,
    id INTEGER NOT NULL,
    key TEXT NOT NULL,
    UNIQUE (device_id, id)
  );
  CREATE TABLE mailbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    to_user TEXT NOT NULL,
    to_device TEXT NOT NULL REFERENCES devices (device_id) ON DELETE CASCADE,
    envelope_id TEXT NOT NULL,
    from_user TEXT NOT NULL COLLATE NOCASE,
    from_device TEXT NOT NULL,
    ts INTEGER NOT NULL,
    body TEXT NOT NULL,
    UNIQUE (to_device, envelope_id)
  );
  CREATE INDEX mailbox_from ON mailbox (to_user, from_user);
  CREATE TABLE blocks (
    username_lc TEXT NOT NULL,
    blocked_lc TEXT NOT NULL,
    blocked TEXT NOT NULL,
    PRIMARY KEY (username_lc, blocked_lc)
  ) WITHOUT ROWID;
  -- (username asked for target's devices): target may see username's address from then on.
  CREATE TABLE lookups (
    username_lc TEXT NOT NULL,
    target_lc TEXT NOT NULL,
    PRIMARY KEY (username_lc, target_lc)
  ) WITHOUT ROWID;
  `,
  // Which session speaks for which device (dm_publish); one process's, emptied when it opens.
  `
  CREATE TABLE bindings (
    device_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    instance TEXT NOT NULL,
    PRIMARY KEY (device_id, session_id)
  ) WITHOUT ROWID;
  `,
];

interface DeviceRow {
  device_id: string;
  username_lc: string;
  username: string;
  identity_key: string;
  spk_id: number;
  spk_key: string;
  spk_sig: string;
  created: number;
  last_seen: number;
}

interface MailRow {
  seq: number;
  envelope_id: string;
  from_user: string;
  from_device: string;
  ts: number;
  body: string;
}

const lc = (s: string) => s.toLowerCase();

/** The DM store on SQLite, in the data folder. */
export class SqliteDmStore implements DmStore {
  private readonly db: Database.Database;
  private readonly q;
  private readonly publishTx;
  private readonly sendTx;

  constructor(dir: string) {
    this.db = openDatabase(path.join(dir, 'dms.db'), MIGRATIONS);
    const db = this.db;
    // The connections of the process that wrote them are gone.
    db.exec('DELETE FROM bindings');
    this.q = {
      device: db.prepare<[string], DeviceRow>('SELECT * FROM devices WHERE device_id = ?'),
      devicesOf: db.prepare<[string], DeviceRow>(
        'SELECT * FROM devices WHERE username_lc = ? ORDER BY created, device_id',
      ),
      insertDevice: db.prepare(
        `INSERT INTO devices (device_id, username_lc, username, identity_key, spk_id, spk_key,
           spk_sig, created, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      refreshDevice: db.prepare(
        `UPDATE devices SET username = ?, spk_id = ?, spk_key = ?, spk_sig = ?, last_seen = ?
         WHERE device_id = ?`,
      ),
      oldestOther: db.prepare<[string, string], { device_id: string }>(
        `SELECT device_id FROM devices WHERE username_lc = ? AND device_id <> ?
         ORDER BY last_seen, created LIMIT 1`,
      ),
      identityUsed: db.prepare<[string], { device_id: string }>(
        'SELECT device_id FROM devices WHERE identity_key = ?',
      ),
      countDevices: db.prepare<[string], { n: number }>(
        'SELECT count(*) AS n FROM devices WHERE username_lc = ?',
      ),
      deleteDevice: db.prepare('DELETE FROM devices WHERE device_id = ?'),
      addPrekey: db.prepare('INSERT OR IGNORE INTO prekeys (device_id, id, key) VALUES (?, ?, ?)'),
      trimPrekeys: db.prepare(
        `DELETE FROM prekeys WHERE device_id = ? AND n NOT IN
           (SELECT n FROM prekeys WHERE device_id = ? ORDER BY n DESC LIMIT ?)`,
      ),
      countPrekeys: db.prepare<[string], { n: number }>(
        'SELECT count(*) AS n FROM prekeys WHERE device_id = ?',
      ),
      // One statement: two asks can never be handed the same prekey, whatever runs alongside.
      takePrekey: db.prepare<[string], { id: number; key: string }>(
        `DELETE FROM prekeys WHERE n = (SELECT min(n) FROM prekeys WHERE device_id = ?)
         RETURNING id, key`,
      ),
      hasMail: db.prepare<[string, string], { seq: number }>(
        'SELECT seq FROM mailbox WHERE to_device = ? AND envelope_id = ?',
      ),
      countMail: db.prepare<[string], { n: number }>(
        'SELECT count(*) AS n FROM mailbox WHERE to_device = ?',
      ),
      insertMail: db.prepare(
        `INSERT INTO mailbox (to_user, to_device, envelope_id, from_user, from_device, ts, body)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      mail: db.prepare<[string, number, number], MailRow>(
        `SELECT seq, envelope_id, from_user, from_device, ts, body FROM mailbox
         WHERE to_device = ? AND seq > ? ORDER BY seq LIMIT ?`,
      ),
      ack: db.prepare('DELETE FROM mailbox WHERE to_device = ? AND seq <= ?'),
      dropMailFrom: db.prepare('DELETE FROM mailbox WHERE to_user = ? AND from_user = ?'),
      block: db.prepare(
        'INSERT OR REPLACE INTO blocks (username_lc, blocked_lc, blocked) VALUES (?, ?, ?)',
      ),
      unblock: db.prepare('DELETE FROM blocks WHERE username_lc = ? AND blocked_lc = ?'),
      blocks: db.prepare<[string], { blocked: string }>(
        'SELECT blocked FROM blocks WHERE username_lc = ? ORDER BY blocked_lc',
      ),
      countBlocks: db.prepare<[string], { n: number }>(
        'SELECT count(*) AS n FROM blocks WHERE username_lc = ?',
      ),
      blocked: db.prepare<[string, string], { x: number }>(
        'SELECT 1 AS x FROM blocks WHERE username_lc = ? AND blocked_lc = ?',
      ),
      lookup: db.prepare('INSERT OR IGNORE INTO lookups (username_lc, target_lc) VALUES (?, ?)'),
      lookedUp: db.prepare<[string, string], { x: number }>(
        'SELECT 1 AS x FROM lookups WHERE username_lc = ? AND target_lc = ?',
      ),
      bind: db.prepare(
        'INSERT OR REPLACE INTO bindings (device_id, session_id, instance) VALUES (?, ?, ?)',
      ),
      unbind: db.prepare(
        'DELETE FROM bindings WHERE device_id = ? AND session_id = ? AND instance = ?',
      ),
      boundSessions: db.prepare<[string], { session_id: string }>(
        'SELECT session_id FROM bindings WHERE device_id = ? ORDER BY session_id',
      ),
    };
    this.publishTx = db.transaction(
      (p: DevicePublish, now: number, maxDevices: number, maxHeld: number) =>
        this.publishIn(p, now, maxDevices, maxHeld),
    );
    this.sendTx = db.transaction(
      (batch: readonly MailIn[], maxMailbox: number): Array<number | 'dup' | 'full'> =>
        batch.map((m) => this.sendOne(m, maxMailbox)),
    );
  }

  async close(): Promise<void> {
    this.db.close();
  }

  async device(deviceId: string): Promise<DeviceRecord | undefined> {
    const r = this.q.device.get(deviceId);
    return r && toDevice(r);
  }

  async devicesOf(username: string): Promise<DeviceRecord[]> {
    return this.q.devicesOf.all(lc(username)).map(toDevice);
  }

  /**
   * Stores or refreshes a device and adds its new one-time prekeys (an id held already keeps
   * its first key), keeping the newest `maxHeld`. A new device past `maxDevices` drops the
   * user's longest-unseen other devices, with their prekeys and mailboxes. Answers how many
   * one-time prekeys are held, the devices dropped, or why it refused.
   */
  async publish(
    p: DevicePublish,
    now: number,
    maxDevices: number,
    maxHeld: number,
  ): Promise<{ held: number; dropped: string[] } | { refused: PublishRefusal }> {
    return this.publishTx(p, now, maxDevices, maxHeld);
  }

  private publishIn(
    p: DevicePublish,
    now: number,
    maxDevices: number,
    maxHeld: number,
  ): { held: number; dropped: string[] } | { refused: PublishRefusal } {
    const user = lc(p.username);
    const old = this.q.device.get(p.deviceId);
    const spk = p.signedPrekey;
    const dropped: string[] = [];
    if (old) {
      if (old.username_lc !== user) return { refused: 'other_user' };
      if (old.identity_key !== p.identityKey) return { refused: 'identity_changed' };
      this.q.refreshDevice.run(p.username, spk.id, spk.key, spk.sig, now, p.deviceId);
    } else {
      if (this.q.identityUsed.get(p.identityKey)) return { refused: 'identity_taken' };
      while (this.q.countDevices.get(user)!.n >= maxDevices) {
        const gone = this.q.oldestOther.get(user, p.deviceId)!.device_id;
        this.q.deleteDevice.run(gone);
        dropped.push(gone);
      }
      this.q.insertDevice.run(
        p.deviceId,
        user,
        p.username,
        p.identityKey,
        spk.id,
        spk.key,
        spk.sig,
        now,
        now,
      );
    }
    for (const k of p.oneTimePrekeys) this.q.addPrekey.run(p.deviceId, k.id, k.key);
    this.q.trimPrekeys.run(p.deviceId, p.deviceId, maxHeld);
    return { held: this.q.countPrekeys.get(p.deviceId)!.n, dropped };
  }

  /** Hands out (and deletes) the device's oldest one-time prekey, if it has one. */
  async takePrekey(deviceId: string): Promise<{ id: number; key: string } | undefined> {
    return this.q.takePrekey.get(deviceId);
  }

  /**
   * Leaves envelopes in mailboxes, in one transaction. Per envelope: its seq, `dup` when the
   * device holds that envelope id already (one row), or `full` when the mailbox holds
   * `maxMailbox` envelopes. Recipients must exist (checked by the caller).
   */
  async send(
    batch: readonly MailIn[],
    maxMailbox: number,
  ): Promise<Array<number | 'dup' | 'full'>> {
    return this.sendTx(batch, maxMailbox);
  }

  private sendOne(m: MailIn, maxMailbox: number): number | 'dup' | 'full' {
    if (this.q.hasMail.get(m.toDevice, m.id)) return 'dup';
    if (this.q.countMail.get(m.toDevice)!.n >= maxMailbox) return 'full';
    const r = this.q.insertMail.run(
      lc(m.toUser),
      m.toDevice,
      m.id,
      m.fromUser,
      m.fromDevice,
      m.ts,
      JSON.stringify(m.body),
    );
    return Number(r.lastInsertRowid);
  }

  /** A device's envelopes after `after`, oldest first, at most `limit`. */
  async mail(deviceId: string, after: number, limit: number): Promise<MailOut[]> {
    return this.q.mail.all(deviceId, after, limit).map((r) =>
      canonicalMail({
        seq: r.seq,
        id: r.envelope_id,
        from: { username: r.from_user, deviceId: r.from_device },
        ts: r.ts,
        body: JSON.parse(r.body) as DmCipher,
      }),
    );
  }

  /** Drops a device's envelopes up to `upTo`; answers how many. */
  async ack(deviceId: string, upTo: number): Promise<number> {
    return this.q.ack.run(deviceId, upTo).changes;
  }

  /**
   * Blocks or unblocks `target` (its display spelling) for `username`; a block also drops what
   * `target` left in `username`'s mailboxes. Answers false when the block list is full.
   */
  async setBlocked(
    username: string,
    target: string,
    blocked: boolean,
    maxBlocks: number,
  ): Promise<boolean> {
    return this.db.transaction(() => {
      if (!blocked) {
        this.q.unblock.run(lc(username), lc(target));
        return true;
      }
      if (this.q.blocked.get(lc(username), lc(target))) return true;
      if (this.q.countBlocks.get(lc(username))!.n >= maxBlocks) return false;
      this.q.block.run(lc(username), lc(target), target);
      this.q.dropMailFrom.run(lc(username), target);
      return true;
    })();
  }

  /** The users `username` blocks, by name. */
  async blocks(username: string): Promise<string[]> {
    return this.q.blocks.all(lc(username)).map((r) => r.blocked);
  }

  /** True when `username` blocks `other`. */
  async isBlocked(username: string, other: string): Promise<boolean> {
    return !!this.q.blocked.get(lc(username), lc(other));
  }

  /** Records that `username` asked for `target`'s devices. */
  async recordLookup(username: string, target: string): Promise<void> {
    this.q.lookup.run(lc(username), lc(target));
  }

  /** True when `username` has asked for `target`'s devices. */
  async hasLookedUp(username: string, target: string): Promise<boolean> {
    return !!this.q.lookedUp.get(lc(username), lc(target));
  }

  async bind(deviceId: string, sessionId: string, instance: string): Promise<void> {
    this.q.bind.run(deviceId, sessionId, instance);
  }

  async unbind(deviceId: string, sessionId: string, instance: string): Promise<void> {
    this.q.unbind.run(deviceId, sessionId, instance);
  }

  async boundSessions(deviceId: string): Promise<string[]> {
    return this.q.boundSessions.all(deviceId).map((r) => r.session_id);
  }
}

function toDevice(r: DeviceRow): DeviceRecord {
  return {
    deviceId: r.device_id,
    username: r.username,
    identityKey: r.identity_key,
    signedPrekey: { id: r.spk_id, key: r.spk_key, sig: r.spk_sig },
    created: r.created,
    lastSeen: r.last_seen,
  };
}
