/**
 * Strings that are valid JSON but not Unicode text: a `\uD800`–`\uDFFF` escape without its pair
 * (found by an outside attacker from PROTOCOL.md alone). UTF-8 cannot encode such a string: the
 * server stored it as ill-formed bytes and served it back as U+FFFD, so a channel name of 64 of
 * them came back as 192 characters and every peer's directory refused the server's answer, and a
 * signed message no longer matched its id once stored, so replicas disagreed. PROTOCOL.md §1: a
 * frame holding one is `E_BAD_FRAME`; the local API and the REST API refuse such a body.
 */
import { describe, expect, it } from 'vitest';
import { v7 as uuidv7 } from 'uuid';
import { createTestnet, signIn } from '../testnet.js';
import { RawClient, publicKey } from './front-door-client.js';

const LONE = '\udfff';

describe('hostile: lone surrogates', () => {
  it('a channel name holding one is a bad frame at the server, and every directory stays whole', async () => {
    const tn = await createTestnet({ peers: 1 });
    const [bob] = tn.peers;
    await signIn(bob!, 'bob');
    const mallory = await RawClient.open(tn.serverPort);
    await mallory.request('register', { username: 'mallory', password: 'mallory-pw' });
    await mallory.request('login', {
      username: 'mallory',
      password: 'mallory-pw',
      publicKey: publicKey(),
    });
    // encodeFrame (JSON.stringify) writes each lone surrogate as the escape \udfff.
    const r = await mallory.request('channel_create', {
      id: uuidv7(),
      name: LONE.repeat(64),
      allowVisitors: true,
    });
    expect(r.t).not.toBe('res');
    expect(mallory.fatal).toMatchObject({ code: 'E_BAD_FRAME' });
    expect(mallory.fatal!.message).toContain('lone surrogate');
    expect(await mallory.closedWithin(5000)).toBe(true);
    // The server keeps serving, and a real peer's directory is answered (it was refused whole).
    const made = await bob!.call('POST', '/api/channels', { name: 'honest', allowVisitors: true });
    expect(made.status).toBe(201);
    const dir = await bob!.call('GET', '/api/directory');
    expect(dir.status, JSON.stringify(dir.body)).toBe(200);
    expect(JSON.stringify(dir.body)).toContain('honest');
    expect(JSON.stringify(dir.body)).not.toContain('\ufffd');
  });

  it('the local API refuses such a body, naming it, and sends nothing on', async () => {
    const tn = await createTestnet({ peers: 1 });
    const [alice] = tn.peers;
    await signIn(alice!, 'alice');
    const ch = await alice!.call('POST', '/api/channels', { name: 'room', allowVisitors: false });
    const id = ch.body.id as string;
    for (const [route, body] of [
      [`/api/channels/${id}/messages`, { text: `bad ${LONE} text` }],
      ['/api/channels', { name: `x${LONE}`, allowVisitors: false }],
    ] as const) {
      const a = await alice!.call('POST', route, body);
      expect(a.status, route).toBe(400);
      expect(a.body.error.code).toBe('E_BAD_REQUEST');
      expect(a.body.error.message).toContain('lone surrogate');
    }
    // Nothing was queued: the channel's history is empty at the peer and at the server.
    const page = await alice!.call('GET', `/api/channels/${id}/messages`);
    expect(page.body.messages).toEqual([]);
    const link = await tn.rawLink();
    await link.request('login', {
      username: 'alice',
      password: 'alice-pw',
      publicKey: publicKey(),
    });
    const h = await link.request('history', { channelId: id, limit: 50 });
    expect(h.messages).toEqual([]);
  });
});
