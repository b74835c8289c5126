/**
 * This device's keys for direct messages (docs/PROTOCOL.md §10.1): an Ed25519 identity key made
 * once per account on this peer, a signed prekey replaced every DM_LIMITS.signedPrekeyDays, and
 * one-time prekeys kept topped up at the server. Only public halves leave the peer.
 */
import type { OpReq } from '../protocol/server-link.js';
import { DM_LIMITS } from '../shared/limits.js';
import type { PeerDmStore, SignedPrekeyRow } from '../store/peer-dm-store.js';
import { ed25519KeyPair, randomBytes, x25519KeyPair, type KeyPair } from '../e2e/primitives.js';
import { signPrekey } from '../e2e/x3dh.js';
import type { ServerLink } from './server-link.js';

const DAY_MS = 24 * 60 * 60 * 1000;
/** One-time prekeys a device brings the server's stock up to. */
const PREKEY_STOCK = 100;
/** How long an older signed prekey still opens sessions that were started with it. */
const OLD_SIGNED_PREKEY_MS = 30 * DAY_MS;

/** This device's private keys, as sessions need them. */
export interface OwnKeys {
  deviceId: string;
  identity: KeyPair;
  signedPrekey(id: number): KeyPair | undefined;
  oneTimePrekey(id: number): KeyPair | undefined;
}

export class DmKeys {
  constructor(private readonly store: PeerDmStore) {}

  /** This account's device on this peer, made on first use. */
  own(account: string): OwnKeys {
    let d = this.store.device(account);
    if (!d) {
      const id = ed25519KeyPair();
      this.store.saveDevice(account, {
        deviceId: randomBytes(16).toString('base64url'),
        idPublic: id.publicKey,
        idSecret: id.secretKey,
      });
      d = this.store.device(account)!;
    }
    const device = d;
    return {
      deviceId: device.deviceId,
      identity: { publicKey: device.idPublic, secretKey: device.idSecret },
      signedPrekey: (id) => {
        const k = this.store.signedPrekeys(account).find((s) => s.id === id);
        return k && { publicKey: k.public, secretKey: k.secret };
      },
      oneTimePrekey: (id) => {
        const k = this.store.oneTimePrekey(account, id);
        return k && { publicKey: k.public, secretKey: k.secret };
      },
    };
  }

  /**
   * Publishes this device at the server (binding the session to it), with a fresh signed prekey
   * when the current one is old, and one-time prekeys up to the stock when the server runs low.
   */
  async publish(link: ServerLink, account: string): Promise<string> {
    const own = this.own(account);
    const spk = this.currentSignedPrekey(account, own);
    const base: OpReq<'dm_publish'> = {
      deviceId: own.deviceId,
      identityKey: own.identity.publicKey.toString('base64url'),
      signedPrekey: {
        id: spk.id,
        key: spk.public.toString('base64url'),
        sig: spk.sig.toString('base64url'),
      },
      oneTimePrekeys: [],
    };
    const held = (await link.request('dm_publish', base)).oneTimePrekeys;
    if (held < DM_LIMITS.prekeyLowWater) {
      const fresh = this.newOneTimePrekeys(account, PREKEY_STOCK - held);
      await link.request('dm_publish', {
        ...base,
        oneTimePrekeys: fresh.map((k) => ({ id: k.id, key: k.public.toString('base64url') })),
      });
    }
    return own.deviceId;
  }

  private currentSignedPrekey(account: string, own: OwnKeys): SignedPrekeyRow {
    const now = Date.now();
    const current = this.store.signedPrekeys(account)[0];
    if (current && now - current.created < DM_LIMITS.signedPrekeyDays * DAY_MS) return current;
    const kp = x25519KeyPair();
    const row: SignedPrekeyRow = {
      id: this.store.maxPrekeyId(account) + 1,
      public: kp.publicKey,
      secret: kp.secretKey,
      sig: signPrekey(own.identity.secretKey, kp.publicKey),
      created: now,
    };
    this.store.addSignedPrekey(account, row);
    this.store.pruneSignedPrekeys(account, now - OLD_SIGNED_PREKEY_MS);
    return row;
  }

  private newOneTimePrekeys(
    account: string,
    n: number,
  ): Array<{ id: number; public: Buffer; secret: Buffer }> {
    const first = this.store.maxPrekeyId(account) + 1;
    const keys = Array.from({ length: Math.min(n, DM_LIMITS.maxPrekeysPerPublish) }, (_, i) => {
      const kp = x25519KeyPair();
      return { id: first + i, public: kp.publicKey, secret: kp.secretKey };
    });
    // Kept before they are published: a prekey the server hands out always has its secret here.
    this.store.addOneTimePrekeys(account, keys);
    return keys;
  }
}
