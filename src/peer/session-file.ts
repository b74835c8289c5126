/**
 * The peer's session secret on disk (`<data>/session.json`, mode 0600): what lets a restarted
 * peer resume its session without the password. Written atomically (temporary file, rename).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { Role, SessionId } from '../protocol/common.js';

export const SavedSession = z.object({
  username: z.string().min(1).max(64),
  role: Role,
  sessionId: SessionId,
  token: z.string().min(1).max(2000),
  /** The server's certificate of this session's message key. */
  cert: z.string().min(1).max(2000),
  /** This session's Ed25519 message key (PKCS#8 DER, base64): a secret, like the token. */
  key: z.string().min(1).max(500),
});
export type SavedSession = z.infer<typeof SavedSession>;

/** Reads the saved session; a missing file is no session, a corrupt one is an error naming it. */
export function readSession(dir: string): SavedSession | undefined {
  const file = path.join(dir, 'session.json');
  let raw: string;
  try {
    raw = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new Error(`${file}: not valid JSON; delete it to log in again`);
  }
  const s = SavedSession.safeParse(parsed);
  if (!s.success)
    throw new Error(
      `${file}: not a saved session (${s.error.issues[0]?.message}); delete it to log in again`,
    );
  if (!isEd25519Key(s.data.key))
    // The crypto library's own message (an ASN.1 decoder's) would not say which file is wrong.
    throw new Error(
      `${file}: its "key" is not an Ed25519 private key (PKCS#8, base64); delete it to log in again`,
    );
  return s.data;
}

/** True when `pkcs8` (base64 DER) is an Ed25519 private key. */
function isEd25519Key(pkcs8: string): boolean {
  try {
    const k = crypto.createPrivateKey({
      key: Buffer.from(pkcs8, 'base64'),
      format: 'der',
      type: 'pkcs8',
    });
    return k.asymmetricKeyType === 'ed25519';
  } catch {
    return false;
  }
}

/** Saves (or, with undefined, deletes) the session, readable by the owner only. */
export function writeSession(dir: string, s: SavedSession | undefined): void {
  const file = path.join(dir, 'session.json');
  if (!s) {
    fs.rmSync(file, { force: true });
    return;
  }
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(s), { mode: 0o600 });
  fs.chmodSync(tmp, 0o600);
  fs.renameSync(tmp, file);
}

/**
 * Why the server ended the last session (`<data>/session-ended.json`): kept across a restart of
 * the peer, so that the login page still says it until a session starts again (README, GET
 * /api/session `ended`).
 */
export const SessionEnded = z.object({
  code: z.string().min(1).max(64),
  message: z.string().max(300),
});
export type SessionEnded = z.infer<typeof SessionEnded>;

/** The reason kept, if any; an unreadable or malformed file is no reason (it only informs). */
export function readSessionEnded(dir: string): SessionEnded | undefined {
  try {
    const e = SessionEnded.safeParse(
      JSON.parse(fs.readFileSync(path.join(dir, 'session-ended.json'), 'utf8')),
    );
    return e.success ? e.data : undefined;
  } catch {
    return undefined;
  }
}

/** Keeps (or, with undefined, forgets) why the last session ended, as writeSession does. */
export function writeSessionEnded(dir: string, e: SessionEnded | undefined): void {
  const file = path.join(dir, 'session-ended.json');
  if (!e) return fs.rmSync(file, { force: true });
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(e), { mode: 0o600 });
  fs.renameSync(tmp, file);
}
