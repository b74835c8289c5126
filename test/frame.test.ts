import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FrameDecoder, encodeFrame, HEADER_BYTES } from '../src/protocol/frame.js';
import { HchatError } from '../src/protocol/errors.js';

// Every frame carries a string `t` (PROTOCOL.md §1); the rest is any JSON.
const jsonObject = fc
  .tuple(
    fc.string({ maxLength: 12 }),
    fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 8 }),
  )
  .map(([t, rest]) => ({ ...rest, t }));

/** Splits a buffer at the given cut points. */
function split(buf: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(buf.subarray(prev, p));
    prev = p;
  }
  out.push(buf.subarray(prev));
  return out;
}

describe('frame codec', () => {
  it('round-trips any JSON object, however the stream is cut', () => {
    fc.assert(
      fc.property(
        fc.array(jsonObject, { minLength: 1, maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        (objs, cuts) => {
          const stream = Buffer.concat(objs.map((o) => encodeFrame(o)));
          const d = new FrameDecoder();
          const got = split(stream, cuts).flatMap((chunk) => d.push(chunk));
          expect(got).toEqual(JSON.parse(JSON.stringify(objs)));
          expect(d.pending).toBe(0);
        },
      ),
    );
  });

  it('decodes when fed one byte at a time', () => {
    const frames = [
      { t: 'hello', v: 1 },
      { t: 'req', id: 7, op: 'post', body: { text: 'héllo 👋' } },
    ];
    const stream = Buffer.concat(frames.map((f) => encodeFrame(f)));
    const d = new FrameDecoder();
    const got: unknown[] = [];
    for (const byte of stream) got.push(...d.push(Buffer.from([byte])));
    expect(got).toEqual(frames);
  });

  it('holds a truncated frame without emitting or throwing', () => {
    const frame = encodeFrame({ t: 'ping' });
    for (let n = 0; n < frame.length; n++) {
      const d = new FrameDecoder();
      expect(d.push(frame.subarray(0, n))).toEqual([]);
    }
  });

  it('refuses an oversized length before buffering the body', () => {
    const d = new FrameDecoder(1024);
    const header = Buffer.alloc(HEADER_BYTES);
    header.writeUInt32BE(1025);
    expect(() => d.push(header)).toThrowError(
      expect.objectContaining({ code: 'E_FRAME_TOO_LARGE' }),
    );
    const max = Buffer.alloc(HEADER_BYTES);
    max.writeUInt32BE(0xffffffff);
    expect(() => new FrameDecoder().push(max)).toThrowError(
      expect.objectContaining({ code: 'E_FRAME_TOO_LARGE' }),
    );
  });

  it('refuses empty frames, bad JSON and non-objects with E_BAD_FRAME', () => {
    const bodies = ['', '{', 'null', '[1,2]', '"text"', '42', '\u0000\u0001', '{}', '{"t":1}'];
    for (const body of bodies) {
      const b = Buffer.from(body);
      const frame = Buffer.alloc(HEADER_BYTES + b.length);
      frame.writeUInt32BE(b.length);
      b.copy(frame, HEADER_BYTES);
      expect(() => new FrameDecoder().push(frame), body).toThrowError(
        expect.objectContaining({ code: 'E_BAD_FRAME' }),
      );
    }
  });

  it('refuses invalid UTF-8 with E_BAD_FRAME instead of decoding it lossily', () => {
    const bad = [
      Buffer.from([0x7b, 0x22, 0x74, 0x22, 0x3a, 0x22, 0xc3, 0x22, 0x7d]), // {"t":"\xc3"}
      Buffer.concat([
        Buffer.from('{"t":"a","x":"'),
        Buffer.from([0xed, 0xa0, 0x80]),
        Buffer.from('"}'),
      ]), // surrogate
      Buffer.concat([Buffer.from('{"t":"a","x":"'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}')]), // overlong
      Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"t":"a"}')]), // BOM
    ];
    for (const b of bad) {
      const frame = Buffer.alloc(HEADER_BYTES + b.length);
      frame.writeUInt32BE(b.length);
      b.copy(frame, HEADER_BYTES);
      expect(() => new FrameDecoder().push(frame)).toThrowError(
        expect.objectContaining({ code: 'E_BAD_FRAME' }),
      );
    }
  });

  it('applies a maximum changed at run time to the next header', () => {
    const d = new FrameDecoder(64);
    const big = encodeFrame({ t: 'x', pad: 'y'.repeat(100) });
    expect(() => d.push(big)).toThrowError(expect.objectContaining({ code: 'E_FRAME_TOO_LARGE' }));
    const d2 = new FrameDecoder(64);
    d2.setMaxFrame(1024);
    expect(d2.push(big)).toEqual([{ t: 'x', pad: 'y'.repeat(100) }]);
    d2.setMaxFrame(16);
    expect(d2.max).toBe(16);
    expect(() => d2.push(big)).toThrowError(expect.objectContaining({ code: 'E_FRAME_TOO_LARGE' }));
  });

  it('never throws anything but HchatError on random bytes', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 8 }), (chunks) => {
        const d = new FrameDecoder(4096);
        try {
          for (const c of chunks) d.push(Buffer.from(c));
        } catch (err) {
          expect(err).toBeInstanceOf(HchatError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('strings that are not Unicode text (PROTOCOL.md §1)', () => {
  /** A frame of exactly these JSON characters (encodeFrame would re-encode the escapes). */
  const frameOf = (json: string) => {
    const b = Buffer.from(json, 'utf8');
    const frame = Buffer.alloc(HEADER_BYTES + b.length);
    frame.writeUInt32BE(b.length);
    b.copy(frame, HEADER_BYTES);
    return frame;
  };
  const refused = expect.objectContaining({
    code: 'E_BAD_FRAME',
    message: expect.stringContaining('lone surrogate'),
  });

  it('refuses a lone surrogate escape in any value or key, however deep; takes pairs and escaped backslashes', () => {
    const deep = `{"t":"x","a":${'['.repeat(5000)}"\\udfff"${']'.repeat(5000)}}`;
    for (const json of [
      '{"t":"x","s":"\\udfff"}',
      '{"t":"x","s":"ok \\uD800"}',
      '{"t":"x","a":[{"b":"\\ud800x"}]}',
      '{"t":"x","\\udc00":1}',
      '{"t":"x","s":"\\ude00\\ud83d"}', // low then high: two lone halves
      deep,
    ])
      expect(() => new FrameDecoder().push(frameOf(json)), json.slice(0, 40)).toThrowError(refused);
    for (const [json, s] of [
      ['{"t":"x","s":"\\ud83d\\ude00"}', '😀'],
      ['{"t":"x","s":"\\uD83D\\uDE00"}', '😀'],
      ['{"t":"x","s":"\\\\udfff"}', '\\udfff'], // a backslash, then the letters udfff
    ] as const)
      expect(new FrameDecoder().push(frameOf(json))).toEqual([{ t: 'x', s }]);
  });

  it('(property) refuses a frame exactly when one of its strings does not survive UTF-8', () => {
    // Any UTF-16 code units, surrogate halves often (alone, or as pairs by chance); JSON.stringify
    // escapes a lone one as \\udXXX and writes a pair as its character.
    const unit = fc.oneof(
      fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
      fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)),
    );
    const units = fc.string({ unit, maxLength: 8 });
    fc.assert(
      fc.property(units, units, (key, value) => {
        const json = JSON.stringify({ t: 'x', [key]: value, k: [value] });
        const text = (x: string) => Buffer.from(x, 'utf8').toString('utf8') === x;
        const decode = () => new FrameDecoder().push(frameOf(json));
        if (text(key) && text(value)) expect(decode()).toEqual([JSON.parse(json)]);
        else expect(decode).toThrowError(refused);
      }),
      { numRuns: 2000 },
    );
  });
});
