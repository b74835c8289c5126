/**
 * Tokens taken from the source of the code under test (AFL's "autodict"): its string literals, and
 * its integer literals as 1-, 2- or 4-byte big- and little-endian values. Without comparison
 * tracing, this is what lets mutation guess a magic byte, a type name or an op name that guards a
 * branch, instead of waiting for chance to produce it.
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Most tokens kept from one run's sources. */
const MAX_TOKENS = 2000;

/** Tokens of the files behind these script URLs (file: URLs; others are skipped). */
export function tokensOf(urls: Iterable<string>): Buffer[] {
  const seen = new Set<string>();
  const out: Buffer[] = [];
  const add = (b: Buffer) => {
    const k = b.toString('latin1');
    if (b.length === 0 || b.length > 64 || seen.has(k) || out.length >= MAX_TOKENS) return;
    seen.add(k);
    out.push(b);
  };
  for (const url of urls) {
    if (!url.startsWith('file:')) continue;
    let text: string;
    try {
      text = fs.readFileSync(fileURLToPath(url), 'utf8');
    } catch {
      continue;
    }
    text = text.replace(/^\s*(\/\/|\*|\/\*\*).*$/gm, ''); // comments
    for (const m of text.matchAll(/'((?:[^'\\\n]|\\.)*)'|"((?:[^"\\\n]|\\.)*)"/g)) {
      const s = m[1] ?? m[2] ?? '';
      if (!s.includes('${')) add(Buffer.from(s));
    }
    for (const m of text.matchAll(/\b(0x[0-9a-fA-F_]+|\d[\d_]*)\b/g)) {
      const n = Number(m[1]!.replace(/_/g, ''));
      if (!Number.isSafeInteger(n) || n < 0 || n > 0xffffffff) continue;
      add(Buffer.from(String(n)));
      if (n <= 0xff) add(Buffer.from([n]));
      else if (n <= 0xffff) {
        add(Buffer.from([n >> 8, n & 0xff]));
        add(Buffer.from([n & 0xff, n >> 8]));
      } else {
        const be = Buffer.alloc(4);
        be.writeUInt32BE(n);
        add(be);
        add(Buffer.from(be).reverse());
      }
    }
  }
  return out;
}
