/**
 * Attack 11 helpers (DM replies and reactions, PROTOCOL.md §10.4), written from the documents:
 * what a peer shows of a message's reactions and quote, a device's P2P door for a hostile
 * member, and a bundle fetch that waits out `dm_bundles`'s rate.
 */
import crypto from 'node:crypto';
import { p2pConnect, sleep } from './lib.js';
import { seal, sessionWith, type Session } from './dm-lib.js';
import { dmPayload, type Hostile, type Peer } from './attack10-lib.js';

/** A message's reactions as `{emoji: [users, lower case, sorted]}`, plus `me` per emoji. */
export function reactionsOf(m: any): { by: Record<string, string[]>; me: Record<string, boolean> } {
  const by: Record<string, string[]> = {};
  const me: Record<string, boolean> = {};
  for (const r of (m?.reactions ?? []) as any[]) {
    by[r.emoji] = (r.users as string[]).map((u) => u.toLowerCase()).sort();
    me[r.emoji] = r.me;
    if (r.count !== r.users.length) by[r.emoji]!.push(`<count ${r.count}>`);
  }
  return { by, me };
}

/** A session from `me` to one device, retried while `dm_bundles` says to wait (1 a second). */
export async function sessionRetry(me: Hostile, username: string, deviceId: string) {
  for (let i = 0; ; i++) {
    try {
      return await sessionWith(me, username, deviceId);
    } catch (e) {
      if (i > 20) throw e;
      await sleep(300);
    }
  }
}

/**
 * A P2P link from a hostile member to a peer (§4.1), delivering sealed payloads with
 * `dm_deliver` (§10.6) over sessions started for the given devices; `deliver` answers `ok` or
 * the error code.
 */
export async function p2pDoor(
  p: Peer,
  me: Hostile,
  sessions: Map<string, Session>,
  base: Record<string, unknown>,
) {
  const link = await p2pConnect(p, { cert: (me as any).cert, key: (me as any).key });
  if (!link.ok) throw new Error('p2p handshake refused: ' + JSON.stringify(link.hello));
  return {
    close: () => link.c.close(),
    async deliver(to: string, payload: Record<string, unknown>) {
      const s = sessions.get(to)!;
      const body = seal(s, dmPayload({ ...base, ...payload }));
      const r = await link.c.req('dm_deliver', {
        fromDevice: me.dev.deviceId,
        envelopes: [{ id: crypto.randomUUID(), to, body }],
      });
      return r.body?.results?.[0]?.ok
        ? 'ok'
        : ((r.body?.results?.[0]?.error?.code ?? r.error?.code ?? JSON.stringify(r)) as string);
    },
  };
}
