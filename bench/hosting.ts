/**
 * Channel hosting figures (part of `npm run bench`):
 * 1. Sync throughput: a host writes a backlog of BENCH_BACKLOG messages while offline, then comes
 *    back; time until the server holds all of them (host → server), and until a member that was
 *    offline meanwhile holds them all (host → member over P2P).
 * 2. Server bytes per message with the host online versus offline, for 10, 50 and 200 members:
 *    a member posts, every member must receive it; online the host serves them, offline the
 *    server does.
 * Server and peers run in this process (the figures are bytes and elapsed times, not CPU).
 */
import { benchWorld, until } from './world.js';
import { publicKeyFromBase64 } from '../src/shared/tokens.js';
import { ServerTrust } from '../src/peer/server-trust.js';
import { ServerLink } from '../src/peer/server-link.js';
import { HostLink } from '../src/peer/host-link.js';
import { newSessionKeys } from '../src/shared/signing.js';

const BACKLOG = Number(process.env.BENCH_BACKLOG ?? 100_000);
const MEMBER_COUNTS = (process.env.BENCH_HOST_MEMBERS ?? '10,50,200').split(',').map(Number);
const POSTS = 50;

/**
 * The server with every bench client's per-address limits raised (all come from 127.0.0.1), and
 * the per-user post rate too, which also paces a host's `forward` of its backlog (50 a second by
 * default): the bench measures how fast a sync can go, not the limiter.
 */
const world = () =>
  benchWorld('hchat-bench-host-', {
    maxRegistrationsPerAddress: 1_000_000,
    maxVisitorsPerAddress: 1_000_000,
    maxTrackerEntriesPerAddress: 1_000_000,
    postsPerSecond: 1_000_000,
    postBurst: 1_000_000,
  });

/** A raw member: logs in over its own server link, then reads from the server or the host. */
async function rawMember(w: Awaited<ReturnType<typeof world>>, name: string, channelId: string) {
  const link = new ServerLink({
    host: w.host,
    port: w.port,
    trust: ServerTrust.pinned(w.host, w.port, w.server.fingerprint),
    reconnect: false,
  });
  await link.start();
  await link.request('register', { username: name, password: `${name}-bench` });
  const keys = newSessionKeys();
  const s = await link.request('login', {
    username: name,
    password: `${name}-bench`,
    publicKey: keys.publicKey,
  });
  await link.request('channel_join', { channelId });
  let received = 0;
  link.on('event', (ev: string) => {
    if (ev === 'message') received++;
  });
  const creds = { cert: s.cert, keys, sessionId: s.sessionId };
  const serverKey = publicKeyFromBase64(link.server!.publicKey);
  return { link, creds, serverKey, count: () => received };
}

async function syncThroughput() {
  const w = await world();
  try {
    const alice = await w.peer('alice');
    const bob = await w.peer('bob');
    const ch = await alice.node.createChannel('backlog', false);
    await bob.node.join(ch.id);
    await bob.node.setStatus('offline');
    await alice.node.setStatus('offline');
    let t = Date.now();
    for (let i = 0; i < BACKLOG; i++) await alice.node.post(ch.id, `backlog message ${i}`);
    const writeMs = Date.now() - t;
    t = Date.now();
    await alice.node.setStatus('online');
    await until(
      async () => (await w.server.store.lastSeq(ch.id)) >= BACKLOG,
      600_000,
      'server has the backlog',
    );
    const uploadMs = Date.now() - t;
    t = Date.now();
    await bob.node.setStatus('online');
    await until(
      () => bob.node.store.hostCursor(ch.id) >= BACKLOG,
      600_000,
      'member caught up from the host',
    );
    const memberMs = Date.now() - t;
    return {
      backlog: BACKLOG,
      writeOfflineMs: writeMs,
      hostToServer: { ms: uploadMs, messagesPerSec: Math.round((BACKLOG / uploadMs) * 1000) },
      hostToMember: { ms: memberMs, messagesPerSec: Math.round((BACKLOG / memberMs) * 1000) },
    };
  } finally {
    await w.close();
  }
}

async function bytesPerMessage(members: number) {
  const out = { onlineBytesPerMessage: 0, offlineBytesPerMessage: 0 };
  for (const mode of ['online', 'offline'] as const) {
    const w = await world();
    try {
      const alice = await w.peer('alice');
      const poster = await w.peer('poster');
      const ch = await alice.node.createChannel('room', false);
      await poster.node.join(ch.id);
      const raws: Awaited<ReturnType<typeof rawMember>>[] = [];
      for (let i = 0; i < members; i++) raws.push(await rawMember(w, `m${i}`, ch.id));
      if (mode === 'online') {
        // Members reach the host: they read there, and tell the server to push them nothing.
        const entry = (await raws[0]!.link.request('get_list', {})).peers.find(
          (e) => e.username === 'alice',
        )!;
        for (const r of raws) {
          const hl = new HostLink(entry, r.creds, () => r.serverKey);
          await hl.start();
          let n = 0;
          hl.on('event', () => n++);
          await hl.request('subscribe', { channelIds: [ch.id] });
          await r.link.request('subscribe', { channelIds: [] });
          r.count = () => n;
        }
      } else {
        await alice.node.setStatus('offline');
        await until(() => poster.node.sourceOf(ch.id) === 'server', 10_000, 'poster on the server');
      }
      await until(
        () => poster.node.sourceOf(ch.id) === (mode === 'online' ? 'host' : 'server'),
        10_000,
        'poster source',
      );
      const before = { ...w.server.traffic };
      for (let i = 0; i < POSTS; i++)
        await poster.node.post(ch.id, `message ${i} `.padEnd(100, 'x'));
      await until(
        () => raws.every((r) => r.count() >= POSTS),
        30_000,
        'every member received every message',
      );
      if (mode === 'online')
        await until(async () => (await w.server.store.lastSeq(ch.id)) >= POSTS, 10_000, 'backup');
      const after = w.server.traffic;
      out[`${mode}BytesPerMessage`] = Math.round(
        (after.bytesIn - before.bytesIn + after.bytesOut - before.bytesOut) / POSTS,
      );
      for (const r of raws) r.link.stop();
    } finally {
      await w.close();
    }
  }
  return {
    members,
    ...out,
    ratio: Number((out.offlineBytesPerMessage / out.onlineBytesPerMessage).toFixed(1)),
  };
}

/** Runs the hosting figures and prints them. */
export async function benchHosting(): Promise<unknown> {
  console.log(`\nchannel hosting: backlog of ${BACKLOG} written by an offline host`);
  const sync = await syncThroughput();
  console.log(`| figure | value |\n|---|---:|`);
  console.log(`| host writes ${BACKLOG} while offline | ${sync.writeOfflineMs} ms |`);
  console.log(
    `| host → server after reconnect | ${sync.hostToServer.ms} ms (${sync.hostToServer.messagesPerSec} msg/s) |`,
  );
  console.log(
    `| host → member over P2P | ${sync.hostToMember.ms} ms (${sync.hostToMember.messagesPerSec} msg/s) |`,
  );
  console.log(
    `\nserver bytes per message (${POSTS} posts of 100 characters; in + out, all frames)`,
  );
  console.log(`| members | host online | host offline | offline / online |\n|---:|---:|---:|---:|`);
  const bytes = [];
  for (const n of MEMBER_COUNTS) {
    const b = await bytesPerMessage(n);
    bytes.push(b);
    console.log(`| ${n} | ${b.onlineBytesPerMessage} | ${b.offlineBytesPerMessage} | ${b.ratio} |`);
  }
  return { sync, bytes };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  benchHosting().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
