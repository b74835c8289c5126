/**
 * The status each account chose on this peer (SPEC §3, README "Status"): `online`, `invisible`
 * or `offline`, kept in `peer.db` (`kv`, one key per account) across restarts. It is the
 * logged-in account's choice, not the peer's: while nobody is logged in nobody chose anything,
 * so the peer connects to the server (the login form needs it, and a logout the server did not
 * hear goes out then); another account logged in next has its own. Logging in is choosing to be
 * reachable: an account that had chosen `offline` here comes back `online` (a login needs the
 * server); `invisible` stays chosen.
 */
import type { Status } from '../protocol/common.js';
import type { SavedSession } from './session-file.js';

/** Where one peer keeps small values (PeerStore's `kv`). */
export interface StatusStore {
  get(key: string): string | undefined;
  set(key: string, value: string): void;
  delete(key: string): void;
}

/** Before each account had its own: one choice for the whole peer. */
const PEER_WIDE_KEY = 'status';

type Account = Pick<SavedSession, 'role' | 'username'>;

/** The key of an account's choice (user names are unique without regard to case). */
function keyOf(a: Account): string {
  return `status:${a.role}:${a.username.toLowerCase()}`;
}

function parse(raw: string | undefined): Status {
  return raw === 'invisible' || raw === 'offline' ? raw : 'online';
}

/** The accounts' chosen statuses on one peer. */
export class StatusChoices {
  constructor(
    private readonly store: StatusStore,
    private readonly session: () => Account | undefined,
  ) {
    // A data folder of an earlier version kept one choice for the peer: it was the choice of
    // whoever is still logged in, and nobody's when nobody is (a peer left `offline` with nobody
    // logged in could never connect again to let anyone log in).
    const peerWide = store.get(PEER_WIDE_KEY);
    if (peerWide === undefined) return;
    const s = session();
    if (s && parse(peerWide) !== 'online') store.set(keyOf(s), parse(peerWide));
    store.delete(PEER_WIDE_KEY);
  }

  /** The logged-in account's status; `online` while nobody is logged in. */
  get current(): Status {
    const s = this.session();
    return s ? parse(this.store.get(keyOf(s))) : 'online';
  }

  /** The logged-in account chooses `status` (false when nobody is logged in: nothing kept). */
  choose(status: Status): boolean {
    const s = this.session();
    if (!s) return false;
    if (status === 'online') this.store.delete(keyOf(s));
    else this.store.set(keyOf(s), status);
    return true;
  }

  /** The logged-in account just logged in: an `offline` it had chosen here is over. */
  loggedIn(): void {
    if (this.current === 'offline') this.choose('online');
  }
}
