/**
 * Who reads what of this peer's own copy through the local API (docs/SECURITY.md "Local
 * processes"): one rule for every read route (pages, the page around a message, search, files,
 * members, unread counts, typing) and for what the peer stores of a replica's pushes. Several
 * accounts may use one peer in turn; each reads only the channels it holds a row of here, and a
 * visitor only while the channel allows visitors (PROTOCOL.md §2.2 _Channel items at each
 * replica_): the server and hosts answer a visitor as if such a channel did not exist.
 */
import { HchatError } from '../protocol/errors.js';
import type { LocalChannel } from '../store/peer-store.js';

/** The role of the session reading. */
export type Reader = 'user' | 'visitor';

/**
 * True when a session of `role` reads `c`, the row its account holds of the channel here: a
 * user's rows are its memberships (joined or owned), a visitor's the channels it views, which
 * it reads only while they allow visitors.
 */
export function mayRead(role: Reader, c: LocalChannel | undefined): boolean {
  return c !== undefined && (role === 'user' || c.allowVisitors);
}

/**
 * True for an answer of the server or the host that says this session may no longer read the
 * channel at all (what a visitor gets once it stops allowing visitors).
 */
export function refusesReading(err: unknown): boolean {
  return (
    err instanceof HchatError && (err.code === 'E_CHANNEL_NOT_FOUND' || err.code === 'E_NOT_MEMBER')
  );
}
