// A strict reader of compact links (PROTOCOL.md §3.11), written from the document alone: it keeps
// the 256 most recently defined numbers of each kind (a redefinition makes a number the newest;
// the 257th forgets the oldest), rebuilds every compact item into the stored message of §2.1
// (channelId from `c`, cert from `k`, author from the certificate's `u`, id from the content) and
// records, instead of throwing inside a socket handler, everything the document forbids.
import { certClaims, type Raw } from './lib.js';
import { bodyDigest, itemId, type Kind } from './items-lib.js';

/** How many numbers of each kind the receiver holds (§3.11 _The tables_). */
export const TABLE_SIZE = 256;
/** The most distinct numbers of one kind a single frame may name. */
export const FRAME_NAMES = 128;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const isNumber = (n: unknown): n is number =>
  Number.isInteger(n) && (n as number) >= 0 && (n as number) <= 2 ** 32 - 1;

/** What one compact frame named: counted before the rebuild. */
export interface FrameNames {
  distinctK: number;
  distinctC: number;
  wholeCertItems: number;
  distinctCerts: number;
  /** items carrying whole a certificate that the same frame also names by number */
  wholeAlsoNumbered: number;
}

/** The id §2.1 derives from an item's content (a tombstone's `digest` stands for its body). */
export function derivedId(m: any): string {
  if (m.files !== undefined) throw new Error('this decoder does not rebuild items with files');
  const kind: Kind = m.kind ?? 'message';
  const digest = m.digest ?? bodyDigest(m);
  return itemId(m.channelId, m.author, m.ts, m.lc, kind, m.target ?? null, digest);
}

/** One compact link's tables, fed every frame of the link in wire order by `Raw.onFrame`. */
export class CompactReader {
  readonly certs = new Map<number, string>();
  readonly channels = new Map<number, string>();
  /** ref frames seen, per kind, and every number ever defined */
  readonly defined = { k: 0, c: 0 };
  readonly numbersSeen = { k: new Set<number>(), c: new Set<number>() };
  /** rebuilt `m` frames, in order, with their size on the wire (4-byte length + body) */
  readonly pushes: { message: any; wireBytes: number }[] = [];
  /** what each `res` with messages named, in order */
  readonly answers: FrameNames[] = [];
  readonly errors: string[] = [];
  /** every frame as it came, before any rebuild */
  readonly log: any[] = [];

  /**
   * @param instance every value each number was ever given on this server instance, shared by
   *   the readers of its links: a number is never reused for another value there (§3.11)
   */
  constructor(
    raw: Raw,
    readonly instance: { k: Map<number, string>; c: Map<number, string> } = {
      k: new Map(),
      c: new Map(),
    },
  ) {
    raw.onFrame = (f, n) => {
      this.log.push(structuredClone(f));
      try {
        this.read(f, n);
      } catch (e) {
        this.errors.push((e as Error).message + ' in ' + JSON.stringify(f).slice(0, 300));
      }
    };
  }

  private read(f: any, n: number) {
    if (f.t === 'ref') return this.define(f);
    if (f.t === 'm') {
      const { t: _t, ...item } = f;
      this.names([item]);
      this.pushes.push({ message: this.rebuild(item), wireBytes: 4 + n });
      return;
    }
    if (f.t === 'ev' && f.ev === 'message')
      throw new Error('a full-form message event on a compact link');
    if (f.t === 'res' && f.body && Array.isArray(f.body.messages)) {
      const related: any[] = Array.isArray(f.body.related) ? f.body.related : [];
      this.answers.push(this.names([...f.body.messages, ...related]));
      f.body.messages = f.body.messages.map((i: any) => this.rebuild(i));
      if (Array.isArray(f.body.related)) f.body.related = related.map((i) => this.rebuild(i));
    }
  }

  private define(f: any) {
    const keys = Object.keys(f)
      .filter((x) => x !== 't')
      .sort()
      .join(',');
    if (keys === 'cert,k') {
      if (!isNumber(f.k) || typeof f.cert !== 'string') throw new Error('bad certificate ref');
      this.once('k', f.k, f.cert);
      this.put(this.certs, f.k, f.cert);
      this.defined.k++;
      this.numbersSeen.k.add(f.k);
    } else if (keys === 'c,channelId') {
      if (!isNumber(f.c) || typeof f.channelId !== 'string' || !UUID.test(f.channelId))
        throw new Error('bad channel ref');
      this.once('c', f.c, f.channelId);
      this.put(this.channels, f.c, f.channelId);
      this.defined.c++;
      this.numbersSeen.c.add(f.c);
    } else throw new Error('a ref frame with members ' + keys);
  }

  private once(kind: 'k' | 'c', n: number, v: string) {
    const was = this.instance[kind].get(n);
    if (was !== undefined && was !== v)
      throw new Error(`${kind} number ${n} reused for another value`);
    this.instance[kind].set(n, v);
  }

  private put(table: Map<number, string>, n: number, v: string) {
    table.delete(n);
    table.set(n, v);
    if (table.size > TABLE_SIZE) table.delete(table.keys().next().value!);
  }

  private names(items: any[]): FrameNames {
    const ks = new Set<number>();
    const cs = new Set<number>();
    const numbered = new Set<string>();
    const wholes: string[] = [];
    for (const i of items) {
      if (i.k !== undefined) {
        ks.add(i.k);
        const cert = this.certs.get(i.k);
        if (cert !== undefined) numbered.add(cert);
      }
      if (i.cert !== undefined) wholes.push(i.cert);
      if (i.c !== undefined) cs.add(i.c);
    }
    const certs = new Set([...numbered, ...wholes]);
    const whole = wholes.length;
    const wholeAlsoNumbered = wholes.filter((c) => numbered.has(c)).length;
    if (ks.size > FRAME_NAMES || cs.size > FRAME_NAMES)
      throw new Error(`one frame names ${ks.size} certificates and ${cs.size} channels`);
    return {
      distinctK: ks.size,
      distinctC: cs.size,
      wholeCertItems: whole,
      distinctCerts: certs.size,
      wholeAlsoNumbered,
    };
  }

  /** §3.11 _Compact item_ → stored message; throws where the document says E_BAD_FRAME. */
  rebuild(item: any): any {
    const { c, k, ...rest } = item;
    if (!isNumber(c)) throw new Error('item without a channel number');
    const channelId = this.channels.get(c);
    if (channelId === undefined) throw new Error(`channel number ${c} is not held`);
    if ((k === undefined) === (item.cert === undefined))
      throw new Error('item with both or neither of k and cert');
    if ('channelId' in item) throw new Error('compact item carries channelId');
    let cert: string;
    if (k !== undefined) {
      if (!isNumber(k)) throw new Error('bad certificate number');
      const held = this.certs.get(k);
      if (held === undefined) throw new Error(`certificate number ${k} is not held`);
      cert = held;
    } else cert = item.cert;
    if (!Number.isInteger(item.ts)) throw new Error('item without an integer ts');
    const u = certClaims(cert).u;
    if (item.author !== undefined && item.author === u)
      throw new Error('author sent though it is the certificate u exactly');
    const m = { ...rest, channelId, cert, author: item.author ?? u };
    const id = derivedId(m);
    if (item.id !== undefined && item.id === id)
      throw new Error('id sent though it is the one the content gives');
    return { ...m, id: item.id ?? id };
  }
}

/** The full-form side: `message` events as they came, and any frame of §3.11 it should never get. */
export class FullReader {
  readonly pushes: { message: any; wireBytes: number }[] = [];
  readonly errors: string[] = [];
  constructor(raw: Raw) {
    raw.onFrame = (f, n) => {
      if (f.t === 'ref' || f.t === 'm') this.errors.push('compact frame on a full link: ' + f.t);
      if (f.t === 'ev' && f.ev === 'message') {
        if (f.body.channelId !== f.body.message?.channelId)
          this.errors.push('event channelId differs from its message');
        this.pushes.push({ message: f.body.message, wireBytes: 4 + n });
      }
    };
  }
}

/** Pushes in one order whatever order they came in: channel, then seq. */
export const bySeq = (p: { message: any }[]) =>
  p
    .map((x) => x.message)
    .sort((a, b) =>
      a.channelId === b.channelId ? a.seq - b.seq : a.channelId < b.channelId ? -1 : 1,
    );
