/** The checked-in golden frames (test/golden/frames.json) as encoded bytes: seeds of several targets. */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const file = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../test/golden/frames.json',
);

/** Each golden frame, encoded (length prefix and body). */
export function goldenFrames(): Buffer[] {
  const list = JSON.parse(fs.readFileSync(file, 'utf8')) as Array<{ hex: string }>;
  return list.map((g) => Buffer.from(g.hex, 'hex'));
}

/** Each golden frame's JSON object. */
export function goldenObjects(): Array<Record<string, unknown>> {
  const list = JSON.parse(fs.readFileSync(file, 'utf8')) as Array<{
    frame: Record<string, unknown>;
  }>;
  return list.map((g) => g.frame);
}
