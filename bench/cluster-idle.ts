/**
 * Idle sessions over two instances (issue 16): BENCH_IDLE_SESSIONS users (default 50,000) in
 * channels of BENCH_IDLE_CHANNEL_SIZE (10), each online on one of two PostgreSQL + NATS
 * instances (alternately), sending a heartbeat every 5 s as a peer does; 1 % of them drop and come
 * back each minute (spread over the minute, back on the other instance). Measured: the
 * instances' RSS per session (after connecting, less before), and pushes per session per minute
 * over BENCH_IDLE_MINUTES (2), from the instances' /metrics and as the clients counted them.
 *
 * Accounts, sessions, channels and memberships are written straight into the store's tables
 * (src/store/pg/migrations.ts) and each client `resume`s with a session token signed by the
 * deployment's key (as server.ts signs them), so that opening 50,000 sessions costs no scrypt.
 * The clients live in this process (the harness's Client, every frame parsed).
 */
import crypto from 'node:crypto';
import { encodeFrame } from '../src/protocol/frame.js';
import { signClaims } from '../src/shared/tokens.js';
import { Client, rssKB } from './harness.js';
import { deploy, pushesTotal, type Deployment } from './cluster-deploy.js';

const SESSIONS = Number(process.env.BENCH_IDLE_SESSIONS ?? 50_000);
const CHANNEL_SIZE = Number(process.env.BENCH_IDLE_CHANNEL_SIZE ?? 10);
const MINUTES = Number(process.env.BENCH_IDLE_MINUTES ?? 2);
const CHURN_PER_MINUTE = 0.01;
const HEARTBEAT_MS = 5000;
/** Connections opened at once. */
const BATCH = 200;

const userOf = (i: number) => `idle${i}`;
const sessionOf = (i: number) => `idle-session-${i.toString().padStart(8, '0')}`;

/** Writes the users, their sessions, channels and memberships into the deployment's database. */
async function populate(d: Deployment): Promise<void> {
  const db = d.db!;
  const now = Date.now();
  const pk = crypto.randomBytes(32).toString('base64url');
  const channels = Math.ceil(SESSIONS / CHANNEL_SIZE);
  await db.query(
    `INSERT INTO users (username, pass_hash, created_at)
     SELECT 'idle' || g, 'unused: sessions are resumed', $1::bigint FROM generate_series(0, $2::int - 1) g`,
    [now, SESSIONS],
  );
  await db.query(
    `INSERT INTO sessions (session_id, username, role, created_at, public_key)
     SELECT 'idle-session-' || lpad(g::text, 8, '0'), 'idle' || g, 'user', $1::bigint, $3
     FROM generate_series(0, $2::int - 1) g`,
    [now, SESSIONS, pk],
  );
  // Channel c holds users c*size … c*size+size-1, the first its owner.
  await db.query(
    `INSERT INTO channels (id, name, owner, allow_visitors, created_at)
     SELECT '01900000-0000-7000-8000-' || lpad(to_hex(c), 12, '0'), 'idle-' || c,
            'idle' || (c * $2::int), false, $1::bigint + c
     FROM generate_series(0, $3::int - 1) c`,
    [now, CHANNEL_SIZE, channels],
  );
  await db.query(
    `INSERT INTO members (channel_id, username, joined_at)
     SELECT '01900000-0000-7000-8000-' || lpad(to_hex(g / $2::int), 12, '0'), 'idle' || g, $1::bigint
     FROM generate_series(0, $3::int - 1) g`,
    [now, CHANNEL_SIZE, SESSIONS],
  );
}

/** One idle session's connection, counting the pushes it receives. */
interface Idle {
  client: Client;
  instance: number;
}

export async function benchIdle(): Promise<Record<string, number>> {
  console.log(`\nidle sessions: ${SESSIONS} over 2 instances, 1 % churn a minute, ${MINUTES} min`);
  const d = await deploy('pg', 2);
  const sessions = new Array<Idle | undefined>(SESSIONS);
  let received = 0;
  let dropped = 0;
  let beat: NodeJS.Timeout | undefined;
  let churn: NodeJS.Timeout | undefined;
  try {
    await populate(d);
    const open = async (i: number, instance: number) => {
      const client = await Client.connect(d.instances[instance]!.server, true);
      client.onEvent = (f) => {
        if (f.t === 'ev') received++;
      };
      const token = signClaims(
        { typ: 'session', sid: sessionOf(i), u: userOf(i), r: 'user', iat: Date.now() },
        d.signingKey,
      );
      await client.request('resume', { token });
      await client.request('submit_info', {
        ip: '127.0.0.1',
        port: 20_000 + (i % 40_000),
        udpPort: 20_000 + (i % 40_000),
        status: 'online',
      });
      const me = { client, instance };
      sessions[i] = me;
      // Closed by the server (a heartbeat missed, say) rather than churned by us: counted.
      void client.closed.then(() => {
        if (sessions[i] === me) (dropped++, (sessions[i] = undefined));
      });
    };
    await new Promise((r) => setTimeout(r, 2000));
    const rss0 = d.instances.reduce((t, x) => t + rssKB(x.pid), 0);
    // Heartbeats from the start (connecting takes a while): a fifth of the sessions each second, so each sends one every 5 s.
    const ping = encodeFrame({ t: 'ping' });
    let turn = 0;
    const slices = HEARTBEAT_MS / 1000;
    beat = setInterval(() => {
      for (let i = turn++ % slices; i < SESSIONS; i += slices) sessions[i]?.client.fire(ping);
    }, 1000);
    const connectStart = Date.now();
    for (let b = 0; b < SESSIONS; b += BATCH) {
      const batch: Promise<void>[] = [];
      for (let i = b; i < Math.min(SESSIONS, b + BATCH); i++) batch.push(open(i, i % 2));
      await Promise.all(batch);
    }
    const connectSeconds = (Date.now() - connectStart) / 1000;
    await new Promise((r) => setTimeout(r, 5000));
    const rss1 = d.instances.reduce((t, x) => t + rssKB(x.pid), 0);
    console.log(`  ${SESSIONS} sessions online in ${connectSeconds.toFixed(0)} s`);
    // The window: 1 % a minute drop and come back on the other instance, spread over the minute.
    const pushes0 = (await Promise.all(d.instances.map(pushesTotal))).reduce((a, b) => a + b, 0);
    received = 0;
    let owed = 0;
    let churned = 0;
    churn = setInterval(() => {
      owed += (SESSIONS * CHURN_PER_MINUTE) / 60;
      for (; owed >= 1; owed--) {
        const i = Math.floor(Math.random() * SESSIONS);
        const s = sessions[i];
        if (!s) continue;
        sessions[i] = undefined;
        s.client.close();
        churned++;
        void open(i, 1 - s.instance).catch((err: unknown) =>
          console.error(`  idle session ${i} did not come back: ${String(err)}`),
        );
      }
    }, 1000);
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, MINUTES * 60_000));
    clearInterval(churn);
    const minutes = (Date.now() - t0) / 60_000;
    const pushes1 = (await Promise.all(d.instances.map(pushesTotal))).reduce((a, b) => a + b, 0);
    const out = {
      sessions: SESSIONS,
      channelSize: CHANNEL_SIZE,
      minutes: Number(minutes.toFixed(2)),
      churned,
      connectSeconds,
      rssPerSessionKB: Number(((rss1 - rss0) / SESSIONS).toFixed(1)),
      instancesRssMB: Math.round(rss1 / 1024),
      droppedByServer: dropped,
      pushesPerSessionPerMinute: Number(((pushes1 - pushes0) / SESSIONS / minutes).toFixed(3)),
      receivedPerSessionPerMinute: Number((received / SESSIONS / minutes).toFixed(3)),
    };
    console.log('  idle:', JSON.stringify(out));
    return out;
  } finally {
    clearInterval(beat);
    clearInterval(churn);
    for (const s of sessions) s?.client.close();
    await d.close();
  }
}
