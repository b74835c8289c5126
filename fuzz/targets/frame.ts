/**
 * Frame codec (src/protocol/frame.ts): arbitrary bytes, cut into arbitrary chunks, fed to a
 * FrameDecoder as a socket would. Contract: it throws only HchatError E_BAD_FRAME or
 * E_FRAME_TOO_LARGE; every frame it returns is a plain JSON object that survives an
 * encode/decode round trip; it never holds more than one frame's worth of bytes.
 *
 * Input: byte 0 picks the frame limit (odd: 64 bytes, to reach E_FRAME_TOO_LARGE cheaply; even:
 * the default), byte 1 the chunk size (0: everything at once), the rest is the stream.
 */
import {
  DEFAULT_MAX_FRAME,
  FrameDecoder,
  HEADER_BYTES,
  encodeFrame,
} from '../../src/protocol/frame.js';
import { HchatError } from '../../src/protocol/errors.js';
import { ContractViolation, type FuzzTarget } from '../engine/target.js';
import { goldenFrames } from '../support/golden.js';

const ALLOWED = new Set(['E_BAD_FRAME', 'E_FRAME_TOO_LARGE']);
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The bodies of the whole frames at the start of `stream`, as the wire layout defines them. */
function bodies(stream: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let o = 0; o + HEADER_BYTES <= stream.length;) {
    const len = stream.readUInt32BE(o);
    if (o + HEADER_BYTES + len > stream.length) break;
    out.push(stream.subarray(o + HEADER_BYTES, o + HEADER_BYTES + len));
    o += HEADER_BYTES + len;
  }
  return out;
}

function validUtf8(b: Buffer): boolean {
  try {
    utf8.decode(b);
    return true;
  } catch {
    return false;
  }
}

function run(data: Buffer): void {
  if (data.length < 2) return;
  const maxFrame = data[0]! & 1 ? 64 : DEFAULT_MAX_FRAME;
  const chunk = data[1]! % 17;
  const stream = data.subarray(2);
  const d = new FrameDecoder(maxFrame);
  const wire = bodies(stream);
  let n = 0;
  try {
    for (let o = 0; o < stream.length || o === 0; o += chunk || stream.length || 1) {
      const piece = stream.subarray(o, chunk ? o + chunk : undefined);
      for (const f of d.push(piece)) {
        if (f === null || typeof f !== 'object' || Array.isArray(f)) {
          throw new ContractViolation('decoded frame is not an object', JSON.stringify(f));
        }
        const body = wire[n++];
        if (body && !validUtf8(body)) {
          throw new ContractViolation(
            'a body that is not UTF-8 was accepted',
            body.toString('hex'),
          );
        }
        const again = new FrameDecoder(DEFAULT_MAX_FRAME).push(encodeFrame(f));
        if (again.length !== 1 || JSON.stringify(again[0]) !== JSON.stringify(f)) {
          throw new ContractViolation('frame does not survive a round trip', JSON.stringify(f));
        }
      }
      if (d.pending >= maxFrame + HEADER_BYTES) {
        throw new ContractViolation(
          'decoder holds more than a frame',
          `${d.pending} bytes, limit ${maxFrame}`,
        );
      }
      if (stream.length === 0) break;
    }
  } catch (err) {
    if (err instanceof HchatError && ALLOWED.has(err.code)) return;
    throw err;
  }
}

const target: FuzzTarget = {
  name: 'frame',
  description: 'FrameDecoder fed arbitrary chunks: only E_BAD_FRAME/E_FRAME_TOO_LARGE, objects out',
  cover: ['/src/protocol/frame.ts'],
  maxLen: 2048,
  dictionary: [
    '{"t":"req"}',
    '{}',
    '[]',
    'null',
    '"\\ud800"',
    '\u00ff',
    '\xc0\x80',
    '\xed\xa0\x80',
  ],
  seeds: () => {
    const frames = goldenFrames();
    const all = Buffer.concat(frames);
    return [
      ...frames.map((f) => Buffer.concat([Buffer.from([0, 0]), f])),
      Buffer.concat([Buffer.from([0, 3]), all]),
      Buffer.concat([Buffer.from([1, 1]), frames[0] ?? Buffer.alloc(0)]),
      Buffer.from([0, 0, 0, 0, 0, 0]),
      Buffer.from([0, 0, 0xff, 0xff, 0xff, 0xff]),
      Buffer.concat([Buffer.from([0, 0, 0, 0, 0, 4]), Buffer.from('null')]),
    ];
  },
  run,
};
export default target;
