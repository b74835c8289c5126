/**
 * The connection log (SPEC §9): `connections.log` in a process's data folder, one ASCII line per
 * record, `key=value` pairs separated by spaces, always starting with `t=<ISO time> ev=<event>`.
 * Values outside [A-Za-z0-9._:@/+,=~-] are percent-encoded, so a line never holds a space inside a
 * value, a newline or a non-ASCII byte. At `maxRecords` records the file is renamed to
 * `connections.log.1` (replacing the previous one) and a new file starts.
 *
 * Lines are buffered and written together once per event-loop turn (and synchronously on close),
 * so a busy process does one write system call per turn, not one per record.
 *
 * Records a party without a session can cause go through `outsider`, which writes at most
 * LOG_LIMITS of them per address group and window and says how many it left out (`suppressed`):
 * a stranger cannot rotate the records of sessions out of the log (log-budget.ts). A session's
 * refused requests go through `refusal`, within its account's share, and the reads answered to
 * it through `read`, within its reader's share, and the records of direct messages through `dm`,
 * within the share of the account that caused them, for the same reason. What tells where stored
 * data came from goes through `write`, always. docs/PROTOCOL.md §6 lists the events and keys.
 */
import fs from 'node:fs';
import path from 'node:path';
import { addressPrefix } from './address-prefix.js';
import { LOG_LIMITS, withDefaults } from './limits.js';
import { LogBudget } from './log-budget.js';

/** Records per file before rotation. */
export const LOG_ROTATE_RECORDS = 10_000;

/** A value of a record: absent values (undefined) are left out of the line. */
export type LogValue = string | number | boolean | undefined;

const SAFE = /^[A-Za-z0-9._:@/+,=~-]*$/;

/** Encodes one value so that it fits the line grammar. */
export function encodeLogValue(v: string | number | boolean): string {
  const s = String(v);
  if (s.length > 0 && SAFE.test(s)) return s;
  if (s.length === 0) return '""';
  let out = '';
  for (const byte of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += byte < 0x80 && SAFE.test(c) ? c : '%' + byte.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

/** Formats a record as one line (without the newline). */
export function formatRecord(
  ev: string,
  fields: Record<string, LogValue>,
  at = new Date(),
): string {
  let line = `t=${at.toISOString()} ev=${encodeLogValue(ev)}`;
  for (const key in fields) {
    const v = fields[key];
    if (v !== undefined) line += ` ${key}=${encodeLogValue(v)}`;
  }
  return line;
}

/** Parses a line back into its fields (for tests and tools). */
export function parseRecord(line: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of line.split(' ')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) continue;
    const raw = pair.slice(eq + 1);
    out[pair.slice(0, eq)] = raw === '""' ? '' : decodeURIComponent(raw);
  }
  return out;
}

/** Names the other end of a link: `server`, or `host:<user>@<ip>:<port>` for a peer hosting. */
export function hostName(user: string, ip: string, port: number): string {
  return `host:${user}@${ip}:${port}`;
}

/** Names a peer as the server sees it: `peer:<user>@<ip>:<port>` (`-` before login). */
export function peerName(user: string | undefined, ip: string, port: number): string {
  return `peer:${user ?? '-'}@${ip}:${port}`;
}

/** The log's shares (LOG_LIMITS by default). */
export type LogLimits = { -readonly [K in keyof typeof LOG_LIMITS]: number };

/** How the log groups and bounds the records of parties without a session, and of reads. */
export interface OutsiderOptions {
  /** The address group of an IP (the door's grouping); ADDRESS_LIMITS by default. */
  prefixOf?: (ip: string) => string;
  limits?: Partial<LogLimits>;
}

/** Whom a read was answered to (`ConnectionLog.read`): a session's role and user, its address. */
export interface Reader {
  role: 'user' | 'visitor';
  username: string;
  ip: string;
}

/** One bounded share of the log: its budget, and the timer that ends its window. */
interface Share {
  readonly budget: LogBudget;
  timer: NodeJS.Timeout | undefined;
}

/** Appends records to `<dir>/connections.log`, rotating at `maxRecords`. */
export class ConnectionLog {
  readonly file: string;
  private fd: number;
  private records: number;
  private queue: string[] = [];
  private scheduled = false;
  private closed = false;
  /** Strangers' records and sessions' refusals. */
  private readonly outsiders: Share;
  /** Records of reads answered to sessions. */
  private readonly readers: Share;
  /** Records of direct messages. */
  private readonly dms: Share;
  private readonly prefixOf: (ip: string) => string;

  constructor(
    dir: string,
    private readonly maxRecords = LOG_ROTATE_RECORDS,
    outsiders: OutsiderOptions = {},
  ) {
    this.file = path.join(dir, 'connections.log');
    this.records = countLines(this.file);
    this.fd = fs.openSync(this.file, 'a', 0o600);
    const l = withDefaults<LogLimits>(LOG_LIMITS, outsiders.limits);
    this.outsiders = {
      budget: new LogBudget({
        perGroup: l.outsiderRecordsPerGroup,
        total: l.outsiderRecordsTotal,
        windowMs: l.outsiderWindowMs,
      }),
      timer: undefined,
    };
    this.readers = {
      budget: new LogBudget({
        perGroup: l.readRecordsPerGroup,
        total: l.readRecordsTotal,
        windowMs: l.readWindowMs,
      }),
      timer: undefined,
    };
    this.dms = {
      budget: new LogBudget({
        perGroup: l.dmRecordsPerAccount,
        total: l.dmRecordsTotal,
        windowMs: l.dmWindowMs,
      }),
      timer: undefined,
    };
    this.prefixOf = outsiders.prefixOf ?? ((ip) => addressPrefix(ip));
  }

  /** Adds one record. */
  write(ev: string, fields: Record<string, LogValue> = {}): void {
    if (this.closed) return;
    this.queue.push(formatRecord(ev, fields));
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /**
   * Adds a record that a party without a session at `ip` caused, within its address group's
   * share (LOG_LIMITS); past it the record is counted, and a `suppressed` record says how many
   * were left out when the window ends (or the log closes).
   * Records of sessions go through `write`, always.
   */
  outsider(ip: string, ev: string, fields: Record<string, LogValue> = {}): void {
    this.within(this.outsiders, this.prefixOf(ip), ev, fields);
  }

  /**
   * Adds a `refuse` record of a session of `username`, within the account's share (its group is
   * `user:<name>`, lower case): an account's refused requests cost the refuser nothing, and
   * unbounded they too would rotate every other record out of the log. Accepted requests are
   * written with `write`, always.
   */
  refusal(username: string, fields: Record<string, LogValue>): void {
    this.within(this.outsiders, `user:${username.toLowerCase()}`, 'refuse', fields);
  }

  /**
   * Adds a record of a read answered to `reader` (`sync`, `fetch`, `search`, `serve`,
   * `dm_fetch`), within its reader's share: an account's (group `reads:<name>`, lower case), or
   * that of the visitors of its address group (`reads:visitors@<group>`), who have no account. A
   * read allowed is as cheap to repeat as one refused, and unbounded its records would rotate
   * out those of where the stored data came from. Those are written with `write`, always.
   */
  read(reader: Reader, ev: string, fields: Record<string, LogValue>): void {
    const group =
      reader.role === 'user'
        ? `reads:${reader.username.toLowerCase()}`
        : `reads:visitors@${this.prefixOf(reader.ip)}`;
    this.within(this.readers, group, ev, fields);
  }

  /**
   * Adds a record of a direct message (docs/PROTOCOL.md §10), within the share of the account
   * that caused it (group `dm:<name>`, lower case): an envelope's sender (`dm_send` at the server;
   * `dm_in`, `dm_refused`, `dm_blocked`, `dm_out`, `dm_drop` at a peer), or the session whose
   * `dm_publish` or `dm_ack` it is. Sending costs an account one request per 50 envelopes, and
   * unbounded one record per envelope would rotate every other record out of the server's log,
   * and of the recipient's. A DM record is traffic, not provenance: who sent an envelope is kept
   * with it (the mailbox row, the message a device stored), and the server keeps no envelope
   * once its device took it.
   */
  dm(account: string, ev: string, fields: Record<string, LogValue>): void {
    this.within(this.dms, `dm:${account.toLowerCase()}`, ev, fields);
  }

  /** Writes the record if `group` has a share left in the window; counts it otherwise. */
  private within(share: Share, group: string, ev: string, fields: Record<string, LogValue>): void {
    if (this.closed) return;
    const now = Date.now();
    const end = share.budget.windowEnd;
    if (end !== undefined && now >= end) this.endWindow(share);
    if (share.budget.take(group, ev, now)) return this.write(ev, fields);
    if (share.timer === undefined) {
      const wait = Math.max(0, (share.budget.windowEnd ?? now) - now);
      share.timer = setTimeout(() => this.endWindow(share), wait);
      share.timer.unref(); // a process may end sooner: `close` writes the summaries then
    }
  }

  /** Writes what is queued now. */
  flush(): void {
    this.scheduled = false;
    while (this.queue.length > 0 && !this.closed) {
      const room = this.maxRecords - this.records;
      const batch = this.queue.splice(0, room);
      fs.writeSync(this.fd, batch.join('\n') + '\n');
      this.records += batch.length;
      if (this.records >= this.maxRecords) this.rotate();
    }
  }

  /** Flushes and closes the file. */
  close(): void {
    if (this.closed) return;
    this.endWindow(this.outsiders);
    this.endWindow(this.readers);
    this.endWindow(this.dms);
    this.flush();
    this.closed = true;
    fs.closeSync(this.fd);
  }

  /** Ends a share's window: one `suppressed` record per group that had records left out. */
  private endWindow(share: Share): void {
    clearTimeout(share.timer);
    share.timer = undefined;
    for (const s of share.budget.end()) this.write('suppressed', { ...s });
  }

  private rotate(): void {
    fs.closeSync(this.fd);
    fs.renameSync(this.file, this.file + '.1');
    this.fd = fs.openSync(this.file, 'a', 0o600);
    this.records = 0;
  }
}

function countLines(file: string): number {
  try {
    const data = fs.readFileSync(file);
    let n = 0;
    for (const b of data) if (b === 0x0a) n++;
    return n;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
}
