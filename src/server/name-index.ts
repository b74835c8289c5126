/**
 * Names that look alike are one name. A visitor may not take a name whose confusable skeleton
 * (Unicode TR39 §4: "аlice" with a Cyrillic а, "AIice" with a capital i) matches a registered user
 * or another live visitor, and a new account may not take one that matches an existing account.
 * The keys are shared/look-alike.ts's. This index answers at once on this instance; the store
 * holds every account's keys under a unique index, which decides between instances.
 * Registered users are indexed here; live visitors' keys are held in the store, where every
 * instance sees them (server-store.ts `claimVisitorName`).
 * The special mentions (`here`: every online member, PROTOCOL.md §2.2) are no one's name: no
 * account, bot or visitor may take one, a look-alike of one, or one followed by dots (a mention
 * drops trailing dots, so `@here.` reads as `@here`). They are fixed, so every instance refuses
 * them alike without the store.
 */
import { SPECIAL_MENTIONS } from '../protocol/common.js';
import { HchatError } from '../protocol/errors.js';
import { lookAlikeKeys } from '../shared/look-alike.js';

/** Look-alike keys of the special mentions, to the mention. */
const RESERVED = new Map(
  SPECIAL_MENTIONS.flatMap((m) => lookAlikeKeys(m).map((k): [string, string] => [k, m])),
);

/**
 * The special mention `name` reads as or looks like (`here` for "HERE", "hеre" with a Cyrillic
 * е, "here."), if any. A leading `@` (a visitor name may hold one) and trailing dots are not
 * part of what a mention reads.
 */
export function reservedMention(name: string): string | undefined {
  const bare = name.trim().replace(/^@+/, '').replace(/\.+$/, '');
  for (const k of lookAlikeKeys(bare)) {
    const m = RESERVED.get(k);
    if (m !== undefined) return m;
  }
  return undefined;
}

/** Why a reserved name is refused, for its error. */
function reservedWhy(what: string, m: string): string {
  return `${what} is or looks like @${m}, which mentions every online member (PROTOCOL.md §2.2): choose another`;
}

/** Registered usernames, by look-alike key. */
export class NameIndex {
  private readonly users = new Map<string, string>();

  constructor(usernames: Iterable<string>) {
    for (const u of usernames) this.addUser(u);
  }

  /** Throws E_USERNAME_TAKEN when `username` looks like a registered one. */
  checkNewUser(username: string): void {
    const m = reservedMention(username);
    if (m !== undefined) throw new HchatError('E_USERNAME_TAKEN', reservedWhy('that username', m));
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
    const m = reservedMention(name);
    if (m !== undefined) throw new HchatError('E_NAME_TAKEN', reservedWhy('that name', m));
    for (const k of lookAlikeKeys(name))
      if (this.users.has(k))
        throw new HchatError('E_NAME_TAKEN', 'that name is or looks like a registered user');
  }

  /** A new account. */
  addUser(username: string): void {
    for (const k of lookAlikeKeys(username)) if (!this.users.has(k)) this.users.set(k, username);
  }
}
