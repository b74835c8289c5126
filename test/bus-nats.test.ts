/**
 * The NATS event bus (server/bus-nats.ts) against real nats-server processes: delivery between
 * instances (once there, once here), every event kind round-tripped, hostile payloads dropped,
 * events too big for NATS, an outage and a restart, and `hchat server --bus`.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import fc from 'fast-check';
import { describe, expect, it, onTestFinished } from 'vitest';
import { BusEvent } from '../src/server/bus-events.js';
import { NatsBus, subjectOf, type NatsBusOptions } from '../src/server/bus-nats.js';
import { parseNatsUrl } from '../src/server/nats-url.js';
import { startNats } from './nats.js';
import { signingKeyFile } from './cluster-kit.js';
import { runHchat, spawnServer } from './processes.js';
import { stablePort, tempDir, waitFor } from './testnet.js';

/** The NATS every test may share (JetStream, 127.0.0.1:4222); each test has its own namespace. */
const SHARED = 'nats://127.0.0.1:4222';

async function bus(url: string, opts: NatsBusOptions = {}): Promise<NatsBus> {
  const b = await NatsBus.connect(url, { reconnectWaitMs: 100, reconnectJitterMs: 50, ...opts });
  onTestFinished(() => b.close());
  return b;
}

async function raw(url: string): Promise<NatsConnection> {
  const nc = await connect({ servers: parseNatsUrl(url).servers });
  onTestFinished(() => nc.close());
  return nc;
}

/** Everything a bus delivers to one subscriber. */
function record(b: NatsBus): BusEvent[] {
  const got: BusEvent[] = [];
  b.subscribe((e) => got.push(e));
  return got;
}

const ns = () => `t${randomBytes(6).toString('hex')}`;

// ---- generated events: every kind, within the protocol's own schemas -------------------------

/** `bytes` random bytes in canonical base64url (PROTOCOL.md §1: one spelling for them). */
const b64u = (bytes: number) =>
  fc
    .uint8Array({ minLength: bytes, maxLength: bytes })
    .map((b) => Buffer.from(b).toString('base64url'));
const username = fc.stringMatching(/^[A-Za-z0-9_.-]{2,32}$/);
const uuid = fc.uuid();
const text = fc
  .string({ minLength: 1, maxLength: 80, unit: 'binary' })
  .filter((s) => s.trim().length > 0);
const itemHeader = {
  id: uuid,
  ts: fc.integer({ min: 0, max: 2 ** 48 - 1 }),
  lc: fc.integer({ min: 0, max: 0xffff }),
  sig: b64u(64),
  cert: fc.string({ minLength: 1, maxLength: 100 }),
  author: username,
  seq: fc.integer({ min: 1, max: 2 ** 40 }),
};
const storedMessage = (channelId: string) =>
  fc.oneof(
    fc.record(
      {
        ...itemHeader,
        channelId: fc.constant(channelId),
        text,
        replyTo: uuid,
        mentions: fc.uniqueArray(fc.stringMatching(/^[a-z0-9_.-]{2,32}$/), { maxLength: 3 }),
      },
      { requiredKeys: ['id', 'ts', 'lc', 'sig', 'cert', 'author', 'seq', 'channelId', 'text'] },
    ),
    // A tombstone: its digest and nothing of its body.
    fc.record({
      ...itemHeader,
      channelId: fc.constant(channelId),
      kind: fc.constant('message' as const),
      digest: b64u(32),
    }),
  );
const trackerEntry = fc.record({
  username: fc.string({ maxLength: 32 }),
  role: fc.constantFrom('user' as const, 'visitor' as const),
  ip: fc.oneof(fc.ipV4(), fc.constantFrom('::1', 'fe80::1', '2001:db8::7')),
  port: fc.integer({ min: 1, max: 65535 }),
  udpPort: fc.integer({ min: 1, max: 65535 }),
  sessionId: fc.stringMatching(/^[A-Za-z0-9_-]{8,64}$/),
  status: fc.constantFrom('online' as const, 'invisible' as const),
  hosts: fc.array(uuid, { maxLength: 3 }),
  live: fc.array(fc.record({ streamId: uuid, channelId: uuid }), { maxLength: 2 }),
});
const arbEvent: fc.Arbitrary<BusEvent> = fc.oneof(
  uuid.chain((channelId) =>
    fc.record(
      {
        kind: fc.constant('message' as const),
        channelId: fc.constant(channelId),
        message: storedMessage(channelId),
        exceptSession: fc.stringMatching(/^[A-Za-z0-9_-]{8,64}$/),
      },
      { requiredKeys: ['kind', 'channelId', 'message'] },
    ),
  ),
  fc
    .record(
      { kind: fc.constant('tracker' as const), before: trackerEntry, after: trackerEntry },
      { requiredKeys: ['kind'] },
    )
    .filter((e) => e.before !== undefined || e.after !== undefined),
  fc.record({
    kind: fc.constantFrom('member_joined' as const, 'member_left' as const),
    channelId: uuid,
    username,
  }),
  fc.record({
    kind: fc.constant('channel_changed' as const),
    channelId: uuid,
    deleted: fc.boolean(),
  }),
  fc.record({
    kind: fc.constant('typing' as const),
    channelId: uuid,
    username,
    expiresAt: fc.integer({ min: 0, max: 2 ** 48 }),
  }),
  fc.record({
    kind: fc.constant('avatar' as const),
    username,
    hash: b64u(32),
    ts: fc.integer({ min: 0, max: 2 ** 48 }),
  }),
  fc.record({
    kind: fc.constant('dm' as const),
    deviceId: b64u(16),
    envelope: fc.record({
      seq: fc.integer({ min: 1, max: 2 ** 40 }),
      id: uuid,
      from: fc.record({ username, deviceId: b64u(16) }),
      ts: fc.integer({ min: 0, max: 2 ** 48 }),
      body: fc.record({
        v: fc.constant(1 as const),
        dh: b64u(32),
        pn: fc.integer({ min: 0, max: 0xffffffff }),
        n: fc.integer({ min: 0, max: 0xffffffff }),
        ct: fc.stringMatching(/^[A-Za-z0-9_-]{22,200}$/),
      }),
    }),
  }),
) as fc.Arbitrary<BusEvent>;

const typing = (channelId = randomUUID()): BusEvent => ({
  kind: 'typing',
  channelId,
  username: 'alice',
  expiresAt: Date.now() + 5000,
});

describe('NATS bus', () => {
  it('delivers an event once on the other instance and once on its own; every kind round-trips equal', async () => {
    const namespace = ns();
    const a = await bus(SHARED, { namespace });
    const b = await bus(SHARED, { namespace });
    // Another deployment on the same NATS hears nothing of this one.
    const other = await bus(SHARED, { namespace: ns() });
    const onA = record(a);
    const onB = record(b);
    const onOther = record(other);
    expect(a.ready() && b.ready()).toBe(true);
    expect(a.instanceId).not.toBe(b.instanceId);

    const e = typing();
    a.publish(e);
    // Delivered here synchronously, as LocalBus does: the same object.
    expect(onA).toEqual([e]);
    expect(onA[0]).toBe(e);
    await waitFor(() => onB.length === 1, 5000, 'the event on b');
    expect(onB).toEqual([e]);

    await fc.assert(
      fc.asyncProperty(fc.array(arbEvent, { minLength: 1, maxLength: 12 }), async (events) => {
        for (const ev of events) expect(BusEvent.safeParse(ev).error).toBeUndefined();
        onA.length = 0;
        onB.length = 0;
        for (const ev of events) a.publish(ev);
        await waitFor(() => onB.length >= events.length, 5000, 'the events on b');
        // A little longer: a second copy would come now.
        await new Promise((r) => setTimeout(r, 20));
        expect(onB).toEqual(events);
        expect(onA).toEqual(events);
      }),
      { numRuns: 40 },
    );
    await new Promise((r) => setTimeout(r, 100));
    expect(onA.length).toBeGreaterThan(0);
    expect(onOther).toEqual([]);
    expect(a.counts.dropped).toEqual({
      malformed: 0,
      foreign: 0,
      oversize: 0,
      unsent: 0,
      handler: 0,
    });
    expect(b.counts.dropped).toEqual(a.counts.dropped);
  });

  it('drops malformed, foreign and replayed payloads and keeps delivering', async () => {
    const namespace = ns();
    const logged: Array<[string, Record<string, unknown>]> = [];
    const b = await bus(SHARED, { namespace, log: (ev, f) => logged.push([ev, f]) });
    const onB = record(b);
    const nc = await raw(SHARED);
    const channelId = randomUUID();
    const good = typing(channelId);
    const subject = subjectOf(namespace, good);
    const envelope = (event: unknown, from = 'someone-else') =>
      JSON.stringify({ v: 1, from, event });

    nc.publish(subject, 'not json {');
    nc.publish(subject, new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])); // not UTF-8
    nc.publish(subject, envelope({ ...good, username: 'x' })); // a name too short
    nc.publish(subject, envelope({ ...good, kind: 'shutdown' })); // no such kind
    nc.publish(subject, JSON.stringify({ v: 2, from: 'someone-else', event: good }));
    nc.publish(subject, envelope({ ...good, expiresAt: '1e99' }));
    nc.publish(subject, envelope({ kind: 'tracker' })); // names no entry
    // A valid event on another channel's subject, or another kind's.
    nc.publish(subjectOf(namespace, typing()), envelope(good));
    nc.publish(`hchat.${namespace}.avatar`, envelope(good));
    // A copy of b's own event: b delivered it already.
    nc.publish(subject, envelope(good, b.instanceId));
    nc.publish(subject, envelope(good));
    await waitFor(() => onB.length === 1, 5000, 'the good event');
    await nc.flush();
    await new Promise((r) => setTimeout(r, 100));
    expect(onB).toEqual([good]);
    expect(b.counts.dropped.malformed).toBe(7);
    expect(b.counts.dropped.foreign).toBe(2);
    expect(b.ready()).toBe(true);
    // Logged, but once per reason per period, not once per payload.
    const drops = logged.filter(([ev]) => ev === 'bus_drop');
    expect(drops.map(([, f]) => f.reason).sort()).toEqual(['foreign', 'malformed']);

    // A subscriber that throws on another instance's event does not stop the others.
    b.subscribe(() => {
      throw new Error('a bug in one handler');
    });
    nc.publish(subject, envelope(good));
    await waitFor(() => onB.length === 2, 5000, 'the event after a throwing handler');
    expect(b.counts.dropped.handler).toBe(1);
  });

  it("keeps an event bigger than NATS's max_payload on its own instance, and goes on", async () => {
    const nats = await startNats('max_payload: 4096\n');
    const logged: Array<[string, Record<string, unknown>]> = [];
    const a = await bus(nats.url, { log: (ev, f) => logged.push([ev, f]) });
    const b = await bus(nats.url);
    const onA = record(a);
    const onB = record(b);
    const channelId = randomUUID();
    const big: BusEvent = {
      kind: 'message',
      channelId,
      message: {
        id: randomUUID(),
        channelId,
        ts: Date.now(),
        lc: 0,
        text: 'é'.repeat(3000),
        sig: 'A'.repeat(86),
        cert: 'c',
        author: 'alice',
        seq: 1,
      },
    };
    expect(BusEvent.safeParse(big).success).toBe(true);
    a.publish(big);
    const small = typing(channelId);
    a.publish(small);
    expect(onA).toEqual([big, small]);
    await waitFor(() => onB.length === 1, 5000, 'the small event');
    await new Promise((r) => setTimeout(r, 100));
    expect(onB).toEqual([small]);
    expect(a.counts.dropped.oversize).toBe(1);
    expect(a.ready()).toBe(true);
    expect(logged).toContainEqual([
      'bus_drop',
      expect.objectContaining({ reason: 'oversize', kind: 'message', max: 4096 }),
    ]);
  });

  it('goes unready when NATS dies, calls onReconnect when it is back, and flows again', async () => {
    const nats = await startNats();
    const a = await bus(nats.url);
    const b = await bus(nats.url);
    const onA = record(a);
    const onB = record(b);
    let reconnectsA = 0;
    let reconnectsB = 0;
    a.onReconnect(() => reconnectsA++);
    b.onReconnect(() => reconnectsB++);
    a.publish(typing());
    await waitFor(() => onB.length === 1, 5000, 'the first event');

    await nats.kill();
    await waitFor(() => !a.ready() && !b.ready(), 10_000, 'both unready');
    expect(reconnectsA + reconnectsB).toBe(0);
    // While down, an event still reaches its own instance; it is counted as unsent.
    const during = typing();
    a.publish(during);
    expect(onA.at(-1)).toBe(during);
    expect(a.counts.dropped.unsent).toBe(1);

    await nats.restart();
    await waitFor(() => a.ready() && b.ready(), 10_000, 'both ready again');
    await waitFor(() => reconnectsA === 1 && reconnectsB === 1, 5000, 'onReconnect');
    expect(a.counts.reconnects).toBe(1);
    const after = typing();
    a.publish(after);
    await waitFor(() => onB.length === 2, 5000, 'an event after the restart');
    expect(onB.at(-1)).toEqual(after);
    // And the other way.
    b.publish(typing());
    await waitFor(() => onA.length === 4, 5000, 'an event from b after the restart');
  });

  it('refuses to start without NATS, and closes while NATS is down', async () => {
    const port = await stablePort();
    await expect(NatsBus.connect(`nats://secret:hunter2@127.0.0.1:${port}`)).rejects.toThrow(
      new RegExp(`^cannot reach NATS at nats://127\\.0\\.0\\.1:${port}:`),
    );
    const nats = await startNats();
    const a = await NatsBus.connect(nats.url, { drainMs: 500 });
    await nats.kill();
    await waitFor(() => !a.ready(), 10_000, 'unready');
    const t0 = Date.now();
    await a.close();
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(a.ready()).toBe(false);
  });

  it('parses --bus URLs: schemes, lists, credentials kept out of messages', () => {
    expect(parseNatsUrl('nats://127.0.0.1:4222')).toMatchObject({
      servers: ['127.0.0.1:4222'],
      tls: false,
      display: 'nats://127.0.0.1:4222',
    });
    expect(parseNatsUrl('tls://u:p%40ss@nats.example:7422,tls://u:p%40ss@[::1]')).toMatchObject({
      servers: ['nats.example:7422', '[::1]:4222'],
      tls: true,
      user: 'u',
      pass: 'p@ss',
      display: 'tls://nats.example:7422,tls://[::1]:4222',
    });
    expect(parseNatsUrl('nats://s3cret@h:1')).toMatchObject({ token: 's3cret', servers: ['h:1'] });
    for (const bad of [
      'redis://127.0.0.1:6379',
      'nats://',
      'nats://h:99999',
      'nats://h:1/path',
      'nats://h:1?x=1',
      '127.0.0.1:4222',
      'nats://h:1,tls://h:2',
      'nats://a:b@h:1,nats://h:2',
    ])
      expect(() => parseNatsUrl(bad), bad).toThrow();
    try {
      parseNatsUrl('nats://user:hunter2@h:1,nats://user:other@h:2');
    } catch (err) {
      expect((err as Error).message).not.toMatch(/hunter2|other/);
    }
  });
});

describe('hchat server --bus', () => {
  it('refuses a bad --bus, naming the flag', async () => {
    for (const bad of ['redis://127.0.0.1:6379', 'nats:/127.0.0.1']) {
      const r = await runHchat(['server', '--port', '0', '--http-port', '0', '--bus', bad]);
      expect(r.code, r.out).not.toBe(0);
      expect(r.out).toMatch(/--bus.*nats:\/\/HOST:PORT/s);
    }
    // A malformed URL is refused without being printed back: its password stays off the log.
    const secret = await runHchat([
      'server',
      '--port',
      '0',
      '--http-port',
      '0',
      '--bus',
      'nats:/ops:hunter2@127.0.0.1:4222',
    ]);
    expect(secret.code).not.toBe(0);
    expect(secret.out).toMatch(/--bus/);
    expect(secret.out).not.toMatch(/hunter2/);
    const env = await runHchat(['server', '--port', '0', '--http-port', '0'], {
      HCHAT_BUS: 'amqp://x',
    });
    expect(env.code).not.toBe(0);
    expect(env.out).toMatch(/--bus/);
  });

  it('starts on NATS (a client of nats-server), refuses to start without it, and stops cleanly', async () => {
    const monitor = await stablePort();
    const nats = await startNats(`http_port: ${monitor}\n`);
    const dir = tempDir();
    const key = signingKeyFile(dir);
    // Instances on one bus must share the deployment's signing key.
    const keyless = await runHchat([
      'server',
      '--port',
      '0',
      '--http-port',
      '0',
      '--data',
      `${dir}/k`,
      '--bus',
      nats.url,
    ]);
    expect(keyless.code).not.toBe(0);
    expect(keyless.out).toMatch(/--bus needs --signing-key/);
    const s = await spawnServer(`${dir}/s`, { extra: ['--bus', nats.url, '--signing-key', key] });
    const connz = async () =>
      (
        (await (await fetch(`http://127.0.0.1:${monitor}/connz`)).json()) as {
          connections?: Array<{ name?: string; subscriptions_list?: string[] }>;
        }
      ).connections ?? [];
    const mine = await waitFor(
      async () => (await connz()).find((c) => c.name?.startsWith('hchat-hchat-')),
      5000,
      "the server's NATS connection",
    );
    expect(mine.name).toMatch(/^hchat-hchat-[A-Za-z0-9_-]{16}$/);
    s.proc.kill('SIGTERM');
    expect(await s.exited).toBe(0);
    await waitFor(async () => (await connz()).length === 0, 5000, 'the connection closed');

    await nats.kill();
    const r = await runHchat(
      ['server', '--port', '0', '--http-port', '0', '--data', `${dir}/t`, '--signing-key', key],
      { HCHAT_BUS: nats.url },
    );
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/--bus.*cannot reach NATS/s);
  });
});
