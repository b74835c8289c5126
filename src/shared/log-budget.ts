/**
 * A budget of the connection log (LOG_LIMITS, docs/PROTOCOL.md §6): for the records a party
 * without a session can cause, for the records of reads answered to sessions, and for those of
 * direct messages. Pure counting, no I/O and no clock of its own: the log asks it, with the time,
 * whether a record may be written, and writes the `suppressed` records it hands back.
 *
 * A window starts at the first such record and lasts `windowMs`. In it each group (an address
 * group, an account) has `perGroup` records and all groups together `total`; past its own share
 * a group's records are counted against it, past the total the others' are counted under the
 * group `*`. So a window writes at most the total, plus one summary per group that spent its
 * share (at most total / share of them), plus one for `*`.
 */

/** One budget's settings (from LOG_LIMITS). */
export interface LogBudgetLimits {
  /** Records written per group per window. */
  perGroup: number;
  /** Records written per window from every group together. */
  total: number;
  /** The window: it starts at the first record and lasts this long. */
  windowMs: number;
}

/** What a `suppressed` record says: how many records of `group` were left out, of which events. */
export interface Suppressed {
  /**
   * The group: an address group (`127.0.0.0/24`, `2001:db8::/64`), an account (`user:<name>`,
   * `reads:<name>`, `dm:<name>`), or `*` for those past the total.
   */
  group: string;
  suppressed: number;
  /** The events left out, comma-separated (`open,refuse,close`, `sync,fetch`). */
  events: string;
  /** When the window began (ISO time). */
  since: string;
}

interface Tally {
  written: number;
  suppressed: number;
  events: Set<string>;
}

/** Counts records per group and window. */
export class LogBudget {
  private start: number | undefined;
  private total = 0;
  private readonly groups = new Map<string, Tally>();
  private readonly overflow: Tally = { written: 0, suppressed: 0, events: new Set() };

  constructor(readonly limits: LogBudgetLimits) {}

  /** When the current window ends (undefined: none is open). */
  get windowEnd(): number | undefined {
    return this.start === undefined ? undefined : this.start + this.limits.windowMs;
  }

  /**
   * Whether a record of `ev` from `group` may be written, in the window open now (one opens at
   * `now` when none is). The caller ends a window that ended (`windowEnd`) first.
   */
  take(group: string, ev: string, now: number): boolean {
    if (this.start === undefined) this.start = now;
    let tally = this.groups.get(group);
    if (tally && tally.written >= this.limits.perGroup) {
      count(tally, ev);
      return false;
    }
    if (this.total >= this.limits.total) {
      count(this.overflow, ev); // no tally of its own: the map holds at most `total` groups
      return false;
    }
    if (!tally) this.groups.set(group, (tally = { written: 0, suppressed: 0, events: new Set() }));
    tally.written++;
    this.total++;
    return true;
  }

  /** Closes the current window (its time is up, or the log closes): its summaries, if any. */
  end(): Suppressed[] {
    if (this.start === undefined) return [];
    const since = new Date(this.start).toISOString();
    const out: Suppressed[] = [];
    for (const [group, t] of this.groups) if (t.suppressed > 0) out.push(summary(group, t, since));
    if (this.overflow.suppressed > 0) out.push(summary('*', this.overflow, since));
    this.start = undefined;
    this.total = 0;
    this.groups.clear();
    this.overflow.suppressed = 0;
    this.overflow.events.clear();
    return out;
  }
}

function count(t: Tally, ev: string): void {
  t.suppressed++;
  t.events.add(ev);
}

function summary(group: string, t: Tally, since: string): Suppressed {
  return { group, suppressed: t.suppressed, events: [...t.events].join(','), since };
}
