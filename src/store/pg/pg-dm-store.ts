/**
 * The DM store on PostgreSQL (`hchat server --store postgres://…`), for several server instances
 * sharing one database: the same answers as SqliteDmStore (test/dm-store-conformance.test.ts),
 * and the same rules across instances. A one-time prekey is taken by one `DELETE … RETURNING` of
 * a row locked with SKIP LOCKED, so two asks at once get two prekeys (or one and none), never
 * the same. A mailbox's writers lock its device's row, so its cap holds and its seqs become
 * visible in order (a device that acks up to a seq never drops one committed after). A user's
 * devices and blocks change under an advisory lock of that user (its caps hold).
 */
import type pg from 'pg';
import { z } from 'zod';
import { DmCipher } from '../../protocol/dm.js';
import {
  canonicalMail,
  type DeviceRecord,
  type DevicePublish,
  type DmStore,
  type MailIn,
  type MailOut,
  type PublishRefusal,
} from '../dm-store.js';
import { openPool, transactionOn, type Transaction } from './pool.js';
import { Int, toInt } from './rows.js';

/** Connections per server instance for direct messages (apart from the server store's). */
const POOL_SIZE = 4;
const UNIQUE_VIOLATION = '23505';

const DeviceRow = z.object({
  device_id: z.string(),
  username_lc: z.string(),
  username: z.string(),
  identity_key: z.string(),
  spk_id: Int,
  spk_key: z.string(),
  spk_sig: z.string(),
  created: Int,
  last_seen: Int,
});

const MailRow = z.object({
  seq: Int,
  envelope_id: z.string(),
  from_user: z.string(),
  from_device: z.string(),
  ts: Int,
  body: z.string(),
});

const PrekeyRow = z.object({ id: Int, key: z.string() });

const lc = (s: string) => s.toLowerCase();

/** The PostgreSQL DM store; `open` it (migrations) before use. */
export class PostgresDmStore implements DmStore {
  private readonly transaction: Transaction;

  private constructor(private readonly pool: pg.Pool) {
    this.transaction = transactionOn(pool);
  }

  /** Connects to `url` and applies pending migrations. */
  static async open(url: string): Promise<PostgresDmStore> {
    return new PostgresDmStore(await openPool(url, POOL_SIZE, ' (DMs)'));
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  async device(deviceId: string): Promise<DeviceRecord | undefined> {
    const r = await this.pool.query('SELECT * FROM dm_devices WHERE device_id = $1', [deviceId]);
    return r.rows[0] === undefined ? undefined : toDevice(r.rows[0]);
  }

  async devicesOf(username: string): Promise<DeviceRecord[]> {
    const r = await this.pool.query(
      'SELECT * FROM dm_devices WHERE username_lc = $1 ORDER BY created, device_id',
      [lc(username)],
    );
    return r.rows.map(toDevice);
  }

  async publish(
    p: DevicePublish,
    now: number,
    maxDevices: number,
    maxHeld: number,
  ): Promise<{ held: number; dropped: string[] } | { refused: PublishRefusal }> {
    try {
      return await this.transaction((c) => this.publishIn(c, p, now, maxDevices, maxHeld));
    } catch (err) {
      // Another user's publish of the same device id or identity key committed first: again,
      // now seeing it, so the refusal is the one SQLite gives.
      if (!isUniqueViolation(err)) throw err;
      return this.transaction((c) => this.publishIn(c, p, now, maxDevices, maxHeld));
    }
  }

  private async publishIn(
    c: pg.PoolClient,
    p: DevicePublish,
    now: number,
    maxDevices: number,
    maxHeld: number,
  ): Promise<{ held: number; dropped: string[] } | { refused: PublishRefusal }> {
    const user = lc(p.username);
    await lockUser(c, user);
    const spk = p.signedPrekey;
    const dropped: string[] = [];
    const oldRow = (
      await c.query('SELECT * FROM dm_devices WHERE device_id = $1 FOR UPDATE', [p.deviceId])
    ).rows[0];
    if (oldRow !== undefined) {
      const old = DeviceRow.parse(oldRow);
      if (old.username_lc !== user) return { refused: 'other_user' };
      if (old.identity_key !== p.identityKey) return { refused: 'identity_changed' };
      await c.query(
        `UPDATE dm_devices SET username = $1, spk_id = $2, spk_key = $3, spk_sig = $4,
           last_seen = $5 WHERE device_id = $6`,
        [p.username, spk.id, spk.key, spk.sig, now, p.deviceId],
      );
    } else {
      const used = await c.query('SELECT 1 FROM dm_devices WHERE identity_key = $1', [
        p.identityKey,
      ]);
      if (used.rows.length > 0) return { refused: 'identity_taken' };
      const count = await c.query('SELECT count(*) AS n FROM dm_devices WHERE username_lc = $1', [
        user,
      ]);
      const excess = toInt(count.rows[0]?.n ?? 0) - maxDevices + 1;
      if (excess > 0) {
        const gone = await c.query<{ device_id: string }>(
          `WITH gone AS (DELETE FROM dm_devices WHERE device_id IN (SELECT device_id
             FROM dm_devices WHERE username_lc = $1 AND device_id <> $2
             ORDER BY last_seen, created LIMIT $3) RETURNING device_id, last_seen, created)
           SELECT device_id FROM gone ORDER BY last_seen, created`,
          [user, p.deviceId, excess],
        );
        dropped.push(...gone.rows.map((r) => z.string().parse(r.device_id)));
      }
      await c.query(
        `INSERT INTO dm_devices (device_id, username_lc, username, identity_key, spk_id, spk_key,
           spk_sig, created, last_seen) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)`,
        [p.deviceId, user, p.username, p.identityKey, spk.id, spk.key, spk.sig, now],
      );
    }
    // One statement keeps the prekeys' arrival order (n) as given.
    await c.query(
      `INSERT INTO dm_prekeys (device_id, id, key)
       SELECT $1, k.id, k.key FROM unnest($2::bigint[], $3::text[]) WITH ORDINALITY AS k (id, key, o)
       ORDER BY k.o ON CONFLICT (device_id, id) DO NOTHING`,
      [p.deviceId, p.oneTimePrekeys.map((k) => k.id), p.oneTimePrekeys.map((k) => k.key)],
    );
    await c.query(
      `DELETE FROM dm_prekeys WHERE device_id = $1 AND n NOT IN
         (SELECT n FROM dm_prekeys WHERE device_id = $1 ORDER BY n DESC LIMIT $2)`,
      [p.deviceId, maxHeld],
    );
    const held = await c.query('SELECT count(*) AS n FROM dm_prekeys WHERE device_id = $1', [
      p.deviceId,
    ]);
    return { held: toInt(held.rows[0]?.n ?? 0), dropped };
  }

  async takePrekey(deviceId: string): Promise<{ id: number; key: string } | undefined> {
    // SKIP LOCKED: an ask running alongside takes the next prekey instead of waiting for this
    // one and then finding it gone (which would hand out nothing while others remain).
    const r = await this.pool.query(
      `DELETE FROM dm_prekeys WHERE n = (SELECT n FROM dm_prekeys WHERE device_id = $1
         ORDER BY n LIMIT 1 FOR UPDATE SKIP LOCKED)
       RETURNING id, key`,
      [deviceId],
    );
    return r.rows[0] === undefined ? undefined : PrekeyRow.parse(r.rows[0]);
  }

  async send(
    batch: readonly MailIn[],
    maxMailbox: number,
  ): Promise<Array<number | 'dup' | 'full'>> {
    if (batch.length === 0) return [];
    return this.transaction(async (c) => {
      // Every recipient device's row, in id order (two batches never wait on each other).
      const devices = [...new Set(batch.map((m) => m.toDevice))].sort();
      await c.query(
        'SELECT 1 FROM dm_devices WHERE device_id = ANY($1::text[]) ORDER BY device_id FOR UPDATE',
        [devices],
      );
      const out: Array<number | 'dup' | 'full'> = [];
      for (const m of batch) {
        const has = await c.query(
          'SELECT 1 FROM dm_mailbox WHERE to_device = $1 AND envelope_id = $2',
          [m.toDevice, m.id],
        );
        if (has.rows.length > 0) {
          out.push('dup');
          continue;
        }
        const n = await c.query('SELECT count(*) AS n FROM dm_mailbox WHERE to_device = $1', [
          m.toDevice,
        ]);
        if (toInt(n.rows[0]?.n ?? 0) >= maxMailbox) {
          out.push('full');
          continue;
        }
        const r = await c.query(
          `INSERT INTO dm_mailbox (to_user, to_device, envelope_id, from_user, from_device, ts,
             body) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING seq`,
          [lc(m.toUser), m.toDevice, m.id, m.fromUser, m.fromDevice, m.ts, JSON.stringify(m.body)],
        );
        out.push(toInt(r.rows[0]?.seq));
      }
      return out;
    });
  }

  async mail(deviceId: string, after: number, limit: number): Promise<MailOut[]> {
    const r = await this.pool.query(
      `SELECT seq, envelope_id, from_user, from_device, ts, body FROM dm_mailbox
       WHERE to_device = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
      [deviceId, after, limit],
    );
    return r.rows.map((row) => {
      const m = MailRow.parse(row);
      // Spelt canonically before the schema sees it (canonicalMail): a row from before the rule.
      const mail = canonicalMail({
        seq: m.seq,
        id: m.envelope_id,
        from: { username: m.from_user, deviceId: m.from_device },
        ts: m.ts,
        body: JSON.parse(m.body) as DmCipher,
      });
      return { ...mail, body: DmCipher.parse(mail.body) };
    });
  }

  async ack(deviceId: string, upTo: number): Promise<number> {
    const r = await this.pool.query('DELETE FROM dm_mailbox WHERE to_device = $1 AND seq <= $2', [
      deviceId,
      upTo,
    ]);
    return r.rowCount ?? 0;
  }

  async setBlocked(
    username: string,
    target: string,
    blocked: boolean,
    maxBlocks: number,
  ): Promise<boolean> {
    const user = lc(username);
    if (!blocked) {
      await this.pool.query('DELETE FROM dm_blocks WHERE username_lc = $1 AND blocked_lc = $2', [
        user,
        lc(target),
      ]);
      return true;
    }
    return this.transaction(async (c) => {
      await lockUser(c, user);
      const has = await c.query(
        'SELECT 1 FROM dm_blocks WHERE username_lc = $1 AND blocked_lc = $2',
        [user, lc(target)],
      );
      if (has.rows.length > 0) return true;
      const n = await c.query('SELECT count(*) AS n FROM dm_blocks WHERE username_lc = $1', [user]);
      if (toInt(n.rows[0]?.n ?? 0) >= maxBlocks) return false;
      await c.query(
        'INSERT INTO dm_blocks (username_lc, blocked_lc, blocked) VALUES ($1, $2, $3)',
        [user, lc(target), target],
      );
      await c.query('DELETE FROM dm_mailbox WHERE to_user = $1 AND lower(from_user) = $2', [
        user,
        lc(target),
      ]);
      return true;
    });
  }

  async blocks(username: string): Promise<string[]> {
    const r = await this.pool.query(
      'SELECT blocked FROM dm_blocks WHERE username_lc = $1 ORDER BY blocked_lc COLLATE "C"',
      [lc(username)],
    );
    return r.rows.map((row) => z.string().parse(row.blocked));
  }

  async isBlocked(username: string, other: string): Promise<boolean> {
    const r = await this.pool.query(
      'SELECT 1 FROM dm_blocks WHERE username_lc = $1 AND blocked_lc = $2',
      [lc(username), lc(other)],
    );
    return r.rows.length > 0;
  }

  async recordLookup(username: string, target: string): Promise<void> {
    await this.pool.query(
      `INSERT INTO dm_lookups (username_lc, target_lc) VALUES ($1, $2)
       ON CONFLICT (username_lc, target_lc) DO NOTHING`,
      [lc(username), lc(target)],
    );
  }

  async hasLookedUp(username: string, target: string): Promise<boolean> {
    const r = await this.pool.query(
      'SELECT 1 FROM dm_lookups WHERE username_lc = $1 AND target_lc = $2',
      [lc(username), lc(target)],
    );
    return r.rows.length > 0;
  }

  async bind(deviceId: string, sessionId: string, instance: string): Promise<void> {
    await this.pool.query(
      `INSERT INTO dm_bindings (device_id, session_id, instance) VALUES ($1, $2, $3)
       ON CONFLICT (device_id, session_id) DO UPDATE SET instance = excluded.instance`,
      [deviceId, sessionId, instance],
    );
  }

  async unbind(deviceId: string, sessionId: string, instance: string): Promise<void> {
    await this.pool.query(
      'DELETE FROM dm_bindings WHERE device_id = $1 AND session_id = $2 AND instance = $3',
      [deviceId, sessionId, instance],
    );
  }

  async boundSessions(deviceId: string): Promise<string[]> {
    const r = await this.pool.query(
      'SELECT session_id FROM dm_bindings WHERE device_id = $1 ORDER BY session_id',
      [deviceId],
    );
    return r.rows.map((row) => z.string().parse(row.session_id));
  }
}

/** Serializes the transactions that change one user's devices or blocks (its caps). */
async function lockUser(c: pg.PoolClient, userLc: string): Promise<void> {
  await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`hchat dm ${userLc}`]);
}

function toDevice(row: unknown): DeviceRecord {
  const r = DeviceRow.parse(row);
  return {
    deviceId: r.device_id,
    username: r.username,
    identityKey: r.identity_key,
    signedPrekey: { id: r.spk_id, key: r.spk_key, sig: r.spk_sig },
    created: r.created,
    lastSeen: r.last_seen,
  };
}

function isUniqueViolation(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === UNIQUE_VIOLATION;
}
