/**
 * `dm_deliver` on a peer's P2P port (docs/PROTOCOL.md §10.6): a device of the link's proven user
 * hands over envelopes for this device. Each is answered on its own: taken (also when it was
 * taken before, or its sender is blocked), or refused with the reason; a refusal the server
 * could settle (E_OFFLINE: a new sender device whose key cannot be checked now) tells the
 * sender to leave it in the mailbox instead.
 */
import { HchatError } from '../protocol/errors.js';
import { P2P_DM_OPS } from '../protocol/dm.js';
import { describeIssues } from '../protocol/rpc.js';
import type { RateLimiter } from '../shared/rate-limit.js';
import type { DmInbox } from './dm-inbox.js';

type Result = { id: string; ok: true } | { id: string; error: ReturnType<HchatError['toWire']> };

export async function deliverRequest(
  inbox: DmInbox,
  limiter: RateLimiter,
  ownDevice: () => { account: string; deviceId: string } | undefined,
  who: { username: string; role: string },
  raw: unknown,
  linkName: string,
): Promise<{ results: Result[] }> {
  const parsed = P2P_DM_OPS.dm_deliver.req.safeParse(raw ?? {});
  if (!parsed.success)
    throw new HchatError('E_BAD_REQUEST', `dm_deliver: ${describeIssues(parsed.error)}`);
  if (who.role !== 'user') throw new HchatError('E_FORBIDDEN', 'visitors have no direct messages');
  // Each envelope may cost a decryption and a key check: a sender's pace is bounded.
  const wait = limiter.take(who.username.toLowerCase(), parsed.data.envelopes.length);
  if (wait > 0) throw HchatError.rateLimited('dm_deliver: too many envelopes', wait);
  const device = ownDevice();
  if (!device)
    throw new HchatError('E_NOT_FOUND', 'no user with direct messages is logged in here');
  const results: Result[] = [];
  for (const e of parsed.data.envelopes) {
    if (e.to !== device.deviceId) {
      results.push({
        id: e.id,
        error: new HchatError('E_NOT_FOUND', 'no such device here').toWire(),
      });
      continue;
    }
    try {
      await inbox.take(
        device.account,
        { username: who.username, deviceId: parsed.data.fromDevice },
        e.id,
        e.body,
        { kind: 'peer', name: linkName },
      );
      results.push({ id: e.id, ok: true });
    } catch (err) {
      if (!(err instanceof HchatError)) throw err;
      // Refused, and logged as a refusal from the mailbox is (§10.4); E_OFFLINE only sends the
      // envelope to the mailbox, where it is taken later.
      if (err.code !== 'E_OFFLINE')
        inbox.refused(
          { id: e.id, from: { username: who.username, deviceId: parsed.data.fromDevice } },
          err,
          linkName,
        );
      results.push({ id: e.id, error: err.toWire() });
    }
  }
  return { results };
}
