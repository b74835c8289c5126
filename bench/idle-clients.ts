/**
 * Idle sessions of bench/cluster-idle.ts, in processes of their own: 50,000 TLS connections in
 * one process would make the load generator, not the server, the thing measured. A worker opens
 * sessions [from, from + count) (user `idle<i>`, resumed with a token it signs with the
 * deployment's key, online in the tracker with `submit_info`), on instance i % instances, from a
 * loopback address of its own (its own ephemeral ports). Every frame it receives is parsed (the
 * harness's Client); each pushed event is counted by type, and a presence event about a user
 * that shares no channel with the receiver is counted as misdirected. Each session sends a
 * heartbeat every HEARTBEAT_MS, as a peer does. In the window, `churnPerMinute` of the worker's
 * sessions a minute (spread over the minute) close and come back on the next instance.
 *
 * Protocol over the IPC channel:
 *
 *   parent → worker  {cmd: "open", ...OpenOrder}    → {opened, failed}
 *                    {cmd: "window", churnPerMinute} (counters to zero, churn starts)
 *                    {cmd: "report"}                 → IdleReport
 *                    {cmd: "close"}                  (disconnect and exit)
 */
import crypto from 'node:crypto';
import { encodeFrame } from '../src/protocol/frame.js';
import { signClaims } from '../src/shared/tokens.js';
import { Client, type ServerAddress } from './harness.js';

/** What a worker is told to open. */
export interface OpenOrder {
  instances: ServerAddress[];
  /** The deployment's signing key, PKCS#8 PEM. */
  signingKeyPem: string;
  from: number;
  count: number;
  channelSize: number;
  localAddress: string;
}

/** What a worker counted since the window began. */
export interface IdleReport {
  /** Pushed events received, by event name. */
  events: Record<string, number>;
  /** Presence events about a user in none of the receiver's channels (should be 0). */
  misdirected: number;
  /** Error frames received. */
  errors: number;
  churned: number;
  /** Churned sessions back online on the other instance. */
  returned: number;
  failedReturns: number;
  /** Connections the server closed (a missed heartbeat, say), since they opened. */
  dropped: number;
  online: number;
}

export const HEARTBEAT_MS = 5000;
/** Heartbeats go out in this many slices of the period, so they are spread evenly. */
const SLICES = 50;
/** Sessions opened at once by one worker. */
const BATCH = 50;
/** An open that takes longer is abandoned and tried again, at most OPEN_TRIES times in all. */
const OPEN_TIMEOUT_MS = 60_000;
const OPEN_TRIES = 3;

export const userOf = (i: number) => `idle${i}`;
export const sessionOf = (i: number) => `idle-session-${i.toString().padStart(8, '0')}`;

/** An open under way: its connection once made, and whether it was given up. */
interface Pending {
  client?: Client;
  abandoned?: boolean;
}

interface Idle {
  client: Client;
  instance: number;
}

if (process.send && process.argv.includes('--idle-worker')) {
  let order: OpenOrder;
  let key: crypto.KeyObject;
  const sessions: Array<Idle | undefined> = [];
  const fresh = (): IdleReport => ({
    events: {},
    misdirected: 0,
    errors: 0,
    churned: 0,
    returned: 0,
    failedReturns: 0,
    dropped: 0,
    online: 0,
  });
  let tally = fresh();
  let dropped = 0;
  /** Opens tried again (see open). */
  let retries = 0;
  let churn: NodeJS.Timeout | undefined;

  const channelOf = (user: string) => Math.floor(Number(user.slice(4)) / order.channelSize);
  /**
   * Opens session k on `instance`, as a peer would: a connection the server closed or left
   * unanswered for OPEN_TIMEOUT_MS (a busy server's hello timeout, say) is tried again.
   */
  const open = async (k: number, instance: number) => {
    for (let attempt = 1; ; attempt++) {
      let timer: NodeJS.Timeout | undefined;
      const pending: Pending = {};
      try {
        return await Promise.race([
          openOnce(k, instance, pending),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error('open timed out')), OPEN_TIMEOUT_MS);
          }),
        ]);
      } catch (err) {
        pending.abandoned = true;
        pending.client?.close();
        if (attempt >= OPEN_TRIES) throw err;
        retries++;
      } finally {
        clearTimeout(timer);
      }
    }
  };
  const openOnce = async (k: number, instance: number, pending: Pending) => {
    const i = order.from + k;
    const client = await Client.connect(order.instances[instance]!, true, order.localAddress);
    pending.client = client;
    if (pending.abandoned) throw new Error('abandoned');
    const mine = channelOf(userOf(i));
    client.onEvent = (f) => {
      if (f.t === 'error') return void tally.errors++;
      if (f.t !== 'ev') return;
      tally.events[f.ev] = (tally.events[f.ev] ?? 0) + 1;
      const who = f.body?.entry?.username;
      if (typeof who === 'string' && (!who.startsWith('idle') || channelOf(who) !== mine))
        tally.misdirected++;
    };
    const token = signClaims(
      { typ: 'session', sid: sessionOf(i), u: userOf(i), r: 'user', iat: Date.now() },
      key,
    );
    try {
      await client.request('resume', { token });
      await client.request('submit_info', {
        ip: '127.0.0.1',
        port: 20_000 + (i % 40_000),
        udpPort: 20_000 + (i % 40_000),
        status: 'online',
      });
    } catch (err) {
      client.close();
      throw err;
    }
    if (pending.abandoned) throw new Error('abandoned');
    const me = { client, instance };
    sessions[k] = me;
    // Closed by the server (a heartbeat missed, say) rather than churned by us: counted.
    void client.closed.then(() => {
      if (sessions[k] === me) (dropped++, (sessions[k] = undefined));
    });
  };

  const ping = encodeFrame({ t: 'ping' });
  let turn = 0;
  setInterval(() => {
    for (let k = turn++ % SLICES; k < sessions.length; k += SLICES) sessions[k]?.client.fire(ping);
  }, HEARTBEAT_MS / SLICES);

  const churnFor = (perMinute: number) => {
    let owed = 0;
    return setInterval(() => {
      owed += (order.count * perMinute) / 60;
      for (; owed >= 1; owed--) {
        const k = Math.floor(Math.random() * order.count);
        const s = sessions[k];
        if (!s) continue;
        sessions[k] = undefined;
        s.client.close();
        tally.churned++;
        open(k, (s.instance + 1) % order.instances.length).then(
          () => tally.returned++,
          () => tally.failedReturns++,
        );
      }
    }, 1000);
  };

  // The bench gone (ended, or killed): so are its clients.
  process.on('disconnect', () => process.exit(0));
  process.on('message', (m: any) => {
    void (async () => {
      if (m.cmd === 'open') {
        order = m as OpenOrder;
        key = crypto.createPrivateKey(order.signingKeyPem);
        let failed = 0;
        for (let b = 0; b < order.count; b += BATCH) {
          const batch: Promise<void>[] = [];
          for (let k = b; k < Math.min(order.count, b + BATCH); k++)
            batch.push(
              open(k, (order.from + k) % order.instances.length).catch(() => void failed++),
            );
          await Promise.all(batch);
        }
        process.send!({ opened: order.count - failed, failed, retries });
      } else if (m.cmd === 'window') {
        tally = fresh();
        clearInterval(churn);
        churn = churnFor(m.churnPerMinute);
      } else if (m.cmd === 'report') {
        clearInterval(churn);
        const online = sessions.reduce((n, s) => n + (s ? 1 : 0), 0);
        process.send!({ ...tally, dropped, online } satisfies IdleReport);
      } else if (m.cmd === 'close') {
        clearInterval(churn);
        const all = sessions.splice(0);
        for (const s of all) s?.client.close();
        process.exit(0);
      }
    })();
  });
}
