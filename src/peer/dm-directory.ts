/**
 * What the server says of users' devices (`dm_devices`, docs/PROTOCOL.md §10.1): their identity
 * keys, handed to the trust rules (dm-trust.ts) every time, and where each device is online now
 * (its tracker entry, when its user lets this one see it), kept for the next deliveries.
 */
import type { TrackerEntry } from '../protocol/common.js';
import type { Device } from '../protocol/dm.js';
import type { DmTrust } from './dm-trust.js';
import type { ServerLink } from './server-link.js';

export class DmDirectory {
  /** Device lists by user (lower case), with the entry of each device that is online. */
  private readonly lists = new Map<string, Array<Device & { entry?: TrackerEntry }>>();
  /** Canonical spelling of each user name seen. */
  private readonly names = new Map<string, string>();
  /** When each user's device keys were last asked (ms). */
  private readonly asked = new Map<string, number>();

  constructor(private readonly trust: DmTrust) {}

  /**
   * Asks the server for these users' devices and records them; answers them by user (lower
   * case). Users the server does not know are absent.
   */
  async refresh(
    server: ServerLink,
    account: string,
    usernames: string[],
    /** Only checking keys (of a sender, or for safety numbers): no lookup, no addresses. */
    check = false,
  ): Promise<Map<string, Device[]>> {
    // Stamped before asking: a device published while the answer travels is asked again.
    const now = Date.now();
    if (this.asked.size > 10_000) this.asked.clear();
    for (const u of usernames) this.asked.set(askKey(account, u), now);
    const { users } = await server.request('dm_devices', { usernames, check });
    const out = new Map<string, Device[]>();
    for (const u of users) {
      const k = u.username.toLowerCase();
      if (!check) this.lists.set(k, u.devices);
      this.names.set(k, u.username);
      this.trust.update(account, u.username, u.devices);
      out.set(k, u.devices);
    }
    return out;
  }

  /** When `account` last asked the server for `username`'s device keys, if ever. */
  askedAt(account: string, username: string): number | undefined {
    return this.asked.get(askKey(account, username));
  }

  /** The entry of a device, if the last answer listed it online. */
  entry(username: string, deviceId: string): TrackerEntry | undefined {
    return this.lists.get(username.toLowerCase())?.find((d) => d.deviceId === deviceId)?.entry;
  }

  /** The user's name as the server spells it, if seen. */
  canonical(username: string): string | undefined {
    return this.names.get(username.toLowerCase());
  }

  /** Forgets everything (logout). */
  clear(): void {
    this.lists.clear();
    this.asked.clear();
  }
}

function askKey(account: string, username: string): string {
  return `${account.toLowerCase()}|${username.toLowerCase()}`;
}
