/**
 * Compact pushes and pages (PROTOCOL.md §3.11): on a link whose hellos agreed `compact: 1`, a key
 * certificate and a channel id each travel once, in a `ref` frame that gives them a number, and
 * the items of `message` pushes and of history, sync and search answers name them by that number
 * (`k`, `c`). An item's `id` and `author` are left out when they follow from the rest (the id
 * derived from the content, §2.1; the author the certificate's `u`).
 *
 * Both ends keep the same table per kind: the last COMPACT_LIMITS.refs numbers defined on the
 * link, a definition (or re-definition) making its number the newest. The receiving end is
 * `RefReader`; the sending end's bookkeeping is `RefWindow` (shared/compact-refs.ts numbers and
 * encodes).
 */
import { z } from 'zod';
import { HchatError } from './errors.js';
import { Uuid } from './common.js';
import { describeIssues } from './rpc.js';
import { messageId, type IdFields } from '../shared/message-id.js';
import { readClaims } from '../shared/tokens.js';

export const COMPACT_LIMITS = {
  /** Numbers of each kind (certificates, channels) a link's two ends hold at once. */
  refs: 256,
  /** The most distinct numbers of one kind a single frame may use (half the table). */
  refsPerFrame: 128,
  /** Largest reference number. */
  maxRef: 2 ** 32 - 1,
} as const;

/** The compact encoding this implementation speaks (`compact` in the hellos). */
export const COMPACT_VERSION = 1;

/** Operations whose answers carry compact items on a compact link. */
export const COMPACT_OPS: ReadonlySet<string> = new Set(['history', 'sync', 'search']);

const RefNumber = z.number().int().min(0).max(COMPACT_LIMITS.maxRef);
const Cert = z.string().min(1).max(1000);

/** `{"t":"ref","k":n,"cert":"…"}` or `{"t":"ref","c":n,"channelId":"…"}`. */
export const RefFrame = z.union([
  z.object({ t: z.literal('ref'), k: RefNumber, cert: Cert }).strict(),
  z.object({ t: z.literal('ref'), c: RefNumber, channelId: Uuid }).strict(),
]);
export type RefFrame = z.infer<typeof RefFrame>;

/** True for a number a `ref` frame may define. */
const isRef = (n: unknown): n is number =>
  Number.isSafeInteger(n) && (n as number) >= 0 && (n as number) <= COMPACT_LIMITS.maxRef;

/**
 * What a compact item adds to (and takes from) a stored message, checked by hand: this runs for
 * every item received, and the rebuilt message is checked against its full schema afterwards.
 */
function compactHead(item: Record<string, unknown>): string | undefined {
  if (!isRef(item.c)) return 'c: expected a number from 0 to 2^32-1';
  if (item.k !== undefined && !isRef(item.k)) return 'k: expected a number from 0 to 2^32-1';
  if (item.cert !== undefined && (typeof item.cert !== 'string' || item.cert.length > 1000))
    return 'cert: expected a certificate';
  if (item.id !== undefined && (typeof item.id !== 'string' || !Uuid.safeParse(item.id).success))
    return 'id: expected a uuid';
  if (item.author !== undefined && typeof item.author !== 'string')
    return 'author: expected a string';
  return undefined;
}

/** Why a receiver refuses a compact frame: the link breaks (E_BAD_FRAME). */
const bad = (why: string) => new HchatError('E_BAD_FRAME', `compact item: ${why}`);

/** A table of the numbers defined on a link, oldest first, holding at most `cap`. */
class Window<V> {
  private readonly map = new Map<number, V>();
  constructor(private readonly cap: number) {}

  define(n: number, v: V): void {
    this.map.delete(n);
    this.map.set(n, v);
    if (this.map.size > this.cap) this.map.delete(this.map.keys().next().value!);
  }

  get(n: number): V | undefined {
    return this.map.get(n);
  }

  has(n: number): boolean {
    return this.map.has(n);
  }
}

/**
 * The sending end's view of one kind of number on one link: which the receiver holds. `ensure`
 * defines (through `define`) whatever a frame about to be sent needs, so that after it every
 * number of `nums` is held, even where a definition pushed out an older one the frame uses.
 */
export class RefWindow {
  private readonly held = new Window<true>(COMPACT_LIMITS.refs);

  has(n: number): boolean {
    return this.held.has(n);
  }

  /** `nums`: at most COMPACT_LIMITS.refsPerFrame distinct numbers. */
  ensure(nums: Iterable<number>, define: (n: number) => void): void {
    const want = [...new Set(nums)];
    if (want.length > COMPACT_LIMITS.refsPerFrame)
      throw new Error(`a frame may use at most ${COMPACT_LIMITS.refsPerFrame} numbers`);
    // Defining a number pushes out the oldest, which may be one this frame wants and held when
    // its turn came (two passes were not enough: a number held then pushed out by the second
    // pass went undefined, and the receiver broke the link). So: until every wanted number is
    // held. Each wanted number is defined at most once here: once defined it is newer than every
    // number not defined in this call, and with at most half the table wanted there are always
    // such older numbers to push out first.
    for (let missing = true; missing;) {
      missing = false;
      for (const n of want)
        if (!this.held.has(n)) {
          this.held.define(n, true);
          define(n);
          missing = true;
        }
    }
  }
}

/** A certificate as a receiver keeps it: the string and its account name (`u`). */
interface CertEntry {
  cert: string;
  u: string;
}

/**
 * The receiving end of a compact link: keeps the numbers the other end defined and turns compact
 * items back into stored messages (the shapes the rest of the protocol uses), which the caller
 * then validates and checks as any other.
 */
export class RefReader {
  private readonly certs = new Window<CertEntry>(COMPACT_LIMITS.refs);
  private readonly channels = new Window<string>(COMPACT_LIMITS.refs);

  /** A `ref` frame: defines one number. */
  define(f: Record<string, unknown>): void {
    const r = RefFrame.safeParse(f);
    if (!r.success) throw new HchatError('E_BAD_FRAME', `ref: ${describeIssues(r.error)}`);
    if ('k' in r.data) this.certs.define(r.data.k, certEntry(r.data.cert));
    else this.channels.define(r.data.c, r.data.channelId);
  }

  /** A compact item (a `m` frame, or an element of a page) as the stored message it stands for. */
  expand(item: unknown): { channelId: string; message: Record<string, unknown> } {
    if (item === null || typeof item !== 'object' || Array.isArray(item))
      throw bad('not an object');
    const head = item as Record<string, unknown>;
    const why = compactHead(head);
    if (why) throw bad(why);
    const { c, k, cert, id, author } = head as {
      c: number;
      k?: number;
      cert?: string;
      id?: string;
      author?: string;
    };
    const channelId = this.channels.get(c);
    if (channelId === undefined) throw bad(`channel number ${c} is not defined on this link`);
    let entry: CertEntry;
    if (cert !== undefined) {
      if (k !== undefined) throw bad('both k and cert');
      entry = certEntry(cert);
    } else if (k !== undefined) {
      const held = this.certs.get(k);
      if (!held) throw bad(`certificate number ${k} is not defined on this link`);
      entry = held;
    } else throw bad('neither k nor cert');
    // Copied member by member (not spread, then deleted: that leaves a slow dictionary object);
    // a `__proto__` member (JSON.parse makes it an own one) would set the copy's prototype.
    const message: Record<string, unknown> = {};
    for (const key of Object.keys(item))
      if (key !== 'c' && key !== 'k' && key !== 't' && key !== '__proto__')
        message[key] = (item as Record<string, unknown>)[key];
    message.channelId = channelId;
    message.cert = entry.cert;
    message.author = author ?? entry.u;
    if (id === undefined) message.id = derivedId(message);
    return { channelId, message };
  }

  /** An answer of a COMPACT_OPS operation with its items expanded. */
  expandPage(body: unknown): unknown {
    if (body === null || typeof body !== 'object') return body;
    const out: Record<string, unknown> = { ...body };
    for (const key of ['messages', 'related'])
      if (Array.isArray(out[key]))
        out[key] = (out[key] as unknown[]).map((item) => this.expand(item).message);
    return out;
  }
}

/** The certificate's `u`, read without checking its signature (the message's check does that). */
function certEntry(cert: string): CertEntry {
  const u = readClaims(cert)?.u;
  if (typeof u !== 'string') throw bad('a certificate without a user name');
  return { cert, u };
}

/** The id an item's content gives (§2.1); a shape too wrong to hash breaks the link. */
function derivedId(m: Record<string, unknown>): string {
  if (!Number.isSafeInteger(m.ts) || (m.ts as number) < 0 || (m.ts as number) > 2 ** 48 - 1)
    throw bad('ts: expected an integer from 0 to 2^48-1');
  try {
    return messageId(m as unknown as IdFields);
  } catch {
    throw bad('its content cannot be hashed');
  }
}
