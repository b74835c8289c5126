/**
 * This device's ratchet sessions with other devices (docs/PROTOCOL.md §10.3). A device pair may
 * hold several sessions — both sides may start one at the same moment, or a device may be
 * reinstalled — so, as Signal does, each pair keeps a current session and a few previous ones:
 * a message opens under whichever it belongs to, and a session that a message arrives under
 * becomes current. Nothing is written until the caller commits (in the same transaction as
 * what the message changed), so a crash never leaves a ratchet ahead of what was stored.
 */
import { HchatError } from '../protocol/errors.js';
import type { DmCipher, PrekeyBundle } from '../protocol/dm.js';
import {
  deserializeSession,
  open,
  seal,
  serializeSession,
  startSession,
  type Session,
} from '../e2e/session.js';
import type { PeerDmStore } from '../store/peer-dm-store.js';
import type { OwnKeys } from './dm-keys.js';

/** Sessions kept per device pair: the current one and the previous ones. */
const KEPT = 5;

/** A message opened, and what storing it must also write. */
export interface Opened {
  plaintext: Buffer;
  /** The sender device's identity key (raw Ed25519), as the session knows it. */
  remoteIdentity: string;
  /** Writes the sessions' new state: call inside the transaction that stores the message. */
  commit(): void;
}

export class DmSessions {
  constructor(private readonly store: PeerDmStore) {}

  has(account: string, user: string, deviceId: string): boolean {
    return this.records(account, user, deviceId).length > 0;
  }

  /** Starts a session with a device from its prekey bundle (X3DH); it becomes current. */
  start(account: string, own: OwnKeys, bundle: PrekeyBundle): void {
    let state: Session;
    try {
      state = startSession(own.identity, bundle).state;
    } catch (err) {
      // A bundle whose prekey signature does not hold (the server is not trusted for keys).
      const why = err instanceof Error ? err.message : String(err);
      throw new HchatError(
        'E_BAD_SIGNATURE',
        `${bundle.username}/${bundle.deviceId}: ${why.slice(0, 120)}`,
      );
    }
    const records = this.records(account, bundle.username, bundle.deviceId);
    this.save(account, bundle.username, bundle.deviceId, [state, ...records]);
  }

  /** Encrypts for a device under its current session; `commit` writes the advanced state. */
  seal(
    account: string,
    user: string,
    deviceId: string,
    plaintext: Buffer,
  ): { body: DmCipher; commit(): void } {
    const records = this.records(account, user, deviceId);
    const cur = records[0];
    if (!cur) throw new HchatError('E_INTERNAL', `no session with ${user}/${deviceId}`);
    const r = seal(cur, plaintext);
    return {
      body: r.body,
      commit: () => this.save(account, user, deviceId, [r.state, ...records.slice(1)]),
    };
  }

  /**
   * Decrypts a device's message: under the session its X3DH part names (a new one when none
   * does), else under the current session and then the previous ones. Throws the ratchet's
   * error (a duplicate, a forgery) when none opens it; then nothing changes.
   */
  open(account: string, own: OwnKeys, user: string, deviceId: string, body: DmCipher): Opened {
    const records = this.records(account, user, deviceId);
    const keys = {
      identity: own.identity,
      signedPrekeys: own.signedPrekey,
      oneTimePrekeys: own.oneTimePrekey,
    };
    // A session's first messages name its start: open them under that session, or a new one.
    const p = body.prekey;
    const order: number[] = p
      ? [
          records.findIndex(
            (r) =>
              r.remoteIdentity.toString('base64url') === p.ik &&
              r.ek.toString('base64url') === p.ek,
          ),
        ]
      : records.map((_, i) => i);
    let lastError: unknown = new HchatError(
      'E_BAD_REQUEST',
      'dm: no session with that device, and no prekey part to start one',
    );
    for (const i of order) {
      try {
        const r = open(i >= 0 ? records[i] : undefined, keys, body);
        const rest = records.filter((_, j) => j !== i);
        return {
          plaintext: r.plaintext,
          remoteIdentity: r.remoteIdentity.toString('base64url'),
          commit: () => {
            if (r.usedOneTimePrekey !== undefined)
              this.store.dropOneTimePrekey(account, r.usedOneTimePrekey);
            this.save(account, user, deviceId, [r.state, ...rest]);
          },
        };
      } catch (err) {
        lastError = err;
      }
    }
    if (lastError instanceof HchatError) throw lastError;
    const why = lastError instanceof Error ? lastError.message : String(lastError);
    throw new HchatError('E_BAD_REQUEST', `dm: does not decrypt (${why.slice(0, 120)})`);
  }

  /** Forgets every session with a device (its identity key changed: start over). */
  drop(account: string, user: string, deviceId: string): void {
    this.store.dropSessions(account, user, deviceId);
  }

  private records(account: string, user: string, deviceId: string): Session[] {
    const raw = this.store.sessionRecords(account, user, deviceId);
    return raw ? (JSON.parse(raw) as string[]).map(deserializeSession) : [];
  }

  private save(account: string, user: string, deviceId: string, records: Session[]): void {
    const kept = records.slice(0, KEPT).map(serializeSession);
    this.store.saveSessionRecords(account, user, deviceId, JSON.stringify(kept));
  }
}
