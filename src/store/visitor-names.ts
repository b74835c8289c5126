/**
 * Visitor names held in memory: the embedded (SQLite) server is one process, so what it holds is
 * the whole deployment's. Same behaviour as the PostgreSQL table (pg/visitor-names.ts), which
 * several instances share; test/store-conformance.test.ts runs one suite against both.
 */
import type { VisitorNameHeld, VisitorNameLease } from './server-store.js';

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

  renew(
    instance: string,
    leases: readonly VisitorNameHeld[],
    now: number,
    expiresAt: number,
  ): string[] {
    const renewed = new Map(leases.map((l) => [l.sessionId, 0]));
    for (const [k, h] of this.held) {
      const n = h.instance === instance ? renewed.get(h.sessionId) : undefined;
      if (n !== undefined) {
        h.expiresAt = expiresAt;
        renewed.set(h.sessionId, n + 1);
      } else if (h.expiresAt <= now) this.held.delete(k);
    }
    return leases
      .filter((l) => renewed.get(l.sessionId)! < new Set(l.keys).size)
      .map((l) => l.sessionId);
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
