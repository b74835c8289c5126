/**
 * The picture checker (src/shared/picture.ts) and the avatar rule on top of it
 * (shared/avatar-sig.ts `avatarPictureError`): real PNG, JPEG and WebP files are read with their
 * size; anything cut short, followed by other bytes, labelled with another type, or declaring more
 * pixels than avatars take is refused with a reason; no input makes it throw.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { avatarPictureError } from '../src/shared/avatar-sig.js';
import { FILE_LIMITS } from '../src/shared/limits.js';
import { pictureError, readPicture, type PictureType } from '../src/shared/picture.js';
import { isCanonicalBase64 } from '../src/protocol/base64.js';
import { AvatarRecord } from '../src/protocol/avatars.js';
import {
  JPEG_12x8,
  PNG_12x8,
  PNG_SIGNATURE,
  WEBP_ALPHA_12x8,
  WEBP_LOSSLESS_12x8,
  WEBP_LOSSY_12x8,
  WEBP_SIMPLE_LOSSLESS_12x8,
  WEBP_SIMPLE_LOSSY_12x8,
  png,
  pngChunk,
  webpChunk,
  webpOf,
} from './pictures.js';

const TYPES: PictureType[] = ['image/png', 'image/jpeg', 'image/webp'];

/** Every valid picture of these tests, with its type and size. */
const VALID: [string, Buffer, PictureType, number, number][] = [
  ['png 1×1', png(1, 1), 'image/png', 1, 1],
  ['png 64×40', png(64, 40, 7), 'image/png', 64, 40],
  ['png RGBA (Chromium)', PNG_12x8, 'image/png', 12, 8],
  ['jpeg (Chromium)', JPEG_12x8, 'image/jpeg', 12, 8],
  ['webp lossy VP8X (Chromium)', WEBP_LOSSY_12x8, 'image/webp', 12, 8],
  ['webp lossless VP8X (Chromium)', WEBP_LOSSLESS_12x8, 'image/webp', 12, 8],
  ['webp alpha VP8X (Chromium)', WEBP_ALPHA_12x8, 'image/webp', 12, 8],
  ['webp simple VP8', WEBP_SIMPLE_LOSSY_12x8, 'image/webp', 12, 8],
  ['webp simple VP8L', WEBP_SIMPLE_LOSSLESS_12x8, 'image/webp', 12, 8],
];

const refusal = (b: Buffer, t: PictureType) => {
  const r = readPicture(b, t);
  return r.ok ? undefined : r.why;
};

const SVG = Buffer.from(
  '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><script>alert(1)</script></svg>',
);
const HTML = Buffer.from('<!doctype html><html><script>alert(document.domain)</script>');

/** A PNG whose IHDR declares w×h, with a little image data: the decompression bomb's shape. */
function pngDeclaring(w: number, h: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return Buffer.concat([
    PNG_SIGNATURE,
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', Buffer.from([0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** The JPEG with its frame header (SOF0) saying w×h. */
function jpegDeclaring(w: number, h: number): Buffer {
  const b = Buffer.from(JPEG_12x8);
  const sof = b.indexOf(Buffer.from([0xff, 0xc0]));
  b.writeUInt16BE(h, sof + 5);
  b.writeUInt16BE(w, sof + 7);
  return b;
}

/** The simple lossy WebP with its VP8 header saying w×h (14 bits each). */
function webpDeclaring(w: number, h: number): Buffer {
  const b = Buffer.from(WEBP_SIMPLE_LOSSY_12x8);
  b.writeUInt16LE(w, 12 + 8 + 6);
  b.writeUInt16LE(h, 12 + 8 + 8);
  return b;
}

describe('picture checker', () => {
  it('reads real PNG, JPEG and WebP files (Chromium-encoded ones included) with their size', () => {
    for (const [what, b, type, width, height] of VALID)
      expect(readPicture(b, type), what).toEqual({ ok: true, width, height });
  });

  it('refuses script documents labelled as any picture type, and every picture labelled as another', () => {
    for (const t of TYPES) {
      expect(refusal(SVG, t), t).toMatch(/^not a (PNG|JPEG|WebP)/);
      expect(refusal(HTML, t), t).toMatch(/^not a (PNG|JPEG|WebP)/);
      expect(refusal(Buffer.alloc(0), t), t).toBeDefined();
    }
    for (const [what, b, type] of VALID)
      for (const other of TYPES.filter((t) => t !== type))
        expect(refusal(b, other), `${what} as ${other}`).toMatch(/^not a /);
  });

  it('property: any truncation of a valid picture is refused', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...VALID),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        ([what, b, type], f) => {
          const cut = b.subarray(0, Math.floor(f * b.length));
          expect(refusal(cut, type), `${what} cut to ${cut.length}`).toBeDefined();
        },
      ),
      { numRuns: 500 },
    );
    // And every single cut of the small ones, exhaustively.
    for (const [what, b, type] of VALID)
      for (let n = 0; n < b.length; n++)
        expect(refusal(b.subarray(0, n), type), `${what} cut to ${n}`).toBeDefined();
  });

  it('property: bytes after the end of a valid picture are refused', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...VALID),
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        ([what, b, type], extra) => {
          expect(refusal(Buffer.concat([b, extra]), type), what).toBeDefined();
        },
      ),
      { numRuns: 300 },
    );
  });

  it('property: no input makes it throw (random bytes, or a valid picture with bytes changed)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.constantFrom(...TYPES), (b, t) => {
        expect(readPicture(b, t)).toHaveProperty('ok');
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(
        fc.constantFrom(...VALID),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 4,
        }),
        ([, b, type], changes) => {
          const m = Buffer.from(b);
          for (const [i, v] of changes) m[i % m.length] = v;
          const r = readPicture(m, type);
          expect(r).toHaveProperty('ok');
          if (r.ok) expect(r.width * r.height).toBeGreaterThan(0);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('property: a PNG of any size reads back that size; the cap refuses exactly the larger ones', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 70_000 }),
        fc.integer({ min: 1, max: 70_000 }),
        (w, h) => {
          const b = pngDeclaring(w, h);
          expect(readPicture(b, 'image/png')).toEqual({ ok: true, width: w, height: h });
          const why = pictureError(b, 'image/png', 1024);
          if (w <= 1024 && h <= 1024) expect(why).toBeUndefined();
          else expect(why).toBe(`${w}×${h} pixels: at most 1024×1024 are taken`);
        },
      ),
    );
  });

  it('PNG: a wrong CRC, no IDAT, a second IHDR, a non-empty IEND, 0 pixels or a bad depth are refused', () => {
    const good = png(8, 8);
    const badCrc = Buffer.from(good);
    badCrc[good.length - 20] = badCrc[good.length - 20]! ^ 1; // inside IDAT
    expect(refusal(badCrc, 'image/png')).toMatch(/wrong CRC/);
    const ihdr = good.subarray(8, 8 + 25);
    const iend = pngChunk('IEND', Buffer.alloc(0));
    expect(refusal(Buffer.concat([PNG_SIGNATURE, ihdr, iend]), 'image/png')).toMatch(/IDAT/);
    const idat = good.subarray(33, good.length - 12);
    expect(refusal(Buffer.concat([PNG_SIGNATURE, ihdr, ihdr, idat, iend]), 'image/png')).toMatch(
      /second IHDR/,
    );
    expect(
      refusal(
        Buffer.concat([PNG_SIGNATURE, ihdr, idat, pngChunk('IEND', Buffer.from('x'))]),
        'image/png',
      ),
    ).toMatch(/IEND is not empty/);
    expect(refusal(Buffer.concat([PNG_SIGNATURE, idat, ihdr, iend]), 'image/png')).toMatch(
      /begin with its IHDR/,
    );
    expect(refusal(pngDeclaring(0, 5), 'image/png')).toMatch(/0×5/);
    const depth = Buffer.from(ihdr.subarray(8, 21));
    depth[8] = 3; // 3 bits per sample: no such PNG
    expect(
      refusal(Buffer.concat([PNG_SIGNATURE, pngChunk('IHDR', depth), idat, iend]), 'image/png'),
    ).toMatch(/bit depth 3/);
  });

  it('JPEG: no frame header, no scan, or a size of 0 is refused; its size is read from SOF', () => {
    expect(readPicture(jpegDeclaring(300, 200), 'image/jpeg')).toEqual({
      ok: true,
      width: 300,
      height: 200,
    });
    expect(refusal(jpegDeclaring(0, 8), 'image/jpeg')).toMatch(/0×8/);
    expect(refusal(Buffer.from([0xff, 0xd8, 0xff, 0xd9]), 'image/jpeg')).toMatch(/SOF/);
    const sos = JPEG_12x8.indexOf(Buffer.from([0xff, 0xda]));
    const noScan = Buffer.concat([JPEG_12x8.subarray(0, sos), Buffer.from([0xff, 0xd9])]);
    expect(refusal(noScan, 'image/jpeg')).toMatch(/SOS/);
  });

  it('WebP: a RIFF size that is not the file’s, a canvas unlike its image, or no image is refused', () => {
    const b = Buffer.from(WEBP_LOSSY_12x8);
    b.writeUInt32LE(b.readUInt32LE(4) + 2, 4);
    expect(refusal(b, 'image/webp')).toMatch(/RIFF header says/);
    const vp8x = Buffer.from(webpChunk(WEBP_LOSSY_12x8, 'VP8X'));
    vp8x.writeUIntLE(100 - 1, 8 + 4, 3); // canvas 100 wide
    expect(refusal(webpOf(vp8x, webpChunk(WEBP_LOSSY_12x8, 'VP8 ')), 'image/webp')).toMatch(
      /canvas 100×8 but image 12×8/,
    );
    expect(refusal(webpOf(webpChunk(WEBP_LOSSY_12x8, 'VP8X')), 'image/webp')).toMatch(
      /without an image/,
    );
    expect(refusal(webpOf(webpChunk(WEBP_LOSSY_12x8, 'ICCP')), 'image/webp')).toMatch(
      /begins with chunk "ICCP"/,
    );
  });

  it('the avatar rule: E_BAD_REQUEST naming the type and what is wrong; 1024×1024 is taken, not more', () => {
    expect(FILE_LIMITS.maxAvatarSide).toBe(1024);
    expect(avatarPictureError('image/png', pngDeclaring(1024, 1024))).toBeUndefined();
    for (const [what, b, t, want] of [
      [
        'png bomb',
        pngDeclaring(65535, 65535),
        'image/png',
        /65535×65535 pixels: at most 1024×1024/,
      ],
      ['jpeg', jpegDeclaring(1025, 10), 'image/jpeg', /1025×10 pixels/],
      ['webp', webpDeclaring(16383, 16383), 'image/webp', /16383×16383 pixels/],
      ['svg as png', SVG, 'image/png', /not a PNG/],
      ['png as jpeg', png(8, 8), 'image/jpeg', /not a JPEG/],
    ] as const) {
      const e = avatarPictureError(t, b);
      expect(e?.code, what).toBe('E_BAD_REQUEST');
      expect(e?.message, what).toMatch(/^avatar \(image\/(png|jpeg|webp)\): /);
      expect(e?.message, what).toMatch(want);
    }
  });
});

describe('base64 on the wire', () => {
  it('property: canonical base64 of any bytes is taken; a lax spelling of them is not', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 100 }), (u) => {
        const s = Buffer.from(u).toString('base64');
        expect(isCanonicalBase64(s)).toBe(true);
        for (const lax of [
          '!!' + s,
          s.slice(0, 2) + '\n' + s.slice(2),
          s + ' ',
          s.replace(/=+$/, ''),
          s + '=',
        ])
          if (lax !== s) expect(isCanonicalBase64(lax), JSON.stringify(lax)).toBe(false);
      }),
    );
    // Unused bits set: "QR==" decodes as "QQ==" does, but is not how those bytes are written.
    expect(isCanonicalBase64('QQ==')).toBe(true);
    expect(isCanonicalBase64('QR==')).toBe(false);
    expect(isCanonicalBase64('QUJ=')).toBe(false);
    expect(isCanonicalBase64('%%%%')).toBe(false);
  });

  it('an avatar record with data that is not canonical base64 of at least one byte does not parse', () => {
    const base = {
      username: 'alice',
      type: 'image/png',
      ts: 1,
      sig: 'A'.repeat(86),
      cert: 'c',
    };
    const good = png(4, 4).toString('base64');
    expect(AvatarRecord.safeParse({ ...base, data: good }).success).toBe(true);
    for (const data of ['', '%%%%', '!!' + good, good.slice(0, 8) + '\n' + good.slice(8)])
      expect(AvatarRecord.safeParse({ ...base, data }).success, JSON.stringify(data)).toBe(false);
  });
});
