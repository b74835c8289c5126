/**
 * Whether a data folder is its user's own, and so is the path to it: the rules OpenSSH applies
 * to `~/.ssh` and the files in it (StrictModes; misc.c `safe_path` and `secure_permissions`, as
 * Debian builds it, which lets a user's private group write). The folder must belong to the user
 * and no one else may write it; each folder above it must belong to the user or to root, and
 * one that others may write must have the sticky bit (`/tmp`), so that nobody else can rename
 * the folder away and put one of theirs in its place between two starts. Group write counts as
 * the user's own when the group's only member is the folder's owner (a user-private group, as
 * Debian makes with umask 002). Reads the group and user databases from /etc (local accounts:
 * a group only a directory service knows counts as shared).
 */
import fs from 'node:fs';
import path from 'node:path';

/** What is wrong with the data folder `dir` for the user `uid`, or undefined when nothing is. */
export function untrustedFolder(dir: string, uid: number): string | undefined {
  const real = fs.realpathSync(dir);
  const st = fs.statSync(real);
  if (st.uid !== uid)
    return (
      `--data ${dir} belongs to another user (uid ${st.uid}, this process runs as ${uid}): ` +
      'give a folder of your own (made if missing)'
    );
  if (othersMayWrite(st))
    return (
      `--data ${dir} may be written by other users (mode ${mode(st)}): ` +
      `make it private first (chmod 700 ${dir})`
    );
  for (let at = path.dirname(real); ; at = path.dirname(at)) {
    const up = fs.statSync(at);
    if (up.uid !== uid && up.uid !== 0)
      return (
        `--data ${dir} is inside ${at}, which belongs to another user (uid ${up.uid}): they ` +
        'could move the data folder away and put one of theirs in its place; give a folder ' +
        'whose every parent is yours or root’s'
      );
    if (othersMayWrite(up) && !(up.mode & 0o1000))
      return (
        `--data ${dir} is inside ${at}, which other users may write (mode ${mode(up)}, not ` +
        'sticky): they could move the data folder away and put one of theirs in its place; ' +
        `give a folder elsewhere, or make that one private (chmod go-w ${at})`
      );
    if (at === path.dirname(at)) return undefined;
  }
}

function mode(st: fs.Stats): string {
  return (st.mode & 0o7777).toString(8);
}

/** Whether someone other than the owner may write: world write, or a group not private to it. */
function othersMayWrite(st: fs.Stats): boolean {
  if (st.mode & 0o002) return true;
  return (st.mode & 0o020) !== 0 && !privateGroup(st.gid, st.uid);
}

/**
 * Whether group `gid` has exactly one member, user `uid` (secure_permissions: members by their
 * primary group and by the group's list; no member at all is not private either).
 */
function privateGroup(gid: number, uid: number): boolean {
  const group = readDb('/etc/group').find((f) => Number(f[2]) === gid);
  const users = readDb('/etc/passwd');
  const owner = users.find((f) => Number(f[2]) === uid)?.[0];
  if (!group || owner === undefined) return false;
  const members = new Set<string>();
  for (const f of users) if (Number(f[3]) === gid) members.add(f[0]!);
  for (const name of (group[3] ?? '').split(',')) if (name !== '') members.add(name);
  return members.size === 1 && members.has(owner);
}

/** The colon-separated records of an /etc database; none when it cannot be read. */
function readDb(file: string): string[][] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => l.split(':'));
}
