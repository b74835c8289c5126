/**
 * Logouts owed to the server (SECURITY.md "Local processes": a logout the server did not hear).
 * A session ended here while the server did not answer (the link was down, or dropped during the
 * logout) is still live there: its token and certificate stay good, for whoever copied them,
 * until they expire. So its token is kept in the peer's store (mode 0600, as `session.json`
 * keeps the live one) and logged out as soon as the server answers again, on a connection of its
 * own: `resume` with it, then `logout`.
 * The newest MAX_OWED are kept (the server retires an account's oldest sessions beyond its cap).
 * A token goes only to a server of the deployment that signed it (it verifies with the key the
 * server shows): one of another deployment (the peer pointed elsewhere meanwhile) is neither
 * handed a live session's token nor taken for an answer that the session is gone.
 */
import { z } from 'zod';
import { HchatError } from '../protocol/errors.js';
import type { ConnectionLog } from '../shared/connlog.js';
import { publicKeyFromBase64, readClaims, verifyToken } from '../shared/tokens.js';
import type { ServerLink } from './server-link.js';

export const MAX_OWED = 16;
const KEY = 'owedLogouts';
const Owed = z.array(z.string().min(1).max(2000)).max(MAX_OWED);

export interface OwedLogoutsDeps {
  store: { get(key: string): string | undefined; set(key: string, value: string): void };
  log: ConnectionLog;
  /** Runs `task` on a connection of its own to the server (it throws when none opens). */
  onSpareLink<T>(task: (link: ServerLink) => Promise<T>): Promise<T>;
}

export class OwedLogouts {
  private paying: Promise<void> | undefined;
  private again = false;

  constructor(private readonly d: OwedLogoutsDeps) {}

  /** The tokens still owed, oldest first (a damaged record is none: nothing to log out). */
  list(): string[] {
    const raw = this.d.store.get(KEY);
    if (raw === undefined) return [];
    try {
      const parsed = Owed.safeParse(JSON.parse(raw));
      return parsed.success ? parsed.data : [];
    } catch {
      return [];
    }
  }

  /** Keeps `token` to log out once the server answers. */
  owe(token: string, sessionId: string): void {
    const owed = [...this.list().filter((t) => t !== token), token].slice(-MAX_OWED);
    this.d.store.set(KEY, JSON.stringify(owed));
    this.d.log.write('logout', { peer: 'server', session: sessionId, result: 'owed' });
  }

  /**
   * Logs the owed sessions out at the server, one connection for all; what fails for want of an
   * answer stays owed for the next time the server link comes up. One run at a time: a call
   * during a run makes it go again once done.
   */
  pay(): Promise<void> {
    if (this.paying) {
      this.again = true;
      return this.paying;
    }
    if (this.list().length === 0) return Promise.resolve();
    this.paying = this.run().finally(() => {
      this.paying = undefined;
      if (this.again) {
        this.again = false;
        void this.pay();
      }
    });
    return this.paying;
  }

  private async run(): Promise<void> {
    try {
      await this.d.onSpareLink(async (link) => {
        const spki = link.server?.publicKey;
        const key = spki === undefined ? undefined : publicKeyFromBase64(spki);
        for (const token of this.list()) {
          // Signed by another deployment: kept for it, never sent here.
          if (!key || !verifyToken(token, key)) continue;
          const sid = readClaims(token)?.sid;
          let done = false;
          try {
            await link.request('resume', { token });
            await link.request('logout', {});
            done = true;
          } catch (err) {
            // Revoked or expired already: nothing owed.
            if (!(err instanceof HchatError) || err.code !== 'E_SESSION_INVALID') throw err;
          }
          this.settle(token);
          this.d.log.write('logout', {
            peer: 'server',
            session: typeof sid === 'string' ? sid : undefined,
            result: done ? 'ok' : 'gone',
          });
        }
      });
    } catch {
      // No answer (offline, the connection dropped, refused for now): still owed.
    }
  }

  private settle(token: string): void {
    this.d.store.set(KEY, JSON.stringify(this.list().filter((t) => t !== token)));
  }
}
