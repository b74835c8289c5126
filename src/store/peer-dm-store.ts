/**
 * A peer's direct messages (docs/PROTOCOL.md §10), in `<data>/dms.db`, per account: this
 * device's keys, its ratchet sessions with other devices, the devices it knows of each contact
 * (trust on first use, verification), the envelopes already taken (exactly once) and the block
 * list; its conversations, messages and outbox are in the part it extends
 * (dm-conversation-store.ts).
 *
 * Secret keys live here as they do in `session.json`: on the user's own disk, mode 0600. A
 * one-time prekey's secret is deleted when a session used it, and a ratchet session keeps only
 * the keys it still needs (src/e2e/ratchet.ts): what was deleted cannot decrypt anything again.
 */
import path from 'node:path';
import { openDatabase } from './sqlite.js';
import { DmConversationStore, lc } from './dm-conversation-store.js';
export type {
  ConversationRow,
  DmMessageRow,
  DmShownRow,
  OutboxRow,
} from './dm-conversation-store.js';

const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE device (
    account TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    id_public BLOB NOT NULL,
    id_private BLOB NOT NULL,
    created INTEGER NOT NULL
  );
  CREATE TABLE signed_prekeys (
    account TEXT NOT NULL, id INTEGER NOT NULL,
    public BLOB NOT NULL, private BLOB NOT NULL, sig BLOB NOT NULL, created INTEGER NOT NULL,
    PRIMARY KEY (account, id)
  );
  CREATE TABLE onetime_prekeys (
    account TEXT NOT NULL, id INTEGER NOT NULL,
    public BLOB NOT NULL, private BLOB NOT NULL,
    PRIMARY KEY (account, id)
  );
  CREATE TABLE sessions (
    account TEXT NOT NULL, user_lc TEXT NOT NULL, device_id TEXT NOT NULL,
    -- JSON: [{state, origin: {ik, ek} | null, prekey: {...} | null}], current first
    records TEXT NOT NULL,
    updated INTEGER NOT NULL,
    PRIMARY KEY (account, user_lc, device_id)
  );
  CREATE TABLE known_devices (
    account TEXT NOT NULL, user_lc TEXT NOT NULL, device_id TEXT NOT NULL,
    identity_key TEXT NOT NULL, first_seen INTEGER NOT NULL,
    PRIMARY KEY (account, user_lc, device_id)
  );
  CREATE TABLE contacts (
    account TEXT NOT NULL, user_lc TEXT NOT NULL, username TEXT NOT NULL,
    -- the fingerprint of the device keys last seen, and the one the user verified (if any)
    seen_fp TEXT NOT NULL, verified_fp TEXT, changed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account, user_lc)
  );
  CREATE TABLE conversations (
    account TEXT NOT NULL, id TEXT NOT NULL, members TEXT NOT NULL,
    created INTEGER NOT NULL, last_ts INTEGER,
    unread INTEGER NOT NULL DEFAULT 0, mentions INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account, id)
  );
  CREATE TABLE messages (
    account TEXT NOT NULL, id TEXT NOT NULL, conversation TEXT NOT NULL,
    kind TEXT NOT NULL, author TEXT NOT NULL, ts INTEGER NOT NULL, text TEXT NOT NULL,
    mentions TEXT NOT NULL, state TEXT NOT NULL, source TEXT NOT NULL,
    -- the sealed envelopes exist (own messages): delivery may start
    sealed INTEGER NOT NULL DEFAULT 0,
    seq INTEGER NOT NULL,
    -- a message is its author's: another member reusing its id makes another row, never hides it
    author_lc TEXT NOT NULL,
    PRIMARY KEY (account, conversation, author_lc, id)
  );
  CREATE INDEX messages_by_id ON messages (account, id);
  CREATE INDEX messages_by_conversation ON messages (account, conversation, seq);
  CREATE INDEX messages_unsealed ON messages (account, sealed, state);
  CREATE TABLE outbox (
    account TEXT NOT NULL, envelope_id TEXT NOT NULL, message_id TEXT NOT NULL,
    to_user TEXT NOT NULL, to_device TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (account, envelope_id)
  );
  CREATE INDEX outbox_by_message ON outbox (account, message_id);
  CREATE TABLE seen_envelopes (
    account TEXT NOT NULL, envelope_id TEXT NOT NULL, seen INTEGER NOT NULL,
    PRIMARY KEY (account, envelope_id)
  ) WITHOUT ROWID;
  CREATE TABLE blocks (account TEXT NOT NULL, user_lc TEXT NOT NULL, PRIMARY KEY (account, user_lc));
  `,
  // An author's edits and deletions of their messages are rows of their own (kind 'edit' or
  // 'delete'), naming the message they change: sent and received as messages are, folded in
  // when messages are read (dm-conversation-store.ts).
  `
  ALTER TABLE messages ADD COLUMN target TEXT;
  CREATE INDEX messages_by_target ON messages (account, conversation, author_lc, target)
    WHERE target IS NOT NULL;
  `,
  // Replies and reactions: a message may answer another (`reply_to` by `reply_author`); a
  // reaction is a row of its own (kind 'react' or 'unreact', its `emoji`) naming any member's
  // message (`target` by `target_author`), folded in when messages are read.
  `
  ALTER TABLE messages ADD COLUMN target_author TEXT;
  ALTER TABLE messages ADD COLUMN emoji TEXT;
  ALTER TABLE messages ADD COLUMN reply_to TEXT;
  ALTER TABLE messages ADD COLUMN reply_author TEXT;
  CREATE INDEX messages_reactions ON messages (account, conversation, target)
    WHERE kind IN ('react', 'unreact');
  `,
  // Where each conversation was last read (the newest row's seq then): a message deleted after
  // it came and before it was read no longer counts as unread. Conversations read to their end
  // start there; others start at 0 (their count stands until they are read).
  `
  ALTER TABLE conversations ADD COLUMN read_seq INTEGER NOT NULL DEFAULT 0;
  UPDATE conversations SET read_seq = coalesce((SELECT max(seq) FROM messages), 0)
    WHERE unread = 0;
  `,
  // A conversation's messages are listed in their writers' clocks' order (`ts`), not in the
  // order they arrived, which differs from device to device.
  `
  CREATE INDEX messages_by_time ON messages (account, conversation, ts, id, author_lc)
    WHERE kind IN ('message', 'notice');
  `,
];

export interface DeviceRow {
  deviceId: string;
  idPublic: Buffer;
  idSecret: Buffer;
}
export interface PrekeyRow {
  id: number;
  public: Buffer;
  secret: Buffer;
}
export interface SignedPrekeyRow extends PrekeyRow {
  sig: Buffer;
  created: number;
}
export interface ContactRow {
  username: string;
  seenFp: string;
  verifiedFp: string | null;
  changed: boolean;
}

export class PeerDmStore extends DmConversationStore {
  constructor(dataDir: string) {
    super(openDatabase(path.join(dataDir, 'dms.db'), MIGRATIONS));
  }

  close(): void {
    this.db.close();
  }

  // ---- this device ----------------------------------------------------------------------------

  device(account: string): DeviceRow | undefined {
    const r = this.db
      .prepare(
        'SELECT device_id AS deviceId, id_public AS idPublic, id_private AS idSecret FROM device WHERE account = ?',
      )
      .get(lc(account)) as DeviceRow | undefined;
    return r;
  }

  saveDevice(account: string, d: DeviceRow): void {
    this.db
      .prepare(
        'INSERT OR IGNORE INTO device (account, device_id, id_public, id_private, created) VALUES (?, ?, ?, ?, ?)',
      )
      .run(lc(account), d.deviceId, d.idPublic, d.idSecret, Date.now());
  }

  signedPrekeys(account: string): SignedPrekeyRow[] {
    return this.db
      .prepare(
        'SELECT id, public, private AS secret, sig, created FROM signed_prekeys WHERE account = ? ORDER BY created DESC',
      )
      .all(lc(account)) as SignedPrekeyRow[];
  }

  addSignedPrekey(account: string, k: SignedPrekeyRow): void {
    this.db
      .prepare(
        'INSERT INTO signed_prekeys (account, id, public, private, sig, created) VALUES (?, ?, ?, ?, ?, ?)',
      )
      .run(lc(account), k.id, k.public, k.secret, k.sig, k.created);
  }

  /**
   * Drops the signed prekeys replaced before `before`: a key stays as long after its successor
   * was made (senders may still hold it), whatever its own age.
   */
  pruneSignedPrekeys(account: string, before: number): void {
    const keys = this.signedPrekeys(account); // newest first
    const drop = this.db.prepare('DELETE FROM signed_prekeys WHERE account = ? AND id = ?');
    for (let i = 1; i < keys.length; i++)
      if (keys[i - 1]!.created < before) drop.run(lc(account), keys[i]!.id);
  }

  oneTimePrekey(account: string, id: number): PrekeyRow | undefined {
    return this.db
      .prepare(
        'SELECT id, public, private AS secret FROM onetime_prekeys WHERE account = ? AND id = ?',
      )
      .get(lc(account), id) as PrekeyRow | undefined;
  }

  addOneTimePrekeys(account: string, keys: PrekeyRow[]): void {
    const ins = this.db.prepare(
      'INSERT INTO onetime_prekeys (account, id, public, private) VALUES (?, ?, ?, ?)',
    );
    this.tx(() => {
      for (const k of keys) ins.run(lc(account), k.id, k.public, k.secret);
    });
  }

  /** Forgets a one-time prekey's secret once a session used it (forward secrecy). */
  dropOneTimePrekey(account: string, id: number): void {
    this.db
      .prepare('DELETE FROM onetime_prekeys WHERE account = ? AND id = ?')
      .run(lc(account), id);
  }

  maxPrekeyId(account: string): number {
    const a = lc(account);
    const r = this.db
      .prepare(
        `SELECT max(id) AS m FROM (SELECT id FROM onetime_prekeys WHERE account = ?
           UNION ALL SELECT id FROM signed_prekeys WHERE account = ?)`,
      )
      .get(a, a) as { m: number | null };
    return r.m ?? 0;
  }

  // ---- sessions with other devices ------------------------------------------------------------

  sessionRecords(account: string, user: string, deviceId: string): string | undefined {
    const r = this.db
      .prepare('SELECT records FROM sessions WHERE account = ? AND user_lc = ? AND device_id = ?')
      .get(lc(account), lc(user), deviceId) as { records: string } | undefined;
    return r?.records;
  }

  saveSessionRecords(account: string, user: string, deviceId: string, records: string): void {
    this.db
      .prepare(
        `INSERT INTO sessions (account, user_lc, device_id, records, updated) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (account, user_lc, device_id) DO UPDATE SET records = excluded.records,
           updated = excluded.updated`,
      )
      .run(lc(account), lc(user), deviceId, records, Date.now());
  }

  dropSessions(account: string, user: string, deviceId: string): void {
    this.db
      .prepare('DELETE FROM sessions WHERE account = ? AND user_lc = ? AND device_id = ?')
      .run(lc(account), lc(user), deviceId);
  }

  // ---- what is known of other users' devices --------------------------------------------------

  knownDevices(account: string, user: string): Array<{ deviceId: string; identityKey: string }> {
    return this.db
      .prepare(
        'SELECT device_id AS deviceId, identity_key AS identityKey FROM known_devices WHERE account = ? AND user_lc = ? ORDER BY device_id',
      )
      .all(lc(account), lc(user)) as Array<{ deviceId: string; identityKey: string }>;
  }

  /** Replaces what is known of `user`'s devices with `devices`. */
  setKnownDevices(
    account: string,
    user: string,
    devices: Array<{ deviceId: string; identityKey: string }>,
  ): void {
    const a = lc(account);
    const u = lc(user);
    this.db.prepare('DELETE FROM known_devices WHERE account = ? AND user_lc = ?').run(a, u);
    const ins = this.db.prepare(
      'INSERT INTO known_devices (account, user_lc, device_id, identity_key, first_seen) VALUES (?, ?, ?, ?, ?)',
    );
    for (const d of devices) ins.run(a, u, d.deviceId, d.identityKey, Date.now());
  }

  contact(account: string, user: string): ContactRow | undefined {
    const r = this.db
      .prepare(
        'SELECT username, seen_fp AS seenFp, verified_fp AS verifiedFp, changed FROM contacts WHERE account = ? AND user_lc = ?',
      )
      .get(lc(account), lc(user)) as
      (Omit<ContactRow, 'changed'> & { changed: number }) | undefined;
    return r && { ...r, changed: r.changed === 1 };
  }

  saveContact(account: string, c: ContactRow): void {
    this.db
      .prepare(
        `INSERT INTO contacts (account, user_lc, username, seen_fp, verified_fp, changed) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (account, user_lc) DO UPDATE SET username = excluded.username,
           seen_fp = excluded.seen_fp, verified_fp = excluded.verified_fp, changed = excluded.changed`,
      )
      .run(lc(account), lc(c.username), c.username, c.seenFp, c.verifiedFp, c.changed ? 1 : 0);
  }

  // ---- exactly once, blocks -------------------------------------------------------------------

  seen(account: string, envelopeId: string): boolean {
    return !!this.db
      .prepare('SELECT 1 FROM seen_envelopes WHERE account = ? AND envelope_id = ?')
      .get(lc(account), envelopeId);
  }

  markSeen(account: string, envelopeId: string): void {
    this.db
      .prepare('INSERT OR IGNORE INTO seen_envelopes (account, envelope_id, seen) VALUES (?, ?, ?)')
      .run(lc(account), envelopeId, Date.now());
  }

  blocked(account: string): string[] {
    return (
      this.db
        .prepare('SELECT user_lc AS u FROM blocks WHERE account = ? ORDER BY u')
        .all(lc(account)) as Array<{
        u: string;
      }>
    ).map((r) => r.u);
  }

  setBlocked(account: string, users: string[]): void {
    const a = lc(account);
    this.tx(() => {
      this.db.prepare('DELETE FROM blocks WHERE account = ?').run(a);
      const ins = this.db.prepare('INSERT OR IGNORE INTO blocks (account, user_lc) VALUES (?, ?)');
      for (const u of users) ins.run(a, lc(u));
    });
  }
}
