/**
 * The server's side of direct messages (docs/PROTOCOL.md §10.1, §10.2): published devices and
 * their prekeys, each device's mailbox of envelopes, who blocks whom and who looked up whose
 * devices. Only public keys, ciphertext and metadata: the server never holds anything that opens
 * a message. Two implementations answer alike (test/dm-store-conformance.test.ts): SQLite in the
 * data folder for one process (sqlite-dm-store.ts), PostgreSQL for several instances sharing one
 * database (pg/pg-dm-store.ts), where every rule below holds across instances too.
 */
import type { DmCipher } from '../protocol/dm.js';
import { canonicalBase64url } from './canonical-spelling.js';

/** A published device, as stored. */
export interface DeviceRecord {
  deviceId: string;
  username: string;
  identityKey: string;
  signedPrekey: { id: number; key: string; sig: string };
  created: number;
  lastSeen: number;
}

/** What a device publishes (`dm_publish`). */
export interface DevicePublish {
  deviceId: string;
  username: string;
  identityKey: string;
  signedPrekey: { id: number; key: string; sig: string };
  oneTimePrekeys: ReadonlyArray<{ id: number; key: string }>;
}

/** An envelope to leave in a mailbox. */
export interface MailIn {
  id: string;
  toUser: string;
  toDevice: string;
  fromUser: string;
  fromDevice: string;
  ts: number;
  body: DmCipher;
}

/** An envelope read from a mailbox. */
export interface MailOut {
  seq: number;
  id: string;
  from: { username: string; deviceId: string };
  ts: number;
  body: DmCipher;
}

/**
 * An envelope as a mailbox row gives it back, its keys and sender device id in their canonical
 * spelling (PROTOCOL.md §1): one left before `dm_send` required that spelling (a hostile sender's
 * respelt `dh`: the same bytes) made every `dm_fetch` of its device fail, and so stopped that
 * device's mailbox for good (nothing after it was read, nothing was acknowledged).
 */
export function canonicalMail(m: MailOut): MailOut {
  const { body } = m;
  return {
    ...m,
    from: { ...m.from, deviceId: canonicalBase64url(m.from.deviceId, 16) },
    body: {
      ...body,
      ...(body.prekey
        ? {
            prekey: {
              ...body.prekey,
              ik: canonicalBase64url(body.prekey.ik, 32),
              ek: canonicalBase64url(body.prekey.ek, 32),
            },
          }
        : {}),
      dh: canonicalBase64url(body.dh, 32),
    },
  };
}

/** Why `publish` refused. */
export type PublishRefusal = 'other_user' | 'identity_changed' | 'identity_taken';

/** The devices, prekeys, mailboxes, blocks and lookups of direct messages at the server. */
export interface DmStore {
  close(): Promise<void>;

  device(deviceId: string): Promise<DeviceRecord | undefined>;

  /** A user's devices, oldest first. */
  devicesOf(username: string): Promise<DeviceRecord[]>;

  /**
   * Stores or refreshes a device and adds its new one-time prekeys (an id held already keeps
   * its first key), keeping the newest `maxHeld`. A new device past `maxDevices` drops the
   * user's longest-unseen other devices, with their prekeys and mailboxes. Answers how many
   * one-time prekeys are held, the devices dropped, or why it refused. One transaction.
   */
  publish(
    p: DevicePublish,
    now: number,
    maxDevices: number,
    maxHeld: number,
  ): Promise<{ held: number; dropped: string[] } | { refused: PublishRefusal }>;

  /**
   * Hands out (and deletes) the device's oldest one-time prekey, if it has one. A prekey is
   * handed out once, whoever asks at the same time (on any instance).
   */
  takePrekey(deviceId: string): Promise<{ id: number; key: string } | undefined>;

  /**
   * Leaves envelopes in mailboxes, in one transaction. Per envelope: its seq, `dup` when the
   * device holds that envelope id already (one row), or `full` when the mailbox holds
   * `maxMailbox` envelopes. Recipients must exist (checked by the caller).
   */
  send(batch: readonly MailIn[], maxMailbox: number): Promise<Array<number | 'dup' | 'full'>>;

  /** A device's envelopes after `after`, oldest first, at most `limit`. */
  mail(deviceId: string, after: number, limit: number): Promise<MailOut[]>;

  /** Drops a device's envelopes up to `upTo`; answers how many. */
  ack(deviceId: string, upTo: number): Promise<number>;

  /**
   * Blocks or unblocks `target` (its display spelling) for `username`; a block also drops what
   * `target` left in `username`'s mailboxes. Answers false when the block list is full.
   */
  setBlocked(
    username: string,
    target: string,
    blocked: boolean,
    maxBlocks: number,
  ): Promise<boolean>;

  /** The users `username` blocks, by name. */
  blocks(username: string): Promise<string[]>;

  /** True when `username` blocks `other`. */
  isBlocked(username: string, other: string): Promise<boolean>;

  /** Records that `username` asked for `target`'s devices. */
  recordLookup(username: string, target: string): Promise<void>;

  /** True when `username` has asked for `target`'s devices. */
  hasLookedUp(username: string, target: string): Promise<boolean>;

  /**
   * Records that a connection of `sessionId` on server instance `instance` speaks for the device
   * (`dm_publish`): any instance then finds the session's tracker entry (its replica holds every
   * instance's) as the device's address. The newest binding of a (device, session) wins.
   */
  bind(deviceId: string, sessionId: string, instance: string): Promise<void>;

  /** Forgets that binding, if `instance` still holds it (the session may have moved on). */
  unbind(deviceId: string, sessionId: string, instance: string): Promise<void>;

  /** The sessions bound to the device, on any instance. */
  boundSessions(deviceId: string): Promise<string[]>;
}
