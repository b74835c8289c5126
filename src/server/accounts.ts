/**
 * Passwords and session tokens (throttling: login-guard.ts; hash scheduling: scrypt-queue.ts).
 *
 * Passwords are kept only as scrypt hashes (`scrypt$N$r$p$salt$hash`, base64). Unknown users
 * cost the same scrypt as wrong passwords and get the same error, so neither timing nor wording
 * tells which usernames exist. Session tokens are signed with the server's Ed25519 key, so a
 * host can check a member's token without asking the server (SPEC §7).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  signClaims,
  type CertClaims,
  type GrantClaims,
  type TokenClaims,
} from '../shared/tokens.js';
import { newKeyPair } from '../shared/keygen.js';

const scrypt = promisify(crypto.scrypt) as (
  password: string,
  salt: Buffer,
  keylen: number,
  options: crypto.ScryptOptions,
) => Promise<Buffer>;

const SCRYPT = { N: 16384, r: 8, p: 1, keylen: 32 };

/** Hashes a password with a fresh random salt. */
export async function hashPassword(password: string): Promise<string> {
  const salt = crypto.randomBytes(16);
  const key = await scrypt(password, salt, SCRYPT.keylen, SCRYPT);
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

// Checked against when the user does not exist, so that path costs one scrypt too.
const DUMMY_HASH = `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${Buffer.alloc(16).toString('base64')}$${Buffer.alloc(32).toString('base64')}`;

/** Checks a password against a stored hash (or a dummy one when `stored` is undefined). */
export async function verifyPassword(
  password: string,
  stored: string | undefined,
): Promise<boolean> {
  const parts = (stored ?? DUMMY_HASH).split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [, n, r, p, salt, hash] = parts as [string, string, string, string, string, string];
  const expected = Buffer.from(hash, 'base64');
  const key = await scrypt(password, Buffer.from(salt, 'base64'), expected.length, {
    N: Number(n),
    r: Number(r),
    p: Number(p),
  });
  return crypto.timingSafeEqual(key, expected) && stored !== undefined;
}

/** The server's Ed25519 key: signs session tokens; its public half is given to every peer. */
export class TokenSigner {
  private constructor(
    private readonly privateKey: crypto.KeyObject,
    readonly publicKey: crypto.KeyObject,
  ) {}

  /** Loads `<dir>/server-key.pem`, creating it (owner-only) on first start. */
  static loadOrCreate(dir: string): TokenSigner {
    const file = path.join(dir, 'server-key.pem');
    let pem: string;
    try {
      pem = fs.readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      const { privateKey } = newKeyPair('ed25519');
      pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      fs.writeFileSync(file, pem, { mode: 0o600, flag: 'wx' });
    }
    let privateKey: crypto.KeyObject;
    try {
      privateKey = crypto.createPrivateKey(pem);
    } catch (err) {
      // Never replaced: every session and certificate of the deployment was signed with it.
      throw new Error(`${file} is damaged: ${(err as Error).message}`);
    }
    return new TokenSigner(privateKey, crypto.createPublicKey(privateKey));
  }

  /** Loads a deployment's signing key, which must be an Ed25519 private key (PEM). */
  static load(file: string): TokenSigner {
    let privateKey: crypto.KeyObject;
    try {
      privateKey = crypto.createPrivateKey(fs.readFileSync(file, 'utf8'));
    } catch (err) {
      throw new Error(`--signing-key ${file}: ${(err as Error).message}`);
    }
    if (privateKey.asymmetricKeyType !== 'ed25519')
      throw new Error(
        `--signing-key ${file}: an Ed25519 private key is needed, not ${privateKey.asymmetricKeyType}`,
      );
    return new TokenSigner(privateKey, crypto.createPublicKey(privateKey));
  }

  /** The public key as base64 SPKI DER, as sent in the server hello. */
  get publicKeyBase64(): string {
    return this.publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
  }

  /** Signs a session token or a key certificate. */
  sign(claims: TokenClaims | CertClaims | GrantClaims): string {
    return signClaims(claims, this.privateKey);
  }
}

/** A new random session id (URL-safe, 128 bits). */
export function newSessionId(): string {
  return crypto.randomBytes(16).toString('base64url');
}
