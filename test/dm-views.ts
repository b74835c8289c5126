/** What a peer's local API shows of a conversation, and what the DM tests send it. */
import crypto from 'node:crypto';
import { waitFor } from './testnet.js';

/** A GET through some peer's local API. */
export type Read = (route: string) => Promise<{ status: number; body: any }>;

/** A conversation's messages as `read` answers them (notices left out), by id. */
export async function shown(read: Read, dm: string): Promise<Map<string, any>> {
  const r = await read(`/api/dms/${dm}/messages?limit=500`);
  if (r.status !== 200) throw new Error(JSON.stringify(r.body));
  return new Map(
    (r.body.messages as any[]).filter((m) => m.kind === 'message').map((m) => [m.id, m]),
  );
}

/** A §10.4 payload of any kind, fields as the sender wants them, with a fresh id and `ts`. */
export function rawPayload(p: Record<string, unknown>): Buffer {
  return Buffer.from(JSON.stringify({ id: crypto.randomUUID(), ts: Date.now(), ...p }), 'utf8');
}

/** The conversation `call`'s user starts with `members` (retried while the peer comes up). */
export function startDm(
  call: (method: string, route: string, body?: unknown) => Promise<{ status: number; body: any }>,
  members: string[],
): Promise<any> {
  return waitFor(
    async () => {
      const r = await call('POST', '/api/dms', { members });
      return r.status === 201 || r.status === 200 ? r.body : undefined;
    },
    15_000,
    `a DM with ${members.join(', ')} to start`,
  );
}
