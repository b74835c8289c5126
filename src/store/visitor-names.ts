/**
 * Visitor names held in memory: the embedded (SQLite) server is one process, so what it holds is
 * the whole deployment's. Same behaviour as the PostgreSQL table (pg/visitor-names.ts), which
 * several instances share; test/store-conformance.test.ts runs one suite against both.
 */
import type { VisitorNameLease } from './server-store.js';

/** Look-alike key → the lease holding it. */
export class MemoryVisitorNames {
  private readonly held = new Map<string, Omit<VisitorNameLease, 'keys'>>();

  claim(lease: VisitorNameLease, now: number): boolean {
    for (const k of lease.keys) {
      const h = this.held.get(k);
      if (h && h.sessionId !== lease.sessionId && h.expiresAt > now) return false;
    }
    const { sessionId, instance, expiresAt } = lease;
    for (const k of lease.keys) this.held.set(k, { sessionId, instance, expiresAt });
    return true;
  }

  renew(instance: string, sessionIds: readonly string[], now: number, expiresAt: number): void {
    const renewed = new Set(sessionIds);
    for (const [k, h] of this.held) {
      if (h.instance === instance && renewed.has(h.sessionId)) h.expiresAt = expiresAt;
      else if (h.expiresAt <= now) this.held.delete(k);
    }
  }

  holder(sessionId: string, now: number): string | undefined {
    for (const h of this.held.values())
      if (h.sessionId === sessionId && h.expiresAt > now) return h.instance;
    return undefined;
  }

  /** The sessions an unexpired lease holds at `now`. */
  heldSessions(now: number): Set<string> {
    const out = new Set<string>();
    for (const h of this.held.values()) if (h.expiresAt > now) out.add(h.sessionId);
    return out;
  }

  release(sessionId: string, instance: string): void {
    for (const [k, h] of this.held)
      if (h.sessionId === sessionId && h.instance === instance) this.held.delete(k);
  }
}
