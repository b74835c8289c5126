/**
 * Length-prefixed frames, shared by every TCP link (peer↔server and peer↔peer).
 *
 *   0               4                         4+N
 *   +---------------+-------------------------+
 *   | N (u32, BE)   | N bytes of UTF-8 JSON   |
 *   +---------------+-------------------------+
 *
 * N is checked against the maximum before any byte of the body is buffered or allocated, so a peer
 * that announces 4 GiB costs us four bytes. The body must be valid UTF-8 holding one JSON object
 * with a string member `t`; anything else (and N = 0) is E_BAD_FRAME.
 */
import { HchatError } from './errors.js';

/** Default upper bound of N, in bytes. */
export const DEFAULT_MAX_FRAME = 1024 * 1024;
/** Size of the length prefix. */
export const HEADER_BYTES = 4;

/** Encodes one JSON object as a frame: the bytes to write to the socket. */
export function encodeFrame(obj: object): Buffer {
  const json = JSON.stringify(obj);
  const len = Buffer.byteLength(json);
  const buf = Buffer.allocUnsafe(HEADER_BYTES + len);
  buf.writeUInt32BE(len, 0);
  buf.write(json, HEADER_BYTES, 'utf8');
  return buf;
}

/**
 * Incremental decoder: feed it whatever the socket gave, get whole frames back.
 * It throws HchatError (E_FRAME_TOO_LARGE, E_BAD_FRAME) and nothing else; after a throw the
 * stream is out of sync and the connection must be closed.
 */
export class FrameDecoder {
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  private need = -1; // body length of the frame being read; -1 while reading the header

  constructor(private maxFrame: number = DEFAULT_MAX_FRAME) {}

  /**
   * Changes the maximum N for the frames whose header has not arrived yet (a small cap before
   * authentication, the full one after it).
   */
  setMaxFrame(n: number): void {
    this.maxFrame = n;
  }

  /** The maximum N in force. */
  get max(): number {
    return this.maxFrame;
  }

  /** Appends bytes and returns the frames they complete, decoded, in order. */
  push(data: Buffer): Record<string, unknown>[] {
    this.feed(data);
    const out: Record<string, unknown>[] = [];
    for (let f = this.next(); f !== undefined; f = this.next()) out.push(f);
    return out;
  }

  /** Appends bytes without decoding them yet (see next). */
  feed(data: Buffer): void {
    if (data.length > 0) {
      this.chunks.push(data);
      this.buffered += data.length;
    }
  }

  /**
   * The next whole frame, or undefined until more bytes come. One frame at a time, so that the
   * caller may change the maximum between frames (after authentication).
   */
  next(): Record<string, unknown> | undefined {
    if (this.need < 0) {
      if (this.buffered < HEADER_BYTES) return undefined;
      const header = this.take(HEADER_BYTES);
      const len = header.readUInt32BE(0);
      if (len > this.maxFrame) {
        throw new HchatError(
          'E_FRAME_TOO_LARGE',
          `frame of ${len} bytes exceeds the maximum of ${this.maxFrame}`,
        );
      }
      if (len === 0) throw new HchatError('E_BAD_FRAME', 'empty frame');
      this.need = len;
    }
    if (this.buffered < this.need) return undefined;
    const body = this.take(this.need);
    this.need = -1;
    return parseBody(body);
  }

  /** Bytes held that do not yet form a whole frame. */
  get pending(): number {
    return this.buffered;
  }

  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    let result: Buffer;
    if (first.length === n) {
      this.chunks.shift();
      result = first;
    } else if (first.length > n) {
      result = first.subarray(0, n);
      this.chunks[0] = first.subarray(n);
    } else {
      result = Buffer.allocUnsafe(n);
      let off = 0;
      while (off < n) {
        const c = this.chunks[0]!;
        const k = Math.min(c.length, n - off);
        c.copy(result, off, 0, k);
        off += k;
        if (k === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(k);
      }
    }
    this.buffered -= n;
    return result;
  }
}

// Fatal: invalid UTF-8 is an error, never replaced by U+FFFD (which would let two different byte
// strings decode to one text). ignoreBOM keeps a leading BOM, which JSON then refuses.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Why JSON text whose strings are not Unicode text is refused. */
export const LONE_SURROGATE =
  'a string holds a lone surrogate (a \\uD800-\\uDFFF escape without its pair): not Unicode text';

/** A `\u` escape of a surrogate (D800-DFFF): the only way valid UTF-8 JSON can make a lone one. */
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/;
/** False for a string with a lone surrogate (ES2024's String.prototype.isWellFormed, in Node 20). */
const wellFormed = (s: string) => (s as unknown as { isWellFormed(): boolean }).isWellFormed();

/**
 * True when `value` holds a string (a value or a key) with a lone surrogate, which UTF-8 cannot
 * encode: stored or signed, it would come back as U+FFFD, another text. Given the JSON `text` it
 * was parsed from, text without a surrogate escape is passed at once (the common case: no `\u`
 * at all); otherwise every string is checked, without recursion (nesting may be deep).
 */
export function holdsLoneSurrogate(value: unknown, text?: string): boolean {
  // indexOf first: it scans a megabyte in ~20 µs, the regular expression in ~400.
  if (text !== undefined && (text.indexOf('\\u') < 0 || !SURROGATE_ESCAPE.test(text))) return false;
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === 'string') {
      if (!wellFormed(v)) return true;
    } else if (v !== null && typeof v === 'object') {
      if (Array.isArray(v)) for (const x of v) stack.push(x);
      else
        for (const [k, x] of Object.entries(v)) {
          if (!wellFormed(k)) return true;
          stack.push(x);
        }
    }
  }
  return false;
}

function parseBody(body: Buffer): Record<string, unknown> {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    throw new HchatError('E_BAD_FRAME', 'frame body is not valid UTF-8');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new HchatError('E_BAD_FRAME', 'frame body is not valid JSON');
  }
  if (holdsLoneSurrogate(value, text)) throw new HchatError('E_BAD_FRAME', LONE_SURROGATE);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new HchatError('E_BAD_FRAME', 'frame body must be a JSON object');
  }
  if (typeof (value as { t?: unknown }).t !== 'string') {
    throw new HchatError('E_BAD_FRAME', 'frame has no string member "t"');
  }
  return value as Record<string, unknown>;
}
