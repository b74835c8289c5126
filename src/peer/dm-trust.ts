/**
 * Whose keys this device trusts (docs/PROTOCOL.md §10.5, SECURITY.md "Direct messages"): the
 * device keys first seen for a contact are kept (trust on first use); a later list that differs
 * — a key replaced, a device added or removed, as a server substituting a key would make it —
 * changes the contact's safety number, puts a notice in every conversation with it and drops
 * the sessions with devices whose key changed. The user compares safety numbers out of band
 * and marks a contact verified; a change after that clears the mark until verified again.
 */
import crypto from 'node:crypto';
import { HchatError } from '../protocol/errors.js';
import type { Device } from '../protocol/dm.js';
import { fingerprint, formatSafetyNumber, safetyNumber } from '../e2e/safety-number.js';
import type { PeerDmStore } from '../store/peer-dm-store.js';
import type { DmSessions } from './dm-sessions.js';

export interface SafetyInfo {
  username: string;
  safetyNumber: string;
  verified: boolean;
  changed: boolean;
  devices: number;
}

export class DmTrust {
  constructor(
    private readonly store: PeerDmStore,
    private readonly sessions: DmSessions,
    /** A notice was added to a conversation. */
    private readonly noticed: (conversationId: string, id: string, author: string) => void,
    /** This device of the account, with its true identity key. */
    private readonly ownDevice: (account: string) => Device,
  ) {}

  /**
   * Records the device list the server gave for `username`; answers true when it differs from
   * the one known before (never on first sight), with a notice in each conversation it is in.
   */
  update(account: string, username: string, devices: Device[]): boolean {
    const known = this.store.knownDevices(account, username);
    const own = account.toLowerCase() === username.toLowerCase();
    if (own) {
      // The server's word is never taken about this device itself: its own key is known here.
      const me = this.ownDevice(account);
      devices = [...devices.filter((d) => d.deviceId !== me.deviceId), me];
    }
    const next = [...devices]
      .map((d) => ({ deviceId: d.deviceId, identityKey: d.identityKey }))
      .sort((a, b) => (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0));
    const same =
      known.length === next.length &&
      known.every(
        (k, i) => k.deviceId === next[i]!.deviceId && k.identityKey === next[i]!.identityKey,
      );
    if (same) return false;
    const fp = fingerprintOf(username, next);
    const contact = own ? undefined : this.store.contact(account, username);
    this.store.tx(() => {
      this.store.setKnownDevices(account, username, next);
      for (const k of known) {
        const now = next.find((d) => d.deviceId === k.deviceId);
        if (!now || now.identityKey !== k.identityKey)
          this.sessions.drop(account, username, k.deviceId);
      }
      if (own) return;
      // An empty list is no key at all: after it, the next keys are a first sight — unless
      // the keys known before it had already changed (a server emptying the list to reset
      // the warning does not clear it).
      const firstSight = !contact || (known.length === 0 && !contact.changed);
      this.store.saveContact(account, {
        username,
        seenFp: fp,
        verifiedFp: firstSight ? null : contact.verifiedFp,
        changed: firstSight ? false : true,
      });
    });
    if (own ? known.length === 0 : !contact || (known.length === 0 && !contact.changed))
      return false;
    // Own devices changed too: a device nobody added would get a copy of everything sent.
    const text = own
      ? 'Your devices changed (one was added, removed or replaced). If you did not log in somewhere new, someone may be reading your messages.'
      : `${username}'s safety number changed. Compare it again before you trust new messages.`;
    for (const c of this.store.conversations(account)) {
      if (!c.members.some((m) => m.toLowerCase() === username.toLowerCase())) continue;
      const id = crypto.randomUUID();
      this.store.addMessage(
        account,
        {
          id,
          conversation: c.id,
          kind: 'notice',
          author: username,
          ts: Date.now(),
          text,
          mentions: [],
          state: 'delivered',
          source: 'local',
        },
        { unread: false },
      );
      this.noticed(c.id, id, username);
    }
    return true;
  }

  /** The identity key this device knows for one device of `username`, if any. */
  knownKey(account: string, username: string, deviceId: string): string | undefined {
    return this.store.knownDevices(account, username).find((d) => d.deviceId === deviceId)
      ?.identityKey;
  }

  /**
   * Whether every one of `others` is verified (and unchanged since), and whether any changed:
   * from the stored marks alone, without computing a safety number (5,200 hashes each).
   */
  status(account: string, others: string[]): { verified: boolean; changed: boolean } {
    const contacts = others.map((u) => this.store.contact(account, u));
    return {
      verified:
        contacts.length > 0 &&
        contacts.every((c) => !!c && c.seenFp !== '' && c.verifiedFp === c.seenFp),
      changed: contacts.some((c) => !!c?.changed),
    };
  }

  /** Safety numbers of the account with each of `others`. */
  safety(account: string, others: string[]): SafetyInfo[] {
    const mine = keysOf(this.store.knownDevices(account, account));
    return others.map((u) => {
      const theirs = this.store.knownDevices(account, u);
      const c = this.store.contact(account, u);
      const fp = fingerprintOf(u, theirs);
      return {
        username: c?.username ?? u,
        // Empty until both users' device keys are known (the first exchange fetches them).
        safetyNumber:
          mine.length && theirs.length
            ? formatSafetyNumber(
                safetyNumber(
                  { username: account.toLowerCase(), keys: mine },
                  { username: u.toLowerCase(), keys: keysOf(theirs) },
                ),
              )
            : '',
        verified: !!c && fp !== '' && c.verifiedFp === fp,
        changed: !!c && c.changed,
        devices: theirs.length,
      };
    });
  }

  /** Marks (or unmarks) a contact's current keys verified; either way the change is seen. */
  setVerified(account: string, username: string, verified: boolean): void {
    const theirs = this.store.knownDevices(account, username);
    const fp = fingerprintOf(username, theirs);
    if (verified && !fp)
      throw new HchatError('E_NOT_FOUND', `no device key of ${username} is known yet: write first`);
    this.store.saveContact(account, {
      username: this.store.contact(account, username)?.username ?? username,
      seenFp: fp,
      verifiedFp: verified ? fp : null,
      changed: false,
    });
  }
}

function keysOf(devices: Array<{ identityKey: string }>): Buffer[] {
  return devices.map((d) => Buffer.from(d.identityKey, 'base64url'));
}

/** A user's 30 digits, or '' while none of its device keys is known. */
function fingerprintOf(username: string, devices: Array<{ identityKey: string }>): string {
  return devices.length ? fingerprint(username.toLowerCase(), keysOf(devices)) : '';
}
