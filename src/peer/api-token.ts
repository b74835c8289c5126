/**
 * The local API's credential (SPEC §7, §10; README "Local API"), as Syncthing's API key and
 * Jupyter's token: 256 random bits, base64url, kept in `<data>/api-token` (mode 0600), made on
 * first start and reused; `hchat peer --api-token` (HCHAT_API_TOKEN) sets it instead.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { LOCAL_API_LIMITS } from '../shared/limits.js';

/** What a token may look like: URL-safe (it goes in the printed URL as is), 128 bits or more. */
export const API_TOKEN_PATTERN = /^[A-Za-z0-9._~-]{22,256}$/;

/** The token given, else the one in `<dataDir>/api-token`, made there when missing. */
export function loadApiToken(dataDir: string, given?: string): string {
  if (given !== undefined) {
    if (!API_TOKEN_PATTERN.test(given))
      throw new Error('the API token must be 22 to 256 characters of A-Z a-z 0-9 - _ . ~');
    return given;
  }
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = path.join(dataDir, 'api-token');
  try {
    const token = fs.readFileSync(file, 'utf8').trim();
    if (!API_TOKEN_PATTERN.test(token))
      throw new Error(`${file}: not an API token; delete it and a new one is made at start`);
    fs.chmodSync(file, 0o600);
    return token;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const token = crypto.randomBytes(LOCAL_API_LIMITS.apiTokenBytes).toString('base64url');
  // Written whole under another name, then renamed: a crash never leaves half a token.
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${token}\n`, { mode: 0o600, flag: 'wx' });
  fs.renameSync(tmp, file);
  return token;
}
