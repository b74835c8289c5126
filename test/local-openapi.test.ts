/**
 * A peer's local API answers as its OpenAPI document says (issue 17; docs/local-api.openapi.json,
 * served at `/api/openapi.json` behind the API token). Two real peers on a testnet go through
 * accounts, channels, messages and their changes, files, avatars, search, direct messages,
 * streams, bots and tokens, and refusals; every answer is checked against the document its peer
 * serves: a JSON body against its schema, any other by its media type, a status the document
 * does not give fails. test/openapi.test.ts checks that the document is the checked-in one.
 */
import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { contract } from './openapi-contract.js';
import { png } from './pictures.js';
import { authHeaders, createTestnet, waitFor, type TestPeer } from './testnet.js';

/** What one call sends besides its method and route. */
interface Sent {
  json?: unknown;
  bytes?: Buffer;
  headers?: Record<string, string>;
}

/** A checked call: its status, its body (parsed when JSON) and its headers. */
interface Got {
  status: number;
  body: any;
  headers: Headers;
}

/** Calls of peer `p`, each checked against the document `p` serves. */
async function checked(p: TestPeer) {
  const { check, checkType } = await contract(p.baseUrl, '/api/openapi.json', authHeaders(p.uiUrl));
  let calls = 0;
  const call = async (method: string, route: string, sent: Sent = {}): Promise<Got> => {
    const res = await fetch(new URL(route, p.baseUrl), {
      method,
      headers: {
        ...authHeaders(p.uiUrl),
        ...(sent.json === undefined ? {} : { 'content-type': 'application/json' }),
        ...sent.headers,
      },
      body: sent.bytes ? new Uint8Array(sent.bytes) : JSON.stringify(sent.json),
    });
    const type = res.headers.get('content-type');
    calls++;
    if (type === null || type.startsWith('application/json')) {
      const text = await res.text();
      const body = text ? JSON.parse(text) : undefined;
      check(method, route, res.status, body);
      return { status: res.status, body, headers: res.headers };
    }
    checkType(method, route, res.status, type);
    const body = Buffer.from(await res.arrayBuffer());
    return { status: res.status, body, headers: res.headers };
  };
  /** Answers the body of a call that must answer `status`. */
  const ok = async (status: number, method: string, route: string, sent?: Sent) => {
    const r = await call(method, route, sent);
    expect(r.status, `${method} ${route}: ${JSON.stringify(r.body)}`).toBe(status);
    return r.body;
  };
  return { call, ok, calls: () => calls };
}

describe('the local API against its OpenAPI document', () => {
  it('answers every call of two users’ session as the document says', async () => {
    const net = await createTestnet({ peers: 2 });
    const [pa, pb] = net.peers as [TestPeer, TestPeer];
    const a = await checked(pa);
    const b = await checked(pb);

    // Accounts and presence (a failed login ends the session it replaces: first, then).
    expect(await a.ok(200, 'GET', '/api/session')).toEqual({ me: null });
    await a.ok(401, 'GET', '/api/me');
    await a.ok(400, 'POST', '/api/login', { json: { username: 'x' } });
    await a.ok(401, 'POST', '/api/login', { json: { username: 'nobody', password: 'wrong-one' } });
    for (const [p, name] of [
      [a, 'alice'],
      [b, 'bob'],
    ] as const) {
      await p.ok(201, 'POST', '/api/register', { json: { username: name, password: 'pass-word' } });
      await p.ok(200, 'POST', '/api/login', { json: { username: name, password: 'pass-word' } });
    }
    expect(await a.ok(200, 'GET', '/api/me')).toMatchObject({ username: 'alice', role: 'user' });
    await a.ok(200, 'GET', '/api/session');
    await a.ok(200, 'PUT', '/api/status', { json: { status: 'online' } });

    // Channels.
    const ch = await a.ok(201, 'POST', '/api/channels', {
      json: { name: 'general', allowVisitors: true },
    });
    await a.ok(200, 'GET', '/api/channels');
    await b.ok(200, 'GET', '/api/directory');
    await b.ok(200, 'POST', `/api/channels/${ch.id}/join`);
    await a.ok(404, 'POST', `/api/channels/${crypto.randomUUID()}/join`);
    await a.ok(400, 'POST', '/api/channels/not-a-uuid/join');
    await waitFor(async () => (await a.ok(200, 'GET', '/api/peers')).length === 2);
    await a.ok(200, 'GET', `/api/channels/${ch.id}/members`);
    await a.ok(200, 'PATCH', `/api/channels/${ch.id}`, { json: { topic: 'all things' } });
    await b.ok(403, 'PATCH', `/api/channels/${ch.id}`, { json: { topic: 'mine now' } });

    // Files: attached, then posted with a message and a reply to it.
    const file = await a.ok(201, 'POST', `/api/channels/${ch.id}/files?name=notes.txt`, {
      bytes: Buffer.from('some notes\n'),
      headers: { 'content-type': 'text/plain' },
    });
    await a.ok(200, 'GET', `/api/channels/${ch.id}/files/${file.id}/status`);
    const first = await a.ok(201, 'POST', `/api/channels/${ch.id}/messages`, {
      json: { text: 'hello @bob, the notes', files: [file.id] },
    });
    const reply = await b.ok(201, 'POST', `/api/channels/${ch.id}/messages`, {
      json: { text: 'thanks', replyTo: first.id },
    });
    await b.ok(202, 'POST', `/api/channels/${ch.id}/files/${file.id}/fetch`);
    const bytes = await b.ok(200, 'GET', `/api/channels/${ch.id}/files/${file.id}`);
    expect(bytes.toString()).toBe('some notes\n');
    const unknown = await b.ok(200, 'GET', `/api/channels/${ch.id}/files/${'A'.repeat(43)}/status`);
    expect(unknown).toMatchObject({ state: 'missing', have: 0 });

    // Messages: changed, read in pages, found.
    await b.ok(200, 'PUT', `/api/channels/${ch.id}/messages/${first.id}/reactions/%F0%9F%91%8D`);
    await a.ok(200, 'PUT', `/api/channels/${ch.id}/messages/${first.id}/reactions/ok`);
    await a.ok(200, 'DELETE', `/api/channels/${ch.id}/messages/${first.id}/reactions/ok`);
    await b.ok(200, 'PATCH', `/api/channels/${ch.id}/messages/${reply.id}`, {
      json: { text: 'thanks a lot' },
    });
    await a.ok(403, 'PATCH', `/api/channels/${ch.id}/messages/${reply.id}`, {
      json: { text: 'not mine' },
    });
    await a.ok(201, 'POST', `/api/channels/${ch.id}/messages`, { json: { text: 'gone soon' } });
    const page = await waitFor(async () => {
      const p = await a.ok(200, 'GET', `/api/channels/${ch.id}/messages?limit=10`);
      return p.messages.length === 3 && p.messages[1].editedAt !== undefined ? p : undefined;
    });
    expect(page.messages[0]).toMatchObject({ files: [{ id: file.id }], mentionsMe: false });
    await a.ok(200, 'DELETE', `/api/channels/${ch.id}/messages/${page.messages[2].id}`);
    await a.ok(200, 'GET', `/api/channels/${ch.id}/messages?around=${reply.id}&limit=2`);
    await a.ok(400, 'GET', `/api/channels/${ch.id}/messages?limit=9999`);
    await a.ok(204, 'POST', `/api/channels/${ch.id}/typing`);
    await a.ok(204, 'POST', `/api/channels/${ch.id}/read`);
    await waitFor(async () => (await a.ok(200, 'GET', '/api/search?q=notes')).results.length > 0);
    await a.ok(400, 'GET', '/api/search');

    // Avatars.
    const picture = png(10, 10);
    await a.ok(200, 'PUT', '/api/me/avatar', {
      bytes: picture,
      headers: { 'content-type': 'image/png' },
    });
    await a.ok(400, 'PUT', '/api/me/avatar', {
      bytes: picture,
      headers: { 'content-type': 'image/svg+xml' },
    });
    await a.ok(400, 'PUT', '/api/me/avatar', {
      bytes: picture.subarray(0, 40),
      headers: { 'content-type': 'image/png' },
    });
    await b.ok(200, 'GET', '/api/avatars?users=alice,bob');
    await b.ok(400, 'GET', '/api/avatars?users=,,,');
    expect(await b.ok(200, 'GET', '/api/avatars/alice')).toEqual(picture);
    await b.ok(404, 'GET', '/api/avatars/bob');

    // Direct messages.
    const dm = await waitFor(async () => {
      const r = await a.call('POST', '/api/dms', { json: { members: ['bob'] } });
      return r.status === 201 ? r.body : undefined;
    }, 15_000);
    await a.ok(200, 'POST', '/api/dms', { json: { members: ['bob'] } });
    await a.ok(200, 'GET', '/api/dms');
    await a.ok(200, 'GET', `/api/dms/${dm.id}`);
    await a.ok(201, 'POST', `/api/dms/${dm.id}/messages`, { json: { text: 'just us' } });
    await waitFor(async () => (await b.ok(200, 'GET', '/api/dms')).length === 1);
    await b.ok(200, 'GET', `/api/dms/${dm.id}/messages`);
    await b.ok(204, 'POST', `/api/dms/${dm.id}/read`);
    await b.ok(200, 'GET', `/api/dms/${dm.id}/safety`);
    await b.ok(200, 'PUT', `/api/dms/${dm.id}/safety`, {
      json: { username: 'alice', verified: true },
    });
    await b.ok(200, 'PUT', '/api/blocks/alice');
    await b.ok(200, 'GET', '/api/blocks');
    await b.ok(200, 'DELETE', '/api/blocks/alice');

    // Streams: a synthetic one, watched by the other user.
    const live = await a.ok(201, 'POST', `/api/channels/${ch.id}/streams`, {
      json: { source: 'synthetic', fps: 10, bitrateKbps: 100 },
    });
    await waitFor(async () => (await b.ok(200, 'GET', '/api/streams')).length === 1);
    await b.ok(200, 'POST', `/api/streams/${live.streamId}/watch`);
    await a.ok(200, 'GET', `/api/streams/${live.streamId}/stats`);
    await b.ok(200, 'GET', `/api/streams/${live.streamId}/stats`);
    await b.ok(200, 'POST', `/api/streams/${live.streamId}/forward`, {
      json: { host: '127.0.0.1', port: 40_000 },
    });
    await b.ok(200, 'GET', `/api/streams/${live.streamId}/sdp`);
    await b.ok(404, 'GET', `/api/streams/${live.streamId}/play`);
    await b.ok(204, 'DELETE', `/api/streams/${live.streamId}/watch`);
    await a.ok(204, 'DELETE', `/api/streams/${live.streamId}`);
    await a.ok(404, 'GET', `/api/streams/${live.streamId}/stats`);

    // Bots and REST API tokens.
    await a.ok(201, 'POST', '/api/bots', { json: { username: 'alice-bot' } });
    await a.ok(200, 'GET', '/api/bots');
    const token = await a.ok(201, 'POST', '/api/tokens', {
      json: { name: 'ci', account: 'alice-bot', scopes: ['read'] },
    });
    expect(typeof token.token).toBe('string');
    await a.ok(200, 'GET', '/api/tokens');
    await a.ok(204, 'DELETE', `/api/tokens/${token.id}`);

    // The owner's last changes, the event stream, and the end of the session.
    await b.ok(204, 'POST', `/api/channels/${ch.id}/leave`);
    await b.ok(200, 'POST', `/api/channels/${ch.id}/join`);
    await a.ok(200, 'DELETE', `/api/channels/${ch.id}/members/bob`);
    await a.ok(200, 'DELETE', `/api/channels/${ch.id}`);
    const events = new AbortController();
    const stream = await fetch(new URL('/api/events?since=0', pa.baseUrl), {
      headers: authHeaders(pa.uiUrl),
      signal: events.signal,
    });
    expect(stream.status).toBe(200);
    const { checkType } = await contract(pa.baseUrl, '/api/openapi.json', authHeaders(pa.uiUrl));
    checkType('GET', '/api/events', 200, stream.headers.get('content-type'));
    events.abort();
    await a.ok(204, 'POST', '/api/logout');
    await a.ok(200, 'POST', '/api/visitor', { json: { name: 'guest' } });
    await a.ok(200, 'GET', '/api/me');
    expect(a.calls() + b.calls()).toBeGreaterThan(80);
  }, 60_000);

  it('refuses its document without the API token, as every /api route', async () => {
    const net = await createTestnet({ peers: 1 });
    const [p] = net.peers as [TestPeer];
    const res = await fetch(new URL('/api/openapi.json', p.baseUrl));
    expect(res.status).toBe(401);
    expect((await res.json()).error.code).toBe('E_API_TOKEN');
  });
});
