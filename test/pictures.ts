/**
 * Real pictures for the avatar tests, without an image library: PNGs built byte by byte (any
 * size, any colour), and a PNG, a JPEG and WebPs that Debian's Chromium encoded from a 12×8 canvas
 * (`canvas.toDataURL`), kept here as base64: the lossy and lossless WebPs come in the extended
 * format (VP8X, with an ICC profile), and are unwrapped into the simple format too.
 */
import zlib from 'node:zlib';

/** One PNG chunk: length, type, data, CRC-32. */
export function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(td));
  return Buffer.concat([len, td, crc]);
}

export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** A w×h RGB PNG of one colour (`seed` picks it): every byte of it what a decoder wants. */
export function png(w: number, h: number, seed = 1): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const row = Buffer.alloc(1 + w * 3);
  for (let x = 0; x < w; x++)
    row.set([(seed * 37) & 255, (seed * 91) & 255, (seed * 13) & 255], 1 + x * 3);
  const raw = Buffer.concat(Array.from({ length: h }, () => row));
  return Buffer.concat([
    PNG_SIGNATURE,
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', zlib.deflateSync(raw)),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A 12×8 RGBA PNG as Chromium encodes a canvas. */
export const PNG_12x8 = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAwAAAAICAYAAADN5B7xAAAAx0lEQVR4AVyQsQ3CMBBFzx4KOwugKIqiiJ6eAehZgJ4B6BmAngHo2cPn6vj/4kSI6uv7/n9nO37y3t5db6/c27Mb7JEGu+fRbmm0a57sspvsnGY77WY7poPFGoKoiVSJrgpf4DVEoVZ4nzeNakF4WEREJaAU3CtK9ccX5uAjQ6tRHjoJJQw5I0xbmVAURBYS1MNQDy9aEFZeFzeo0FjXYQsrPEmuCG9znHPTtoEkX++kgLdgAyF/HoXld0jyUiPRk+iKEn+P/gsAAP//sSsUzQAAAAZJREFUAwDY9YgnsN3sCwAAAABJRU5ErkJggg==',
  'base64',
);

/** A 12×8 JPEG (baseline, JFIF, ICC profile) as Chromium encodes a canvas. */
export const JPEG_12x8 = Buffer.from(
  '/9j/4AAQSkZJRgABAQAAAQABAAD/4gHYSUNDX1BST0ZJTEUAAQEAAAHIAAAAAAQwAABtbnRyUkdCIFhZWiAH4AABAAEAAAAAAABhY3NwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAQAA9tYAAQAAAADTLQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAlkZXNjAAAA8AAAACRyWFlaAAABFAAAABRnWFlaAAABKAAAABRiWFlaAAABPAAAABR3dHB0AAABUAAAABRyVFJDAAABZAAAAChnVFJDAAABZAAAAChiVFJDAAABZAAAAChjcHJ0AAABjAAAADxtbHVjAAAAAAAAAAEAAAAMZW5VUwAAAAgAAAAcAHMAUgBHAEJYWVogAAAAAAAAb6IAADj1AAADkFhZWiAAAAAAAABimQAAt4UAABjaWFlaIAAAAAAAACSgAAAPhAAAts9YWVogAAAAAAAA9tYAAQAAAADTLXBhcmEAAAAAAAQAAAACZmYAAPKnAAANWQAAE9AAAApbAAAAAAAAAABtbHVjAAAAAAAAAAEAAAAMZW5VUwAAACAAAAAcAEcAbwBvAGcAbABlACAASQBuAGMALgAgADIAMAAxADb/2wBDAAYEBQYFBAYGBQYHBwYIChAKCgkJChQODwwQFxQYGBcUFhYaHSUfGhsjHBYWICwgIyYnKSopGR8tMC0oMCUoKSj/2wBDAQcHBwoIChMKChMoGhYaKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCj/wAARCAAIAAwDASIAAhEBAxEB/8QAFgABAQEAAAAAAAAAAAAAAAAAAAUG/8QAGxAAAQQDAAAAAAAAAAAAAAAAAAEDBCEFIzH/xAAVAQEBAAAAAAAAAAAAAAAAAAADBf/EABoRAAICAwAAAAAAAAAAAAAAAAACBAUREjH/2gAMAwEAAhEDEQA/AMRkJPbID0jYtgDREXBZuZD79P/Z',
  'base64',
);

/** A 12×8 lossy WebP, extended format (VP8X, ICCP, VP8), as Chromium encodes a canvas. */
export const WEBP_LOSSY_12x8 = Buffer.from(
  'UklGRiICAABXRUJQVlA4WAoAAAAgAAAACwAABwAASUNDUMgBAAAAAAHIAAAAAAQwAABtbnRyUkdCIFhZWiAH4AABAAEAAAAAAABhY3NwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAQAA9tYAAQAAAADTLQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAlkZXNjAAAA8AAAACRyWFlaAAABFAAAABRnWFlaAAABKAAAABRiWFlaAAABPAAAABR3dHB0AAABUAAAABRyVFJDAAABZAAAAChnVFJDAAABZAAAAChiVFJDAAABZAAAAChjcHJ0AAABjAAAADxtbHVjAAAAAAAAAAEAAAAMZW5VUwAAAAgAAAAcAHMAUgBHAEJYWVogAAAAAAAAb6IAADj1AAADkFhZWiAAAAAAAABimQAAt4UAABjaWFlaIAAAAAAAACSgAAAPhAAAts9YWVogAAAAAAAA9tYAAQAAAADTLXBhcmEAAAAAAAQAAAACZmYAAPKnAAANWQAAE9AAAApbAAAAAAAAAABtbHVjAAAAAAAAAAEAAAAMZW5VUwAAACAAAAAcAEcAbwBvAGcAbABlACAASQBuAGMALgAgADIAMAAxADZWUDggNAAAANABAJ0BKgwACAABQCYlsAJ0AQ8O5V2QAP7pmY5n2yUzBjIsqOf/OYeDPYqHf1QQfjPAAAA=',
  'base64',
);

/** A 12×8 lossless WebP, extended format (VP8X, ICCP, VP8L), as Chromium encodes at quality 1. */
export const WEBP_LOSSLESS_12x8 = Buffer.from(
  'UklGRrYCAABXRUJQVlA4WAoAAAAgAAAACwAABwAASUNDUMgBAAAAAAHIAAAAAAQwAABtbnRyUkdCIFhZWiAH4AABAAEAAAAAAABhY3NwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAQAA9tYAAQAAAADTLQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAlkZXNjAAAA8AAAACRyWFlaAAABFAAAABRnWFlaAAABKAAAABRiWFlaAAABPAAAABR3dHB0AAABUAAAABRyVFJDAAABZAAAAChnVFJDAAABZAAAAChiVFJDAAABZAAAAChjcHJ0AAABjAAAADxtbHVjAAAAAAAAAAEAAAAMZW5VUwAAAAgAAAAcAHMAUgBHAEJYWVogAAAAAAAAb6IAADj1AAADkFhZWiAAAAAAAABimQAAt4UAABjaWFlaIAAAAAAAACSgAAAPhAAAts9YWVogAAAAAAAA9tYAAQAAAADTLXBhcmEAAAAAAAQAAAACZmYAAPKnAAANWQAAE9AAAApbAAAAAAAAAABtbHVjAAAAAAAAAAEAAAAMZW5VUwAAACAAAAAcAEcAbwBvAGcAbABlACAASQBuAGMALgAgADIAMAAxADZWUDhMxwAAAC8LwAEAj8KgbSNJDqjlD617DwgGbdsITjZK7u6ZPEG2TS95f5PN/w8czv99MAulsFEYDAMIYGwUGwYobWZAYxLMxMzEzDSEQsBMA8NgGBHMtFlpzIA2n4JJMNOwUVYavykJZjCVGRtFFMpe4CAAALKNz7Zt47ZtRvQ//t/ndbsYNGloq7/3/bAadYrINYTP47SZ9qrEtyT2ddnPh3UeOgpP3I7LSVtGniZS2Hkz61ZxYMoMDu8W/SYLbZUjEXA9bovI1QUahQAA',
  'base64',
);

/** A 12×8 lossy WebP with transparency (VP8X, ICCP, ALPH, VP8), as Chromium encodes a canvas. */
export const WEBP_ALPHA_12x8 = Buffer.from(
  'UklGRkgCAABXRUJQVlA4WAoAAAAwAAAACwAABwAASUNDUMgBAAAAAAHIAAAAAAQwAABtbnRyUkdCIFhZWiAH4AABAAEAAAAAAABhY3NwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAQAA9tYAAQAAAADTLQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAlkZXNjAAAA8AAAACRyWFlaAAABFAAAABRnWFlaAAABKAAAABRiWFlaAAABPAAAABR3dHB0AAABUAAAABRyVFJDAAABZAAAAChnVFJDAAABZAAAAChiVFJDAAABZAAAAChjcHJ0AAABjAAAADxtbHVjAAAAAAAAAAEAAAAMZW5VUwAAAAgAAAAcAHMAUgBHAEJYWVogAAAAAAAAb6IAADj1AAADkFhZWiAAAAAAAABimQAAt4UAABjaWFlaIAAAAAAAACSgAAAPhAAAts9YWVogAAAAAAAA9tYAAQAAAADTLXBhcmEAAAAAAAQAAAACZmYAAPKnAAANWQAAE9AAAApbAAAAAAAAAABtbHVjAAAAAAAAAAEAAAAMZW5VUwAAACAAAAAcAEcAbwBvAGcAbABlACAASQBuAGMALgAgADIAMAAxADZBTFBIFwAAAAEPMP8REUIh2wgQwvnbnNkPEdH/IF4PAFZQOCA6AAAAsAEAnQEqDAAIAAFAJiWwAnQBDmfx3gD+9W/WA/fuZQCAO2Oo/KopP52ck/rki51se9DRG/qgg/GeAA==',
  'base64',
);

/** A WebP's chunk of this type (the first), with its header: e.g. the VP8 bitstream of the lossy one. */
export function webpChunk(webp: Buffer, type: string): Buffer {
  for (let at = 12; at + 8 <= webp.length;) {
    const len = webp.readUInt32LE(at + 4);
    const end = at + 8 + len + (len & 1);
    if (webp.toString('latin1', at, at + 4) === type) return webp.subarray(at, end);
    at = end;
  }
  throw new Error(`no ${type} chunk`);
}

/** A WebP of these chunks: RIFF, its size, WEBP. */
export function webpOf(...chunks: Buffer[]): Buffer {
  const body = Buffer.concat([Buffer.from('WEBP', 'latin1'), ...chunks]);
  const head = Buffer.alloc(8);
  head.write('RIFF', 0, 'latin1');
  head.writeUInt32LE(body.length, 4);
  return Buffer.concat([head, body]);
}

/** The simple-format lossy WebP (RIFF, VP8) of the same picture. */
export const WEBP_SIMPLE_LOSSY_12x8 = webpOf(webpChunk(WEBP_LOSSY_12x8, 'VP8 '));
/** The simple-format lossless WebP (RIFF, VP8L) of the same picture. */
export const WEBP_SIMPLE_LOSSLESS_12x8 = webpOf(webpChunk(WEBP_LOSSLESS_12x8, 'VP8L'));
