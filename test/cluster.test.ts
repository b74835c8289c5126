/**
 * Several server instances on one PostgreSQL database and one NATS (issue 16 "How it is
 * checked"): three real `hchat server` processes, thirty peers spread over them; members of one
 * channel on different instances see each other's messages live and each other's presence;
 * SIGKILL of one instance mid-traffic: its peers move within 10 s and nothing acknowledged is
 * lost or doubled; NATS killed and restarted mid-traffic: pushes resume and catch-up fills the
 * gap.
 */
import crypto from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { startPeer } from '../src/peer/index.js';
import { api, stablePort, tempDir, waitFor, type TestPeer } from './testnet.js';
import { spawnServer, type HchatProcess } from './processes.js';
import { startNats } from './nats.js';
import { createTestDatabase } from './pg-kit.js';
import { signingKeyFile, startCluster } from './cluster-kit.js';
import { checkSession, newKey, registerLogin, serverHello, sleep } from './outsider/lib.js';
import { rest, signChannelItem } from './outsider/botlife-lib.js';
import pg from 'pg';
import { connect } from '@nats-io/transport-node';

const PEERS = 30;
const RAISED = [
  '--max-registrations-per-address',
  '10000',
  '--max-tracker-entries-per-address',
  '10000',
  '--max-unauthenticated-per-address',
  '10000',
];

describe('three server instances on PostgreSQL and NATS', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(() => db.drop());

  it('members on different instances see each other live; an instance killed, then NATS restarted, loses and doubles nothing', async () => {
    const nats = await startNats();
    const dir = tempDir();
    const key = signingKeyFile(dir);
    const ports = [await stablePort(), await stablePort(), await stablePort()];
    const start = (i: number) =>
      spawnServer(path.join(dir, `srv${i}`), {
        port: ports[i],
        extra: [
          '--store',
          db.url,
          '--bus',
          nats.url,
          '--signing-key',
          key,
          '--peer-timeout-ms',
          '3000',
          '--heartbeat-ms',
          '1000',
          ...RAISED,
        ],
      });
    const servers: HchatProcess[] = [];
    for (let i = 0; i < 3; i++) servers.push(await start(i));
    const addr = (i: number) => ({ host: '127.0.0.1', port: ports[i]! });

    // Peer i starts on instance i % 3 and knows the other two.
    const peers: TestPeer[] = [];
    const home: number[] = [];
    for (let i = 0; i < PEERS; i++) {
      const first = i % 3;
      const order = [first, (first + 1) % 3, (first + 2) % 3];
      const dataDir = path.join(dir, `p${i}`);
      const p = await startPeer({
        serverHost: '127.0.0.1',
        serverPort: ports[first]!,
        otherServers: order.slice(1).map(addr),
        host: '127.0.0.1',
        p2pPort: 0,
        udpPort: 0,
        uiPort: 0,
        dataDir,
        minBackoffMs: 50,
        maxBackoffMs: 500,
      });
      const tp: TestPeer = Object.assign(p, {
        dataDir,
        call: <T = any>(method: string, route: string, body?: unknown) =>
          api<T>(p.uiUrl, method, route, body),
      });
      peers.push(tp);
      home.push(first);
    }
    try {
      // Everyone registers (through its own instance) and logs in.
      await Promise.all(
        peers.map(async (p, i) => {
          let last: unknown;
          await waitFor(
            async () => {
              const r = await p.call('POST', '/api/register', {
                username: `u${i}`,
                password: `u${i}-password`,
              });
              last = r.body;
              return r.status === 201;
            },
            30_000,
            () => `u${i} registered (last answer ${JSON.stringify(last)})`,
          );
          // 30 logins at once fill the server's password-hashing queue: 429 with a retry time,
          // and a client tries again, as this one does.
          await waitFor(
            async () =>
              (
                await p.call('POST', '/api/login', {
                  username: `u${i}`,
                  password: `u${i}-password`,
                })
              ).status === 200,
            30_000,
            `u${i} logged in`,
          );
        }),
      );
      const owner = peers[0]!;
      const ch = (
        await owner.call('POST', '/api/channels', { name: 'general', allowVisitors: false })
      ).body.id as string;
      await Promise.all(
        peers
          .slice(1)
          .map(async (p) =>
            expect((await p.call('POST', `/api/channels/${ch}/join`)).status).toBe(200),
          ),
      );
      // The owner leaves: the channel is served by the instances (scenario 1), so every post
      // crosses them.
      await owner.call('PUT', '/api/status', { status: 'offline' });
      const members = peers.slice(1);

      // Presence across instances: u1 (on instance 1) sees u2 (instance 2) and u3 (instance 0).
      await waitFor(
        async () => {
          const m = (await members[0]!.call('GET', `/api/channels/${ch}/members`)).body as {
            username: string;
            status: string;
          }[];
          const online = new Set(m.filter((x) => x.status === 'online').map((x) => x.username));
          return online.has('u2') && online.has('u3');
        },
        15_000,
        'presence of members on the other instances',
      );

      const sent = new Map<string, string>(); // text → id
      const post = async (p: TestPeer, text: string) => {
        const r = await p.call('POST', `/api/channels/${ch}/messages`, { text });
        expect(r.status).toBe(201);
        sent.set(text, r.body.id);
      };
      const everyoneHasAll = (what: string, ms: number) =>
        waitFor(
          async () => {
            for (const p of members) {
              const got = (await p.call('GET', `/api/channels/${ch}/messages?limit=500`)).body
                .messages as { text: string }[];
              const texts = new Set(got.map((m) => m.text));
              for (const t of sent.keys()) if (!texts.has(t)) return false;
            }
            return true;
          },
          ms,
          what,
        );

      // 1. Live across instances.
      await Promise.all(members.map((p, i) => post(p, `hello from u${i + 1}`)));
      await everyoneHasAll('every hello on every member', 20_000);

      // 2. SIGKILL instance 1 mid-traffic: its peers move within 10 s.
      const traffic = Promise.all(
        members.map(async (p, i) => {
          for (let k = 0; k < 3; k++) {
            await post(p, `during kill u${i + 1} #${k}`);
            await new Promise((r) => setTimeout(r, 100));
          }
        }),
      );
      await new Promise((r) => setTimeout(r, 150));
      const killedAt = Date.now();
      servers[1]!.proc.kill('SIGKILL');
      await servers[1]!.exited;
      const moved = members.filter((_, i) => home[i + 1] === 1);
      const moveTimes = await Promise.all(
        moved.map(async (p) => {
          await waitFor(
            async () => (await p.call('GET', '/api/me')).body.connection === 'connected',
            10_000,
            'a peer of the killed instance connected again',
          );
          return Date.now() - killedAt;
        }),
      );
      await traffic;
      console.log(
        `failover: ${moved.length} peers moved off the killed instance in max ${Math.max(...moveTimes)} ms (median ${moveTimes.sort((a, b) => a - b)[moveTimes.length >> 1]} ms)`,
      );
      await everyoneHasAll('every message posted around the kill on every member', 30_000);

      // 3. NATS killed and restarted mid-traffic.
      await nats.kill();
      await Promise.all(
        members.slice(0, 9).map((p, i) => post(p, `while NATS was down u${i + 1}`)),
      );
      await nats.restart();
      await Promise.all(
        members.slice(9, 18).map((p, i) => post(p, `after NATS came back u${i + 10}`)),
      );
      await everyoneHasAll('every message posted around the NATS restart on every member', 30_000);

      // Nothing doubled: each member holds each message once, with one id per text.
      for (const p of members) {
        const got = (await p.call('GET', `/api/channels/${ch}/messages?limit=500`)).body
          .messages as { id: string; text: string }[];
        const ids = got.map((m) => m.id);
        expect(new Set(ids).size).toBe(ids.length);
        expect(
          got
            .filter((m) => sent.has(m.text))
            .map((m) => [m.text, m.id])
            .sort(),
        ).toEqual([...sent.entries()].sort());
      }
    } finally {
      await Promise.all(peers.map((p) => p.close()));
    }
  }, 240_000);

  it('a removed member is pushed the removal and nothing stored after it, when the bus brings both in one read', async () => {
    const { at, nats } = await startCluster(RAISED, 1);
    const alice = await registerLogin(at(0), 'alice');
    const bob = await registerLogin(at(0), 'bob');
    const ch = crypto.randomUUID();
    expect(
      (await alice.c.req('channel_create', { id: ch, name: 'g', allowVisitors: false })).error,
    ).toBeUndefined();
    expect((await bob.c.req('channel_join', { channelId: ch })).error).toBeUndefined();
    // Another instance (here the test, on the deployment's NATS) stored alice's removal of bob
    // and, right after it, another item of hers: it publishes the three events in store order,
    // in one flush, so that the instance reads them at once.
    const stored = (seq: number, change: { remove?: string; name?: string }) => ({
      ...signChannelItem(alice.key, alice.cert, ch, 'alice', change, Date.now(), seq),
      seq,
      author: 'alice',
    });
    const removal = stored(1, { remove: 'bob' });
    const after = stored(2, { name: 'after' });
    const nc = await connect({ servers: nats.url.replace('nats://', '') });
    const send = (subject: string, event: object) =>
      nc.publish(
        `hchat.hchat.${subject}.${ch}`,
        JSON.stringify({ v: 1, from: 'other-instance', event }),
      );
    send('msg', { kind: 'message', channelId: ch, message: removal });
    send('member_left', { kind: 'member_left', channelId: ch, username: 'bob' });
    send('msg', { kind: 'message', channelId: ch, message: after });
    await nc.flush();
    const pushed = () =>
      bob.c.events.filter((e) => e.ev === 'message').map((e) => e.body.message.id as string);
    await waitFor(() => pushed().includes(removal.id), 10_000, 'the removal pushed to bob');
    await sleep(300);
    expect(pushed()).toEqual([removal.id]);
    await nc.close();
    for (const c of [alice.c, bob.c]) c.close();
  });

  it("a member's removal and its bots' leaving are one unit: a crash between storing the one and the other cannot leave the bots members", async () => {
    // PROTOCOL.md §2.2: a removed member's bots leave the channel with it. The crash is played
    // deterministically: the test holds the bot's membership row locked, so the statement that
    // takes the bot out waits; the instance is then killed, and the statement it waited on ends
    // with it. Before, the removal was stored in a transaction of its own and the bots swept
    // after it, so this left the removed member's bot a member (it kept reading the channel).
    const { at, servers, dbUrl } = await startCluster(RAISED, 2);
    const suffix = crypto.randomBytes(3).toString('hex');
    const alice = await registerLogin(at(0), 'owner' + suffix);
    const bob = await registerLogin(at(0), 'ousted' + suffix);
    const ch = crypto.randomUUID();
    const created = await alice.c.req('channel_create', {
      id: ch,
      name: 'unit',
      allowVisitors: false,
    });
    expect(created.error).toBeUndefined();
    expect((await bob.c.req('channel_join', { channelId: ch })).error).toBeUndefined();
    const bot = (await bob.c.req('bot_create', { username: 'helper' + suffix })).body
      .username as string;
    const tok = (
      await bob.c.req('token_create', { name: 't', scopes: ['read', 'write'], account: bot })
    ).body.token as string;
    const http = (i: number) => servers[i]!.ready.http!;
    expect((await rest(http(0), tok, 'POST', `/channels/${ch}/join`)).status).toBeLessThan(300);
    expect((await rest(http(1), tok, 'GET', `/channels/${ch}/messages`)).status).toBe(200);

    const locker = new pg.Client({ connectionString: dbUrl });
    const watcher = new pg.Client({ connectionString: dbUrl });
    await locker.connect();
    await watcher.connect();
    try {
      await locker.query('BEGIN');
      await locker.query(
        'SELECT 1 FROM members WHERE channel_id = $1 AND lower(username) = lower($2) FOR UPDATE',
        [ch, bot],
      );
      const lockerPid = (await locker.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      const waiting = async () =>
        // Waiting on the locker's row itself: not on another lock an instance's periodic work
        // (leases, sweeps) may wait on for a moment, which would kill the instance too soon.
        (
          await watcher.query(
            `SELECT pid FROM pg_stat_activity WHERE datname = current_database()
             AND wait_event_type = 'Lock' AND $1 = ANY(pg_blocking_pids(pid))`,
            [lockerPid],
          )
        ).rows.map((r: { pid: number }) => r.pid);
      const removal = signChannelItem(alice.key, alice.cert, ch, alice.username, {
        remove: bob.username,
      });
      void alice.c.req('post', { message: removal }).catch(() => undefined);
      // The instance is inside the removal, waiting to take the bot out: it dies there.
      await waitFor(async () => (await waiting()).length > 0, 20_000, 'the bot row waited on');
      servers[0]!.proc.kill('SIGKILL');
      await servers[0]!.exited;
      for (const pid of await waiting())
        await watcher.query('SELECT pg_terminate_backend($1)', [pid]);
      await locker.query('ROLLBACK');
      const state = async () => ({
        removed:
          (
            await watcher.query(
              'SELECT 1 FROM removed WHERE channel_id = $1 AND lower(username) = lower($2)',
              [ch, bob.username],
            )
          ).rowCount === 1,
        botMember:
          (
            await watcher.query(
              'SELECT 1 FROM members WHERE channel_id = $1 AND lower(username) = lower($2)',
              [ch, bot],
            )
          ).rowCount === 1,
      });
      // Stored and left, or neither: never the removal stored with the bot still a member.
      const after = await state();
      expect(after, JSON.stringify(after)).not.toEqual({ removed: true, botMember: true });
      // The owner's peer sends its removal again, to the instance that is left: now it holds.
      const { c: again } = await serverHello(at(1));
      expect((await again.req('resume', { token: alice.token })).error).toBeUndefined();
      const resent = await again.req('post', { message: removal });
      expect(resent.error).toBeUndefined();
      expect(await state()).toEqual({ removed: true, botMember: false });
      expect((await rest(http(1), tok, 'GET', `/channels/${ch}/messages`)).status).toBe(403);
      again.close();
    } finally {
      await locker.end();
      await watcher.end();
    }
    for (const c of [alice.c, bob.c]) c.close();
  });

  it('a session logged out through one instance is revoked on every instance', async () => {
    const { at } = await startCluster(RAISED, 2);
    const alice = await registerLogin(at(0), 'alice');
    const bob = await registerLogin(at(1), 'bob');
    const ch = crypto.randomUUID();
    expect(
      (await alice.c.req('channel_create', { id: ch, name: 'g', allowVisitors: false })).error,
    ).toBeUndefined();
    expect((await bob.c.req('channel_join', { channelId: ch })).error).toBeUndefined();
    // alice's session also has a connection on the other instance.
    const { c: aliceOnB } = await serverHello(at(1));
    expect((await aliceOnB.req('resume', { token: alice.token })).error).toBeUndefined();

    expect((await alice.c.req('logout', {})).error).toBeUndefined();
    await waitFor(
      () =>
        bob.c.events.some(
          (e) => e.ev === 'session_revoked' && e.body.sessionId === alice.sessionId,
        ),
      10_000,
      'bob, on the other instance, told of the revoked session',
    );
    await waitFor(
      () => aliceOnB.closed,
      10_000,
      "the session's connection on the other instance closed",
    );
    // Saying why, though the logout reached it through the bus.
    expect(aliceOnB.frames.filter((f: any) => f.t === 'error')).toEqual([
      {
        t: 'error',
        code: 'E_SESSION_INVALID',
        message: 'session ended: logged out from another connection',
      },
    ]);
    const { c: again } = await serverHello(at(1));
    expect((await again.req('resume', { token: alice.token })).error?.code).toBe(
      'E_SESSION_INVALID',
    );
    for (const c of [alice.c, bob.c, again]) c.close();
  });

  it("a visitor's name is held on every instance while it is present, and freed by its logout", async () => {
    const { at } = await startCluster(RAISED, 2);
    const opened: Awaited<ReturnType<typeof serverHello>>['c'][] = [];
    const visit = async (i: number, name: string) => {
      const { c } = await serverHello(at(i));
      opened.push(c);
      const r = await c.req('visitor', { name, publicKey: newKey().pk });
      return { c, r, got: r.error?.code ?? 'entered' };
    };
    const first = await visit(0, 'Pilgrim');
    expect(first.got).toBe('entered');
    expect((await visit(1, 'pilgrim')).got).toBe('E_NAME_TAKEN');
    // Its connection closed: still present (resumable within its grace), still its name.
    first.c.close();
    await sleep(300);
    expect((await visit(1, 'PILGRIM')).got).toBe('E_NAME_TAKEN');
    // Resumed on the other instance, then logged out there: the name is free on both at once.
    const { c: back } = await serverHello(at(1));
    opened.push(back);
    expect((await back.req('resume', { token: first.r.body.token })).error).toBeUndefined();
    expect((await visit(0, 'pilgrim')).got).toBe('E_NAME_TAKEN');
    expect((await back.req('logout', {})).error).toBeUndefined();
    expect((await visit(0, 'pilgrim')).got).toBe('entered');
    // A look-alike of an account registered through the other instance, after this one started
    // (found in review: only this instance's own registrations were looked at).
    const { c: reg } = await serverHello(at(1));
    opened.push(reg);
    expect(
      (await reg.req('register', { username: 'mallet7', password: 'pw-mallet7' })).error,
    ).toBeUndefined();
    expect((await visit(0, 'rnallet7')).got).toBe('E_NAME_TAKEN');
    expect((await visit(0, 'Mallet7')).got).toBe('E_NAME_TAKEN');
    for (const c of opened) c.close();
  });
  it('a visitor whose instance died for good is ended by another instance once its grace runs out; one that resumed elsewhere lives on', async () => {
    // PROTOCOL.md §3.3: a visitor is present until its logout, its revocation, or the end of its
    // grace; an instance that stops with visitors present frees their names (its lease runs out)
    // and another instance takes over their graces. Before, such a session stayed live for ever:
    // `session_check` answered `live: true`, and a host kept serving the visitor over P2P.
    const { at, servers } = await startCluster(
      [...RAISED, '--visitor-grace-ms', '1500', '--visitor-name-lease-ms', '4000'],
      2,
    );
    const { c: a1 } = await serverHello(at(0));
    const { c: a2 } = await serverHello(at(0));
    const keys = new Map<string, ReturnType<typeof newKey>>();
    const enter = async (c: typeof a1, name: string) => {
      const key = newKey();
      const r = await c.req('visitor', { name, publicKey: key.pk });
      if (r.body) keys.set(r.body.sessionId, key);
      return r;
    };
    const stray = await enter(a1, 'stray');
    const mover = await enter(a2, 'mover');
    expect(stray.error).toBeUndefined();
    expect(mover.error).toBeUndefined();
    // Asked as a host the visitor dials asks (the dial of its hello, PROTOCOL.md §4.1).
    const host = await registerLogin(at(1), 'warden' + crypto.randomBytes(3).toString('hex'));
    const live = async (sessionId: string) => {
      const r = await checkSession(host, sessionId, keys.get(sessionId)!);
      expect(typeof r).toBe('boolean');
      return r as boolean;
    };
    expect(await live(stray.body.sessionId)).toBe(true);
    // Instance 0 dies and never comes back; one of its visitors comes back through instance 1.
    servers[0]!.proc.kill('SIGKILL');
    await servers[0]!.exited;
    const { c: back } = await serverHello(at(1));
    expect((await back.req('resume', { token: mover.body.token })).error).toBeUndefined();
    // The other one never does: its name lease runs out (`--visitor-name-lease-ms`, 4 s here),
    // instance 1 takes over its grace, and the grace ends it.
    await waitFor(
      async () => !(await live(stray.body.sessionId)),
      90_000,
      "the dead instance's visitor session ended",
    );
    const { c: late } = await serverHello(at(1));
    expect((await late.req('resume', { token: stray.body.token })).error?.code).toBe(
      'E_SESSION_INVALID',
    );
    // The one that resumed on instance 1 is present there, and live.
    expect(await live(mover.body.sessionId)).toBe(true);
    expect(back.closed).toBe(false);
    for (const c of [a1, a2, host.c, back, late]) c.close();
  }, 150_000);
  it("a connected visitor outlives a store outage that swept its name's lease: its instance takes the name again; one whose name another visitor took meanwhile is ended", async () => {
    // An instance that cannot reach PostgreSQL for over 30 s misses its renewals; its visitors'
    // lease rows expire and the other instances' renewals delete them (pg/visitor-names.ts
    // `renew`), while the visitors stay connected to it. The outage is simulated in the store
    // itself: deleting those rows leaves the store as that sweep leaves it, without cutting
    // anyone's network, and the instance's next renewal finds them gone, as it does once the
    // store answers again. Before, renewal only extended rows that still existed: the names
    // stayed free and another instance took over the visitors' grace and ended them while
    // they were connected. A lease of 6 s here (`--visitor-name-lease-ms`; 30 s by default) is
    // renewed every 2 s; the grace is above that period, so that a re-claim made after another
    // instance adopted the session still comes before that grace runs out.
    const lease = 6000;
    const renewal = lease / 3;
    const grace = 5000;
    const { at, dbUrl } = await startCluster(
      [...RAISED, '--visitor-grace-ms', String(grace), '--visitor-name-lease-ms', String(lease)],
      2,
    );
    const { c: steady } = await serverHello(at(0));
    const { c: drifter } = await serverHello(at(0));
    const keys = new Map<string, ReturnType<typeof newKey>>();
    const enter = async (c: typeof steady, name: string) => {
      const key = newKey();
      const r = await c.req('visitor', { name, publicKey: key.pk });
      if (r.body) keys.set(r.body.sessionId, key);
      return r;
    };
    const s = await enter(steady, 'steady');
    const d = await enter(drifter, 'drifter');
    expect(s.error).toBeUndefined();
    expect(d.error).toBeUndefined();
    // Asked as a host the visitor dials asks (the dial of its hello, PROTOCOL.md §4.1).
    const host = await registerLogin(at(1), 'warden' + crypto.randomBytes(3).toString('hex'));
    const live = async (sessionId: string) => {
      const r = await checkSession(host, sessionId, keys.get(sessionId)!);
      expect(typeof r).toBe('boolean');
      return r as boolean;
    };
    const client = new pg.Client({ connectionString: dbUrl });
    client.on('error', () => {}); // the database is dropped at the test's end
    await client.connect();
    onTestFinished(() => client.end().catch(() => {}));
    const holders = async (sessionId: string) =>
      (
        await client.query('SELECT DISTINCT instance FROM visitor_names WHERE session_id = $1', [
          sessionId,
        ])
      ).rows.map((r: { instance: string }) => r.instance);
    const [instance0] = await holders(s.body.sessionId);
    expect(instance0).toBeDefined();
    expect(await holders(d.body.sessionId)).toEqual([instance0]);

    const swept = Date.now();
    await client.query('DELETE FROM visitor_names WHERE session_id = ANY($1::text[])', [
      [s.body.sessionId, d.body.sessionId],
    ]);
    // Meanwhile another visitor enters on the other instance under a look-alike of drifter.
    const { c: taker } = await serverHello(at(1));
    const t = await enter(taker, 'Drifter');
    expect(t.error).toBeUndefined();

    // steady's instance takes its name again at its next renewal.
    await waitFor(
      async () => (await holders(s.body.sessionId)).join() === instance0,
      20_000,
      "steady's instance to take its name again",
    );
    // drifter's name is another visitor's now: its session is over (PROTOCOL.md §3.3, as a resume
    // whose name was taken), its connection closed, and it cannot be resumed.
    await waitFor(() => drifter.closed, 20_000, "drifter's session to end");
    // Told what happened: its name went to another visitor (not "logged in elsewhere").
    expect(drifter.frames.filter((f: any) => f.t === 'error')).toEqual([
      {
        t: 'error',
        code: 'E_SESSION_INVALID',
        message:
          'session ended: another visitor took this name while this server could not hold it',
      },
    ]);
    const { c: late } = await serverHello(at(1));
    expect((await late.req('resume', { token: d.body.token })).error?.code).toBe(
      'E_SESSION_INVALID',
    );
    expect(await holders(t.body.sessionId)).toHaveLength(1);
    // Past the moment when a grace taken over before the re-claim would have ended it: steady is
    // still live, still connected, and served.
    await sleep(Math.max(0, swept + renewal + grace + 2000 - Date.now()));
    expect(await live(s.body.sessionId)).toBe(true);
    expect(steady.closed).toBe(false);
    expect((await steady.req('directory', {})).error).toBeUndefined();
    expect(await live(t.body.sessionId)).toBe(true);
    for (const c of [steady, drifter, taker, late, host.c]) c.close();
  }, 90_000);
  it("a visitor resumed on another instance within its grace is not ended by the first one's grace timer", async () => {
    const { at } = await startCluster([...RAISED, '--visitor-grace-ms', '1500'], 2);
    const { c: first } = await serverHello(at(0));
    const v = await first.req('visitor', { name: 'rambler', publicKey: newKey().pk });
    expect(v.error).toBeUndefined();
    // Its connection to instance 0 drops; its peer comes back through instance 1 at once.
    first.close();
    const { c: back } = await serverHello(at(1));
    expect((await back.req('resume', { token: v.body.token })).error).toBeUndefined();
    // Instance 0's grace runs out: the session lives on where it is.
    await sleep(3000);
    expect(back.closed).toBe(false);
    expect((await back.req('directory', {})).error).toBeUndefined();
    const { c: third } = await serverHello(at(0));
    expect((await third.req('resume', { token: v.body.token })).error).toBeUndefined();
    third.close();
    back.close();
    // Gone from both: its grace (on instance 1 now) ends it.
    await sleep(3000);
    const { c: late } = await serverHello(at(0));
    expect((await late.req('resume', { token: v.body.token })).error?.code).toBe(
      'E_SESSION_INVALID',
    );
    late.close();
  });
});
