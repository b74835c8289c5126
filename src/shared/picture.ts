/**
 * Is this a whole picture of the type it claims? (docs/SECURITY.md "Files and avatars".) A
 * structural check of PNG, JPEG and WebP, without decoding a pixel: the container is walked from
 * its signature to its last byte, every length is checked against what is there, and the
 * picture's declared size is read. A script document labelled `image/png`, a picture cut short,
 * or bytes after its end are refused; so are the dimensions a caller does not want (a small file
 * declaring 65535×65535 pixels makes every viewer's browser try to decode gigabytes).
 *
 * Pure: no I/O; it reads the bytes where they are, copying none (the PNG walk checks each
 * chunk's CRC-32).
 */
import zlib from 'node:zlib';

/** The picture types this checker reads. */
export type PictureType = 'image/png' | 'image/jpeg' | 'image/webp';

/** A picture's declared size in pixels, or why the bytes are not a whole picture of the type. */
export type PictureCheck = { ok: true; width: number; height: number } | { ok: false; why: string };

/** Reads the bytes as a picture of `type`: its width and height, or why they are not one. */
export function readPicture(data: Uint8Array, type: PictureType): PictureCheck {
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  switch (type) {
    case 'image/png':
      return readPng(b);
    case 'image/jpeg':
      return readJpeg(b);
    case 'image/webp':
      return readWebp(b);
  }
}

/**
 * Why the bytes are not a whole picture of `type` at most `maxSide` pixels wide and high, or
 * undefined when they are one.
 */
export function pictureError(
  data: Uint8Array,
  type: PictureType,
  maxSide: number,
): string | undefined {
  const p = readPicture(data, type);
  if (!p.ok) return p.why;
  if (p.width > maxSide || p.height > maxSide)
    return `${p.width}×${p.height} pixels: at most ${maxSide}×${maxSide} are taken`;
  return undefined;
}

const fail = (why: string): PictureCheck => ({ ok: false, why });
const size = (width: number, height: number): PictureCheck =>
  width > 0 && height > 0
    ? { ok: true, width, height }
    : fail(`declares ${width}×${height} pixels`);

// ---- PNG (ISO/IEC 15948, RFC 2083) ------------------------------------------------------------

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** Bit depths each colour type allows (PNG §11.2.2). */
const PNG_DEPTHS: Readonly<Record<number, readonly number[]>> = {
  0: [1, 2, 4, 8, 16],
  2: [8, 16],
  3: [1, 2, 4, 8],
  4: [8, 16],
  6: [8, 16],
};

/** Signature, IHDR first, then chunk after chunk (lengths and CRCs right), IDAT, and IEND last. */
function readPng(b: Buffer): PictureCheck {
  if (b.length < PNG_SIGNATURE.length || !b.subarray(0, 8).equals(PNG_SIGNATURE))
    return fail('not a PNG (no PNG signature)');
  let at = 8;
  let width = 0;
  let height = 0;
  let idat = false;
  for (let n = 0; ; n++) {
    if (at + 12 > b.length) return fail(`PNG cut short at byte ${at} (no IEND)`);
    const len = b.readUInt32BE(at);
    const type = b.toString('latin1', at + 4, at + 8);
    if (len > 0x7fffffff || at + 12 + len > b.length)
      return fail(`PNG chunk ${JSON.stringify(type)} at byte ${at} runs past the end`);
    if (!/^[A-Za-z]{4}$/.test(type)) return fail(`PNG chunk at byte ${at} has no valid type`);
    const crc = b.readUInt32BE(at + 8 + len);
    if (zlib.crc32(b.subarray(at + 4, at + 8 + len)) !== crc)
      return fail(`PNG chunk ${type} at byte ${at}: wrong CRC`);
    const body = b.subarray(at + 8, at + 8 + len);
    at += 12 + len;
    if (n === 0) {
      if (type !== 'IHDR' || len !== 13) return fail('PNG does not begin with its IHDR');
      width = body.readUInt32BE(0);
      height = body.readUInt32BE(4);
      if (width > 0x7fffffff || height > 0x7fffffff) return fail('PNG: IHDR out of range');
      if (!PNG_DEPTHS[body[9]!]?.includes(body[8]!))
        return fail(`PNG: bit depth ${body[8]} with colour type ${body[9]}`);
      continue;
    }
    if (type === 'IHDR') return fail('PNG with a second IHDR');
    if (type === 'IDAT') idat = true;
    if (type === 'IEND') {
      if (len !== 0) return fail('PNG: IEND is not empty');
      if (!idat) return fail('PNG without image data (IDAT)');
      if (at !== b.length) return fail(`PNG followed by ${b.length - at} bytes after IEND`);
      return size(width, height);
    }
  }
}

// ---- JPEG (ITU T.81, JFIF) ---------------------------------------------------------------------

/** Start-of-frame markers: the ones that give the picture's size (not DHT C4, JPG C8, DAC CC). */
const isSof = (m: number) => m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;
/** Markers that stand alone, without a length: TEM, RST0–7 (SOI and EOI are handled apart). */
const standsAlone = (m: number) => m === 0x01 || (m >= 0xd0 && m <= 0xd7);

/** SOI, then segments (lengths inside the file), a frame header before the first scan, EOI last. */
function readJpeg(b: Buffer): PictureCheck {
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) return fail('not a JPEG (no SOI marker)');
  let at = 2;
  let frame: PictureCheck | undefined;
  let scans = 0;
  for (;;) {
    if (at >= b.length || b[at] !== 0xff)
      return fail(
        at >= b.length ? 'JPEG cut short (no EOI)' : `JPEG: no marker at byte ${at} (corrupt)`,
      );
    while (at < b.length && b[at] === 0xff) at++; // fill bytes before a marker
    if (at >= b.length) return fail('JPEG cut short (no EOI)');
    const m = b[at++]!;
    if (m === 0xd9) {
      if (!frame) return fail('JPEG without a frame header (SOF)');
      if (scans === 0) return fail('JPEG without a scan (SOS)');
      if (at !== b.length) return fail(`JPEG followed by ${b.length - at} bytes after EOI`);
      return frame;
    }
    if (m === 0x00 || m === 0xd8) return fail(`JPEG: unexpected marker 0xff${hex(m)}`);
    if (standsAlone(m)) continue;
    if (at + 2 > b.length) return fail('JPEG cut short (no EOI)');
    const len = b.readUInt16BE(at);
    if (len < 2 || at + len > b.length)
      return fail(`JPEG segment 0xff${hex(m)} at byte ${at - 2} runs past the end`);
    if (isSof(m)) {
      if (frame) return fail('JPEG with a second frame header (SOF)');
      if (len < 8) return fail('JPEG: frame header too short');
      frame = size(b.readUInt16BE(at + 5), b.readUInt16BE(at + 3));
      if (!frame.ok) return fail(`JPEG frame ${frame.why}`);
    }
    at += len;
    if (m === 0xda) {
      if (!frame) return fail('JPEG scan (SOS) before its frame header (SOF)');
      scans++;
      // Entropy-coded data: 0xff is followed by 0x00 (a stuffed byte) or RSTn inside it; any
      // other marker ends it.
      while (
        at + 1 < b.length &&
        !(b[at] === 0xff && b[at + 1] !== 0x00 && !standsAlone(b[at + 1]!))
      )
        at++;
      if (at + 1 >= b.length) return fail('JPEG cut short in a scan (no EOI)');
    }
  }
}

const hex = (m: number) => m.toString(16).padStart(2, '0');

// ---- WebP (RFC 9649) ---------------------------------------------------------------------------

/** RIFF size equal to the file's, chunks that tile it exactly, and a VP8, VP8L or VP8X header. */
function readWebp(b: Buffer): PictureCheck {
  if (
    b.length < 12 ||
    b.toString('latin1', 0, 4) !== 'RIFF' ||
    b.toString('latin1', 8, 12) !== 'WEBP'
  )
    return fail('not a WebP (no RIFF WEBP header)');
  const riff = b.readUInt32LE(4);
  if (riff + 8 !== b.length)
    return fail(`WebP: its RIFF header says ${riff + 8} bytes, it has ${b.length}`);
  const chunks: { type: string; body: Buffer }[] = [];
  for (let at = 12; at < b.length;) {
    if (at + 8 > b.length) return fail(`WebP cut short at byte ${at}`);
    const type = b.toString('latin1', at, at + 4);
    const len = b.readUInt32LE(at + 4);
    const end = at + 8 + len + (len & 1); // odd chunks are padded to an even length
    if (end > b.length)
      return fail(`WebP chunk ${JSON.stringify(type)} at byte ${at} runs past the end`);
    chunks.push({ type, body: b.subarray(at + 8, at + 8 + len) });
    at = end;
  }
  const first = chunks[0];
  if (!first) return fail('WebP without an image');
  if (first.type === 'VP8 ' || first.type === 'VP8L') return readBitstream(first.type, first.body);
  if (first.type !== 'VP8X') return fail(`WebP begins with chunk ${JSON.stringify(first.type)}`);
  if (first.body.length < 10) return fail('WebP: VP8X header too short');
  const width = first.body.readUIntLE(4, 3) + 1;
  const height = first.body.readUIntLE(7, 3) + 1;
  // The extended format's pixels: one still image, or the frames of an animation.
  const image = chunks.find((c) => c.type === 'VP8 ' || c.type === 'VP8L');
  if (image) {
    const inner = readBitstream(image.type, image.body);
    if (!inner.ok) return inner;
    if (inner.width !== width || inner.height !== height)
      return fail(`WebP: canvas ${width}×${height} but image ${inner.width}×${inner.height}`);
  } else if (!chunks.some((c) => c.type === 'ANMF')) return fail('WebP (VP8X) without an image');
  return size(width, height);
}

/** The header of a lossy (VP8, RFC 6386 §9.1) or lossless (VP8L) bitstream: its size. */
function readBitstream(type: string, body: Buffer): PictureCheck {
  if (type === 'VP8 ') {
    if (body.length < 10) return fail('WebP: VP8 header too short');
    if ((body[0]! & 1) !== 0) return fail('WebP: VP8 data is not a key frame');
    if (body[3] !== 0x9d || body[4] !== 0x01 || body[5] !== 0x2a)
      return fail('WebP: VP8 start code missing');
    return size(body.readUInt16LE(6) & 0x3fff, body.readUInt16LE(8) & 0x3fff);
  }
  if (body.length < 5 || body[0] !== 0x2f) return fail('WebP: VP8L signature missing');
  const bits = body.readUInt32LE(1);
  if (bits >>> 29 !== 0) return fail('WebP: VP8L version is not 0');
  return size((bits & 0x3fff) + 1, ((bits >>> 14) & 0x3fff) + 1);
}
