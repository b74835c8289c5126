/**
 * The REST API's gateway across server instances (issue 17, docs/REST.md "Gateway"): two real
 * `hchat server` processes on one PostgreSQL database and one NATS. A gateway session on one
 * instance hears of a member who joined through the other, and a token revoked through the
 * other instance closes it at once (the bus carries the revocation; it is not left to the
 * session's periodic re-read of its token).
 */
import crypto from 'node:crypto';
import { describe, expect, it, onTestFinished } from 'vitest';
import WebSocket from 'ws';
import { waitFor } from './testnet.js';
import { startCluster } from './cluster-kit.js';
import { registerLogin } from './outsider/lib.js';

describe('the gateway across two instances on PostgreSQL and NATS', () => {
  it('hears of a join through the other instance, and closes at once on a revocation there', async () => {
    const { at, servers } = await startCluster(['--max-registrations-per-address', '1000']);
    const alice = await registerLogin(at(0), 'alice');
    const channelId = crypto.randomUUID();
    const made = await alice.c.req('channel_create', {
      id: channelId,
      name: 'general',
      allowVisitors: false,
    });
    expect(made.error).toBeUndefined();
    const t = await alice.c.req('token_create', { name: 'gw', scopes: ['read'] });
    expect(t.error).toBeUndefined();

    // alice's token opens a gateway session on instance 1.
    const url = new URL('api/v1/gateway', servers[1]!.ready.http!).href.replace(/^http/, 'ws');
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${t.body.token}` } });
    onTestFinished(() => ws.terminate());
    const frames: any[] = [];
    let closed: number | undefined;
    ws.on('message', (d) => frames.push(JSON.parse(String(d))));
    ws.on('close', (code) => (closed = code));
    await waitFor(() => frames.some((f) => f.t === 'ready'), 5000, 'ready');

    // bob joins through instance 0: the session on instance 1 hears of it.
    const bob = await registerLogin(at(0), 'bob');
    expect((await bob.c.req('channel_join', { channelId })).error).toBeUndefined();
    await waitFor(
      () => frames.some((f) => f.type === 'member_joined'),
      5000,
      'member_joined on the other instance',
    );
    expect(frames.find((f) => f.type === 'member_joined').data).toEqual({
      channelId,
      username: 'bob',
    });

    // alice revokes the token through instance 0: instance 1 closes the session at once, well
    // before its periodic re-read of the token (GATEWAY_LIMITS.refreshMs, 5 s).
    const t0 = Date.now();
    expect((await alice.c.req('token_revoke', { id: t.body.id })).error).toBeUndefined();
    await waitFor(() => closed !== undefined, 4000, 'the close on the other instance');
    const ms = Date.now() - t0;
    console.log(`gateway revocation across instances: closed ${ms} ms after token_revoke`);
    expect(closed).toBe(4004);
    expect(ms).toBeLessThan(2000);
  }, 60_000);
});
