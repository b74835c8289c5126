/**
 * Parsing of command-line values: each flag's text is checked here, once, with an error that names
 * the flag and what it expected.
 */
import { InvalidArgumentError } from 'commander';
import { API_TOKEN_PATTERN } from '../peer/api-token.js';
import { FINGERPRINT } from '../peer/server-trust.js';
import { parseNatsUrl } from '../server/nats-url.js';

/** A TCP/UDP port; 0 means any free port. */
export function parsePort(value: string): number {
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) {
    throw new InvalidArgumentError('expected a port number from 0 to 65535');
  }
  return Number(value);
}

/** A port, or `off` (false) for a service the process may run without (`--relay-port`). */
export function parsePortOrOff(value: string): number | false {
  return value === 'off' ? false : parsePort(value);
}

/**
 * `--store`: a postgres:// or postgresql:// URL (PostgreSQL); anything else is refused. Without
 * the flag the server keeps SQLite in its data folder.
 */
export function parseStoreUrl(value: string): string {
  if (!/^postgres(ql)?:\/\/\S+$/i.test(value))
    throw new Error(
      'expected a postgres:// or postgresql:// URL (without --store: SQLite in the data folder)',
    );
  return value;
}

/** A positive number of milliseconds. */
export function parseMs(value: string): number {
  if (!/^\d{1,9}$/.test(value) || Number(value) < 1) {
    throw new InvalidArgumentError('expected a whole number of milliseconds, at least 1');
  }
  return Number(value);
}

/** A visitor name lease: at least 1 s (it is renewed every third of it, in the store). */
export function parseLeaseMs(value: string): number {
  const ms = parseMs(value);
  if (ms < 1000) throw new InvalidArgumentError('expected at least 1000 (1 second)');
  return ms;
}

/** How long a drain may last: up to 10 minutes (a supervisor kills a process that hangs). */
export function parseDrainMs(value: string): number {
  const ms = parseMs(value);
  if (ms > 600_000) throw new InvalidArgumentError('expected at most 600000 (10 minutes)');
  return ms;
}

/** `HOST:PORT` of the central server, optionally `#FINGERPRINT` of its TLS key to pin. */
export function parseServer(value: string): { host: string; port: number; fingerprint?: string } {
  const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})(?:#(.*))?$/.exec(value);
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) {
    throw new InvalidArgumentError(
      'expected HOST:PORT or HOST:PORT#FINGERPRINT, for example 127.0.0.1:7000',
    );
  }
  if (m[3] !== undefined) parseFingerprint(m[3]);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]), fingerprint: m[3] };
}

/** A server's instances, `HOST:PORT[#FINGERPRINT]` separated by commas, in the order to try. */
export function parseServers(value: string): ReturnType<typeof parseServer>[] {
  const list = value.split(',').map((s) => s.trim());
  if (list.length > 16) throw new InvalidArgumentError('at most 16 server addresses');
  const seen = new Set<string>();
  const all = list.map((s) => {
    const a = parseServer(s);
    const key = `${a.host}:${a.port}`;
    if (seen.has(key)) throw new InvalidArgumentError(`${key} is listed twice`);
    seen.add(key);
    return a;
  });
  // A pin on some addresses only would let the others be trusted on first use at failover.
  const pinned = all.filter((a) => a.fingerprint !== undefined).length;
  if (pinned > 0 && pinned < all.length)
    throw new InvalidArgumentError(
      'pin every address (#fingerprint) or none, or give one --server-fingerprint for all',
    );
  return all;
}

/** The fingerprint of a server's TLS key, as its `ready` line prints it. */
export function parseFingerprint(value: string): string {
  if (!FINGERPRINT.test(value))
    throw new InvalidArgumentError(
      "expected the server's fingerprint: 43 base64url characters, as its ready line prints it",
    );
  return value;
}

/** A host name or IP address to bind to. */
export function parseHost(value: string): string {
  if (!/^[A-Za-z0-9.:-]{1,253}$/.test(value))
    throw new InvalidArgumentError('expected a host name or IP address');
  return value;
}

/** A fraction of datagrams to drop, from 0 up to (not including) 1. */
export function parseRate(value: string): number {
  const n = Number(value);
  if (!/^\d*\.?\d+$/.test(value) || !(n >= 0 && n < 1))
    throw new InvalidArgumentError('expected a fraction from 0 up to 1, for example 0.02');
  return n;
}

/** A count from 1 to 64. */
export function parseFanout(value: string): number {
  if (!/^\d{1,2}$/.test(value) || Number(value) < 1 || Number(value) > 64)
    throw new InvalidArgumentError('expected a whole number from 1 to 64');
  return Number(value);
}

/** A number of threads from 0 to 16. */
export function parseThreads(value: string): number {
  if (!/^\d{1,2}$/.test(value) || Number(value) > 16)
    throw new InvalidArgumentError('expected a whole number of threads from 0 to 16');
  return Number(value);
}

/** A whole number from 1 to 10,000,000 (a count limit). */
export function parseCount(value: string): number {
  if (!/^\d{1,8}$/.test(value) || Number(value) < 1 || Number(value) > 10_000_000)
    throw new InvalidArgumentError('expected a whole number from 1 to 10000000');
  return Number(value);
}

/** A prefix length in bits, from 0 to `max` (32 for IPv4, 128 for IPv6). */
export function parsePrefixBits(max: number): (value: string) => number {
  return (value) => {
    if (!/^\d{1,3}$/.test(value) || Number(value) > max)
      throw new InvalidArgumentError(`expected a prefix length from 0 to ${max}`);
    return Number(value);
  };
}

/** A local API token: URL-safe characters, long enough to hold 128 bits. */
export function parseApiToken(value: string): string {
  if (!API_TOKEN_PATTERN.test(value))
    throw new InvalidArgumentError('expected 22 to 256 characters of A-Z a-z 0-9 - _ . ~');
  return value;
}

/** A number of bytes, plain or with a unit: 500K, 25M, 1G (powers of 1024; KiB, MiB, GiB too). */
export function parseBytes(value: string): number {
  const m = /^(\d{1,12})(?:([KMG])(?:i?B)?)?$/i.exec(value.trim());
  const n = m ? Number(m[1]) * 1024 ** ' KMG'.indexOf((m[2] ?? ' ').toUpperCase()) : NaN;
  if (!m || !(n >= 1) || n > 2 ** 40)
    throw new InvalidArgumentError('expected a number of bytes, for example 1048576, 500K or 25M');
  return n;
}

/**
 * The event bus between server instances: `nats://HOST:PORT[,nats://…]` (server/bus-nats.ts).
 * Checked in the command's action, not as commander's parser: commander's error would repeat the
 * value, and with it a password in the URL.
 */
export function parseBus(value: string): string {
  parseNatsUrl(value);
  return value;
}

/** A subject namespace of the bus: one NATS subject token. */
export function parseBusNamespace(value: string): string {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(value))
    throw new InvalidArgumentError('expected 1-64 characters of A-Z a-z 0-9 _ -');
  return value;
}

/** An http:// or https:// base URL (a server's `http=`), without a trailing slash. */
export function parseHttpUrl(value: string): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new InvalidArgumentError(
      'expected an http:// or https:// URL, e.g. http://127.0.0.1:7080',
    );
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new InvalidArgumentError(
      'expected an http:// or https:// URL, e.g. http://127.0.0.1:7080',
    );
  if (u.username || u.password || u.search || u.hash)
    throw new InvalidArgumentError('expected a base URL without credentials, query or fragment');
  return value.replace(/\/+$/, '');
}

/** Flags whose whole value is a secret. */
const SECRET_FLAGS = new Set(['--api-token', '--token']);
/** Flags whose value is a URL that may carry credentials (`user:pass@`, `token@`). */
const URL_FLAGS = new Set(['--store', '--bus']);

/**
 * The command line with its secrets replaced by `***`: the values of `--api-token` and
 * `--token`, and the credentials of `--store` and `--bus` URLs; undefined when it holds none.
 * Any local user reads a process's command line (`ps`, /proc/<pid>/cmdline), so the process
 * shows this one instead as soon as it runs (README "Local API").
 */
export function redactedArgs(args: readonly string[]): string[] | undefined {
  let changed = false;
  const hide = (flag: string, value: string): string => {
    if (SECRET_FLAGS.has(flag)) {
      changed = true;
      return '***';
    }
    if (URL_FLAGS.has(flag)) {
      const v = value.replace(/(:\/\/)[^/@,\s]*@/g, '$1***@');
      if (v !== value) changed = true;
      return v;
    }
    return value;
  };
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) {
      out.push(`${a.slice(0, eq)}=${hide(a.slice(0, eq), a.slice(eq + 1))}`);
    } else if ((SECRET_FLAGS.has(a) || URL_FLAGS.has(a)) && i + 1 < args.length) {
      out.push(a, hide(a, args[++i]!));
    } else out.push(a);
  }
  return changed ? out : undefined;
}
