/**
 * The id of the one conversation two users have (docs/PROTOCOL.md §10.4): both sides derive it
 * from their names, so two peers that start a DM with each other at the same moment land in the
 * same conversation. A UUID of version 8 (RFC 9562 §5.8) over the first 16 bytes of
 * SHA-256("hchat-dm-v1:" || a || "\n" || b), a and b the lower-case names in order.
 */
import crypto from 'node:crypto';

export function directConversationId(a: string, b: string): string {
  const [x, y] = [a.toLowerCase(), b.toLowerCase()].sort();
  const h = crypto.createHash('sha256').update(`hchat-dm-v1:${x}\n${y}`).digest().subarray(0, 16);
  h[6] = (h[6]! & 0x0f) | 0x80;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const s = h.toString('hex');
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`;
}

/** True for an id of the derived kind (version 8): only a pair's conversation has one. */
export function isDirectId(id: string): boolean {
  return id[14] === '8';
}

/** Members as a conversation keeps them: sorted, each once (case-insensitively). */
export function sortedMembers(names: readonly string[]): string[] {
  const seen = new Map<string, string>();
  for (const n of names) if (!seen.has(n.toLowerCase())) seen.set(n.toLowerCase(), n);
  return [...seen.values()].sort();
}
