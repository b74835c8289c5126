/** Golden frames: reference encodings that keep the wire format from drifting. */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FrameDecoder, encodeFrame } from '../src/protocol/frame.js';

interface Golden {
  name: string;
  frame: Record<string, unknown>;
  hex: string;
}

const golden: Golden[] = JSON.parse(
  fs.readFileSync(path.resolve(import.meta.dirname, 'golden', 'frames.json'), 'utf8'),
);

describe('golden frames', () => {
  it.each(golden.map((g) => [g.name, g] as const))(
    '%s encodes and decodes byte for byte',
    (_name, g) => {
      expect(encodeFrame(g.frame).toString('hex')).toBe(g.hex);
      expect(new FrameDecoder().push(Buffer.from(g.hex, 'hex'))).toEqual([g.frame]);
    },
  );
});
