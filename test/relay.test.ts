/**
 * The server's relay for P2P links (docs/PROTOCOL.md §3.10), with raw sessions and raw sockets
 * on 127.0.0.1: who may ask for a relay, what each side is told, the 37-byte header, the pairing
 * byte, bytes passed through untouched both ways and counted, and the hostile other side (bad
 * headers, tokens guessed, reused or sent early, bytes before the pairing, a host that speaks
 * first, floods), and the links one session, one account or one address group's visitors may
 * hold. A real link relayed through NATs is in test/nat.test.ts.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ServerLink } from '../src/peer/server-link.js';
import { parseRecord } from '../src/shared/connlog.js';
import { natClient } from './nat-client.js';
import { createTestnet, rawSession, signIn, waitFor, type RawSession } from './testnet.js';

type Tn = Awaited<ReturnType<typeof createTestnet>>;

/** A raw client with an online entry; its `relay` events collected as `relays`. */
async function client(tn: Tn, username: string) {
  const c = await natClient(tn, username, 'relay');
  return { link: c.link, s: c.s, relays: c.events };
}

/** carl and dana, co-members of one channel: each sees the other's entry. */
async function coMembers(tn: Tn) {
  const carl = await client(tn, 'carl');
  const dana = await client(tn, 'dana');
  const ch = await carl.link.request('channel_create', {
    id: crypto.randomUUID(),
    name: 'r',
    allowVisitors: false,
  });
  await dana.link.request('channel_join', { channelId: ch.id });
  return { carl, dana };
}

const relay = (
  link: ServerLink,
  to: RawSession,
  id = crypto.randomBytes(9).toString('base64url'),
) => link.request('relay', { to: { username: to.username, sessionId: to.sessionId }, id });

/** The 37-byte header of §3.10: "HCRL", version 1, the token's 32 bytes. */
function header(token: string): Buffer {
  return Buffer.concat([Buffer.from('HCRL'), Buffer.from([1]), Buffer.from(token, 'base64url')]);
}

/** A connection to the relay port, with everything it reads collected. */
async function open(
  port: number,
): Promise<{ s: net.Socket; got: () => Buffer; closed: () => boolean }> {
  const s = net.connect({ host: '127.0.0.1', port });
  await new Promise((resolve, reject) => s.once('connect', resolve).once('error', reject));
  let got = Buffer.alloc(0);
  let closed = false;
  s.on('data', (d: Buffer) => (got = Buffer.concat([got, d])));
  s.on('error', () => undefined);
  s.on('close', () => (closed = true));
  return { s, got: () => got, closed: () => closed };
}

/**
 * `relay` from `link` to `to`, waiting out the request rate (2 a second, burst 10); a refusal for
 * any other reason (a cap on links) is thrown.
 */
async function relayPatiently(link: ServerLink, to: RawSession, id: string) {
  for (;;) {
    try {
      return await relay(link, to, id);
    } catch (err) {
      const e = err as { code?: string; message?: string; retryAfterMs?: number };
      if (e.code !== 'E_RATE_LIMITED' || !/relay requests/.test(e.message ?? '')) throw err;
      await new Promise((res) => setTimeout(res, Math.min(e.retryAfterMs ?? 500, 1000)));
    }
  }
}

/** Both sides in at the relay `port` with their tokens, the member's 0x01 read: `a` the member. */
async function join(port: number, memberToken: string, hostToken: string) {
  const a = await open(port);
  a.s.write(header(memberToken));
  const b = await open(port);
  b.s.write(header(hostToken));
  await waitFor(() => a.got().length === 1);
  return { a, b };
}

/** A link asked for by `link` towards `host` and paired: both sides in, the member's 0x01 read. */
async function pairedLink(
  link: ServerLink,
  host: { s: RawSession; relays: Array<Record<string, any>> },
) {
  const id = crypto.randomBytes(9).toString('base64url');
  const r = await relayPatiently(link, host.s, id);
  const ev = await waitFor(() => host.relays.find((e) => e.id === id));
  return join(r.port, r.token, ev.token as string);
}

function serverLog(tn: Tn): Array<Record<string, string>> {
  return fs
    .readFileSync(path.join(tn.dir, 'server', 'connections.log'), 'utf8')
    .trim()
    .split('\n')
    .map(parseRecord);
}

describe('the relay at the server', () => {
  it('pairs two sides by their tokens, says so to the asker, and passes bytes both ways untouched', async () => {
    const tn = await createTestnet();
    const { carl, dana } = await coMembers(tn);
    const r = await relay(carl.link, dana.s, 'relay-one');
    expect(r).toEqual({ port: expect.any(Number), token: expect.stringMatching(/^[\w-]{43}$/) });
    await waitFor(() => dana.relays.length === 1);
    expect(dana.relays[0]).toEqual({
      from: { username: 'carl', role: 'user', sessionId: carl.s.sessionId },
      port: r.port,
      token: expect.stringMatching(/^[\w-]{43}$/),
      id: 'relay-one',
    });
    expect(dana.relays[0]!.token).not.toBe(r.token);
    // The asker first: nothing comes until the other side is in.
    const a = await open(r.port);
    a.s.write(header(r.token));
    await new Promise((res) => setTimeout(res, 200));
    expect(a.got().length).toBe(0);
    const b = await open(r.port);
    b.s.write(header(dana.relays[0]!.token));
    await waitFor(() => a.got().length === 1);
    expect(a.got()).toEqual(Buffer.from([0x01]));
    expect(b.got().length).toBe(0); // the host hears nothing of the relay itself
    // Any bytes, both ways, as they were sent: the member's first (§3.10).
    const up = crypto.randomBytes(200_000);
    const down = crypto.randomBytes(70_000);
    a.s.write(up);
    await waitFor(() => b.got().length > 0);
    b.s.write(down);
    await waitFor(() => b.got().length === up.length && a.got().length === 1 + down.length);
    expect(b.got().equals(up)).toBe(true);
    expect(a.got().subarray(1).equals(down)).toBe(true);
    expect(tn.server.relays!.stats.bytes).toEqual({ p2p: up.length + down.length, media: 0 });
    expect(tn.server.relays!.links).toBe(1);
    const metrics = await (await fetch(new URL('/metrics', tn.server.httpUrl))).text();
    expect(metrics).toContain(`hchat_relay_bytes_total{kind="p2p"} ${up.length + down.length}`);
    expect(metrics).toContain('hchat_relay_links 1');
    // One side closing ends the other, and the link is counted in the log.
    a.s.end();
    await waitFor(() => b.closed());
    await waitFor(() => tn.server.relays!.links === 0);
    expect(serverLog(tn)).toContainEqual(
      expect.objectContaining({
        ev: 'relay_close',
        id: 'relay-one',
        up: String(up.length),
        down: String(down.length),
      }),
    );
  });

  it('relays only to an entry the caller may see; a stranger is E_NOT_FOUND, as a session that does not exist', async () => {
    const tn = await createTestnet();
    const carl = await client(tn, 'carl');
    const dana = await client(tn, 'dana');
    await expect(relay(carl.link, dana.s)).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    await expect(
      relay(carl.link, { username: 'nobody', sessionId: 'abcdefghijklmnop' } as RawSession),
    ).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    expect(dana.relays).toEqual([]);
    // Not logged in: no relay at all.
    const anon = await tn.rawLink();
    await expect(relay(anon, dana.s)).rejects.toMatchObject({ code: 'E_AUTH_REQUIRED' });
    // A malformed request names what was wrong.
    await expect(
      carl.link.request('relay', {
        to: { username: 'dana', sessionId: dana.s.sessionId },
        id: 'x',
      }),
    ).rejects.toMatchObject({ code: 'E_BAD_REQUEST', message: expect.stringContaining('id') });
  });

  it('refuses a bad header, a guessed token, a token used twice and bytes before the pairing; others keep being relayed', async () => {
    const tn = await createTestnet();
    const { carl, dana } = await coMembers(tn);
    const port = (await relay(carl.link, dana.s)).port;
    const refusedBefore = () => tn.server.relays!.stats.refused;
    const cases: Array<[string, Buffer]> = [
      ['magic', Buffer.concat([Buffer.from('HTTP'), Buffer.alloc(33)])],
      ['version', Buffer.concat([Buffer.from('HCRL'), Buffer.from([2]), Buffer.alloc(32)])],
      ['guessed token', header(crypto.randomBytes(32).toString('base64url'))],
    ];
    for (const [, bytes] of cases) {
      const c = await open(port);
      c.s.write(bytes);
      await waitFor(() => c.closed(), 3000, 'the relay closes a bad header');
      expect(c.got().length).toBe(0);
    }
    expect(refusedBefore()).toBe(cases.length);
    // A header with more behind it, before the pairing: refused.
    const r1 = await relay(carl.link, dana.s);
    const early = await open(port);
    early.s.write(Buffer.concat([header(r1.token), Buffer.from('ClientHello')]));
    await waitFor(() => early.closed(), 3000, 'bytes behind the header');
    // A token used twice: the second connection goes, the first stays.
    const r2 = await relay(carl.link, dana.s);
    await waitFor(() => dana.relays.length === 3);
    const first = await open(port);
    first.s.write(header(r2.token));
    const again = await open(port);
    again.s.write(header(r2.token));
    await waitFor(() => again.closed(), 3000, 'a token used twice');
    expect(first.closed()).toBe(false);
    // A waiting side that sends before its pairing ends its link.
    first.s.write('too soon');
    await waitFor(() => first.closed(), 3000, 'bytes before the pairing');
    // Meanwhile a good pair still forms and carries bytes.
    const r3 = await relay(carl.link, dana.s);
    await waitFor(() => dana.relays.length === 4);
    const a = await open(port);
    a.s.write(header(r3.token));
    const b = await open(port);
    b.s.write(header(dana.relays[3]!.token));
    await waitFor(() => a.got().length === 1);
    a.s.write('hello');
    await waitFor(() => b.got().toString() === 'hello');
    b.s.write('still relayed');
    await waitFor(() => a.got().subarray(1).toString() === 'still relayed');
  });

  it('a header sent a byte at a time still pairs; a silent connection is dropped', async () => {
    const tn = await createTestnet();
    const { carl, dana } = await coMembers(tn);
    const r = await relay(carl.link, dana.s);
    await waitFor(() => dana.relays.length === 1);
    const a = await open(r.port);
    for (const byte of header(r.token)) {
      a.s.write(Buffer.from([byte]));
      await new Promise((res) => setTimeout(res, 2));
    }
    const b = await open(r.port);
    b.s.write(header(dana.relays[0]!.token));
    await waitFor(() => a.got().length === 1);
    // Says nothing: gone after the header wait (5 s).
    const silent = await open(r.port);
    await waitFor(() => silent.closed(), 8000, 'a silent connection dropped');
  }, 15_000);

  it('limits relay requests per session, and the links one session holds', async () => {
    const tn = await createTestnet();
    const { carl, dana } = await coMembers(tn);
    const results = await Promise.allSettled(
      Array.from({ length: 14 }, () => relay(carl.link, dana.s)),
    );
    const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason.code] : []));
    // The burst (10), and at most one more refilled meanwhile (2 a second) on a slow machine.
    expect(refused.length).toBeGreaterThanOrEqual(3);
    expect(new Set(refused)).toEqual(new Set(['E_RATE_LIMITED']));
    // 10 or 11 pending links now; at most 16 at once, however slowly they are asked for.
    let held = 14 - refused.length;
    let capped = false;
    for (let i = 0; i < 10 && !capped; i++) {
      await new Promise((res) => setTimeout(res, 600));
      try {
        await relay(carl.link, dana.s);
        held++;
      } catch (err) {
        expect(err).toMatchObject({ code: 'E_RATE_LIMITED' });
        capped = held >= 16;
      }
    }
    expect(held).toBe(16);
    expect(capped).toBe(true);
  }, 20_000);
  it('a host that speaks before the member ends the link: its bytes are not passed on, both connections close, both tokens are spent', async () => {
    const tn = await createTestnet();
    const { carl, dana } = await coMembers(tn);
    const r = await relay(carl.link, dana.s, 'host-first');
    await waitFor(() => dana.relays.length === 1);
    const { a, b } = await join(r.port, r.token, dana.relays[0]!.token);
    // Paired; the member has sent nothing yet, and the host speaks.
    b.s.write('host speaks first');
    await waitFor(
      () => a.closed() && b.closed(),
      3000,
      () => `both sides closed; the member got ${JSON.stringify(a.got().subarray(1).toString())}`,
    );
    expect(a.got()).toEqual(Buffer.from([0x01]));
    expect(b.got().length).toBe(0);
    await waitFor(() => tn.server.relays!.links === 0);
    expect(serverLog(tn)).toContainEqual(
      expect.objectContaining({
        ev: 'relay_close',
        id: 'host-first',
        reason: 'host spoke first',
        up: '0',
        down: '0',
      }),
    );
    // Both tokens are spent: either one again is refused without a word.
    for (const token of [r.token, dana.relays[0]!.token]) {
      const again = await open(r.port);
      again.s.write(header(token));
      await waitFor(() => again.closed(), 3000, 'a spent token refused');
      expect(again.got().length).toBe(0);
    }
    // The order §3.10 asks for: the member first, then the host answers.
    const r2 = await relay(carl.link, dana.s, 'member-first');
    await waitFor(() => dana.relays.length === 2);
    const { a: m, b: h } = await join(r2.port, r2.token, dana.relays[1]!.token);
    m.s.write('ClientHello');
    await waitFor(() => h.got().toString() === 'ClientHello');
    h.s.write('ServerHello');
    await waitFor(() => m.got().subarray(1).toString() === 'ServerHello');
    expect(m.closed() || h.closed()).toBe(false);
  });

  it('a media tunnel’s parent may speak first: its bytes are passed on', async () => {
    const tn = await createTestnet();
    const { carl, dana } = await coMembers(tn);
    const r = await carl.link.request('relay', {
      to: { username: 'dana', sessionId: dana.s.sessionId },
      id: 'media-first',
      kind: 'media',
      streamId: crypto.randomUUID(),
    });
    await waitFor(() => dana.relays.length === 1);
    const { a, b } = await join(r.port, r.token, dana.relays[0]!.token);
    // The parent's first consent check goes out as it hands the child the hop's keys (§5.6).
    b.s.write('consent check');
    await waitFor(() => a.got().subarray(1).toString() === 'consent check');
    a.s.write('answer');
    await waitFor(() => b.got().toString() === 'answer');
    expect(a.closed() || b.closed()).toBe(false);
  });

  it('bounds the links one account holds, those of its ended sessions included: a new login gets no fresh allowance', async () => {
    // 32 links per account here (160 by default: 10 sessions × 16).
    const tn = await createTestnet({ server: { maxRelayLinksPerAccount: 32 } });
    const { carl, dana } = await coMembers(tn);
    const held: Array<Awaited<ReturnType<typeof pairedLink>>> = [];
    // carl's session holds its 16 paired links and logs out: they stay (§3.10); a second
    // session does the same.
    let link = carl.link;
    for (let session = 0; session < 2; session++) {
      if (session > 0) {
        link = await tn.rawLink();
        await rawSession(link, { username: 'carl', password: 'carl-pw' });
      }
      for (let i = 0; i < 16; i++) held.push(await pairedLink(link, dana));
      await link.request('logout', {});
    }
    expect(tn.server.relays!.links).toBe(32);
    // A third session holds nothing itself, but the account holds its 32.
    link = await tn.rawLink();
    const third = await rawSession(link, { username: 'carl', password: 'carl-pw' });
    await expect(relay(link, dana.s)).rejects.toMatchObject({
      code: 'E_RATE_LIMITED',
      message: expect.stringContaining('account'),
      retryAfterMs: expect.any(Number),
    });
    expect(held.filter(({ a, b }) => a.closed() || b.closed())).toEqual([]);
    // Another account is not bound by carl's: dana asks towards carl's new session.
    await link.request('submit_info', {
      ip: '10.1.1.3',
      port: 4000,
      udpPort: 4001,
      status: 'online',
    });
    await relay(dana.link, third);
    // One of the account's links ends: room for one more.
    held[0]!.a.s.destroy();
    await waitFor(() => tn.server.relays!.links === 32); // carl's 31, and dana's
    await relay(link, dana.s);
  }, 30_000);

  it('bounds the links visitors from one address group hold together, those of ended visitor sessions included', async () => {
    // 16 links per address group's visitors here (320 by default: 20 visitor sessions × 16).
    const tn = await createTestnet({ server: { maxRelayLinksPerAddress: 16 } });
    const carl = await client(tn, 'carl');
    const ch = await carl.link.request('channel_create', {
      id: crypto.randomUUID(),
      name: 'open',
      allowVisitors: true,
    });
    await carl.link.request('submit_info', {
      ip: '10.1.1.1',
      port: 4000,
      udpPort: 4001,
      status: 'online',
      hosts: [ch.id],
    });
    const visitor = async (name: string) => {
      const link = await tn.rawLink();
      await rawSession(link, { name });
      await link.request('channel_join', { channelId: ch.id });
      return link;
    };
    const held: Array<Awaited<ReturnType<typeof pairedLink>>> = [];
    const v1 = await visitor('visitor1');
    for (let i = 0; i < 16; i++) held.push(await pairedLink(v1, carl));
    await v1.request('logout', {});
    // Another visitor from the same group, under another name: the group holds its 16.
    const v2 = await visitor('visitor2');
    await expect(relay(v2, carl.s)).rejects.toMatchObject({
      code: 'E_RATE_LIMITED',
      message: expect.stringContaining('visitors'),
    });
    expect(held.filter(({ a, b }) => a.closed() || b.closed())).toEqual([]);
    // One of them ends: room for one more.
    held[0]!.b.s.destroy();
    await waitFor(() => tn.server.relays!.links === 15);
    await relay(v2, carl.s);
  }, 30_000);
});

describe('media tunnels at the parent', () => {
  it('a streamer takes a media tunnel only from its child in that stream; a stranger’s is closed', async () => {
    const tn = await createTestnet({ peers: 1 });
    const alice = tn.peers[0]!;
    await signIn(alice, 'alice');
    const ch = (await alice.call('POST', '/api/channels', { name: 'live' })).body.id as string;
    const live = await alice.call('POST', `/api/channels/${ch}/streams`, {
      source: 'synthetic',
      fps: 10,
      bitrateKbps: 100,
    });
    expect(live.status).toBe(201);
    // mallory, a member who never watched, asks the server for a media tunnel to alice.
    const m = await client(tn, 'mallory');
    await m.link.request('channel_join', { channelId: ch });
    const aliceEntry = await waitFor(async () => {
      const { peers } = await m.link.request('get_list', {});
      return peers.find((e: { username: string }) => e.username === 'alice');
    });
    const r = await m.link.request('relay', {
      to: { username: 'alice', sessionId: aliceEntry.sessionId },
      id: 'not-a-child',
      kind: 'media',
      streamId: live.body.streamId,
    });
    const c = await open(r.port);
    c.s.write(header(r.token));
    // alice comes to the relay (the pair forms), sees mallory is no child of hers, and leaves.
    await waitFor(() => c.closed(), 5000, 'the tunnel closed by the streamer');
    expect(c.got().length).toBeLessThanOrEqual(1);
    expect(serverLog(tn)).toContainEqual(
      expect.objectContaining({ ev: 'relay_close', id: 'not-a-child', kind: 'media', down: '0' }),
    );
    const log = fs.readFileSync(path.join(alice.dataDir, 'connections.log'), 'utf8');
    expect(log).not.toContain('media_tunnel');
  });
});

describe('a replayed header', () => {
  it('with bytes behind it cannot end the link its token opened', async () => {
    const tn = await createTestnet();
    const { carl, dana } = await coMembers(tn);
    const r = await relay(carl.link, dana.s);
    await waitFor(() => dana.relays.length === 1);
    const { a, b } = await join(r.port, r.token, dana.relays[0]!.token);
    // Someone who saw the member's header on the wire sends it again, with bytes behind it.
    const replay = await open(r.port);
    replay.s.write(Buffer.concat([header(r.token), Buffer.from('junk')]));
    await waitFor(() => replay.closed(), 3000, 'the replay refused');
    a.s.write('hello');
    await waitFor(() => b.got().toString() === 'hello');
    b.s.write('still here');
    await waitFor(() => a.got().subarray(1).toString() === 'still here', 3000, 'the link lives');
    expect(a.closed() || b.closed()).toBe(false);
  });
});
