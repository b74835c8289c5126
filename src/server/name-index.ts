/**
 * Names that look alike are one name. A visitor may not take a name whose confusable skeleton
 * (Unicode TR39 §4: "аlice" with a Cyrillic а, "AIice" with a capital i) matches a registered user
 * or another live visitor, and a new account may not take one that matches an existing account.
 * The keys are shared/look-alike.ts's. This index answers at once on this instance; the store
 * holds every account's keys under a unique index, which decides between instances.
 * Registered users are indexed here; live visitors' keys are held in the store, where every
 * instance sees them (server-store.ts `claimVisitorName`).
 */
import { HchatError } from '../protocol/errors.js';
import { lookAlikeKeys } from '../shared/look-alike.js';

/** Registered usernames, by look-alike key. */
export class NameIndex {
  private readonly users = new Map<string, string>();

  constructor(usernames: Iterable<string>) {
    for (const u of usernames) this.addUser(u);
  }

  /** Throws E_USERNAME_TAKEN when `username` looks like a registered one. */
  checkNewUser(username: string): void {
    for (const k of lookAlikeKeys(username)) {
      const other = this.users.get(k);
      if (other !== undefined)
        throw new HchatError(
          'E_USERNAME_TAKEN',
          other.toLowerCase() === username.toLowerCase()
            ? 'that username is taken'
            : 'that username looks like one that is taken',
        );
    }
  }

  /** Throws E_NAME_TAKEN when `name` looks like a registered user (visitors: the store). */
  checkVisitor(name: string): void {
    for (const k of lookAlikeKeys(name))
      if (this.users.has(k))
        throw new HchatError('E_NAME_TAKEN', 'that name is or looks like a registered user');
  }

  /** A new account. */
  addUser(username: string): void {
    for (const k of lookAlikeKeys(username)) if (!this.users.has(k)) this.users.set(k, username);
  }
}
