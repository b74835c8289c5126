/**
 * The realistic mix's sessions (bench/mix.ts), in member processes of their own. A process holds
 * whole channels (every member of each), so that it sees every post of its channels and every
 * delivery of them: it knows which members were online when a message was posted, and so which
 * deliveries must come. Each session is a user's, speaking as a peer does through the peer's own
 * link classes: src/peer/server-link.ts to the server (TLS 1.3, the key pinned, compact pushes)
 * and, for a channel whose host is online, src/peer/host-link.ts to the host (TLS 1.3, the
 * proof-of-possession handshake, compact pushes). Those classes parse every frame and check its
 * envelope and its event's schema (`message`: StoredMessage with its per-kind rule), as a peer
 * does (bench/member-checks.ts mirrors the same path for the fan-out members); a message must
 * then be of the member's channel and carry a bench text (member-checks.ts `sentAt`).
 *
 * Sessions are resumed with a token signed by the deployment's key (the bench wrote the users
 * and their sessions into the server's database: no scrypt). Each member of a hosted channel
 * joins it at the server (so the host learns the member), subscribes there to nothing, finds
 * the host's tracker entry in `get_list`, dials it and subscribes at the host. Posts are signed
 * by their author and sent to the channel's source (host or server).
 *
 * Protocol over the IPC channel:
 *
 *   parent → worker  {cmd: "open", ...OpenOrder}          → {opened, failed, errors}
 *                    {cmd: "window", ...WindowOrder}      (post and churn until `end`; count
 *                                                          deliveries of posts sent in
 *                                                          [start, end))
 *                    {cmd: "owed"}                        → {owed} (deliveries of the window's
 *                                                          posts still to come)
 *                    {cmd: "report"}                      → MixReport
 *                    {cmd: "close"}                       (disconnect and exit)
 */
import crypto from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { HchatError } from '../src/protocol/errors.js';
import { HostLink } from '../src/peer/host-link.js';
import { ServerLink } from '../src/peer/server-link.js';
import { ServerTrust } from '../src/peer/server-trust.js';
import { messageId } from '../src/shared/message-id.js';
import { signMessage, type SessionKeys } from '../src/shared/signing.js';
import { publicKeyFromBase64, signClaims } from '../src/shared/tokens.js';
import { TEXT_LENGTH, sentAt } from './member-checks.js';

/** One channel a worker holds. */
export interface ChannelOrder {
  id: string;
  first: number;
  size: number;
  /** The host's username, when a host is online for it. */
  host?: string;
}

/** What a worker opens. */
export interface OpenOrder {
  host: string;
  port: number;
  fingerprint: string;
  /** The deployment's signing key, PKCS#8 PEM (to sign the sessions' resume tokens). */
  signingKeyPem: string;
  channels: ChannelOrder[];
}

/** One measured window. */
export interface WindowOrder {
  /** Nanoseconds on the shared monotonic clock (process.hrtime), as strings. */
  start: string;
  end: string;
  /** Posts per second this worker sends (its share of the mix's rate). */
  rate: number;
  /** Fraction of the worker's sessions that leave and come back per minute. */
  churnPerMinute: number;
}

/** What a worker counted in a window. */
export interface MixReport {
  posted: number;
  /** Posts the source refused or that failed with their connection (a poster churned). */
  postFailed: number;
  /** Deliveries of the window's posts, through the server and through hosts. */
  serverDeliveries: number;
  hostDeliveries: number;
  /** Latencies (ms) post sent → delivered, uniform samples, through the server and hosts. */
  serverSamples: number[];
  hostSamples: number[];
  /**
   * Deliveries owed to members online at the post and still online, that had not come when the
   * report was asked for (bench/mix.ts asks once they stop coming).
   */
  lost: number;
  /** Deliveries nobody was owed: a member that was back before the push (or a duplicate). */
  unowed: number;
  /** Frames a member refused (another channel, not a bench text): must be 0. */
  refused: number;
  churned: number;
  returned: number;
  failedReturns: number;
  /** Milliseconds from leaving to online again at its source, each return. */
  returnMs: number[];
  /** Messages a returning member fetched with `sync` (what it missed while away). */
  caughtUp: number;
  /** Connections closed by the other end (server or host) since opening. */
  dropped: number;
  /** Sessions back after a drop (reconnected as a peer does), and given up, since opening. */
  reconnected: number;
  gaveUp: number;
  /** Posts hosts accepted, since opening. */
  hostAccepted: number;
  /** Why (`server|host <error code>`), since opening. */
  dropReasons: Record<string, number>;
  /** The first error message of each reason. */
  dropExamples: Record<string, string>;
  /** The event loop's delay over the window (warm-up included), p99 and max. */
  lagP99ms: number;
  lagMaxMs: number;
  online: number;
  cpuUs: number;
  /** Posts not made: no member of the picked channel online. */
  skipped: number;
}

/** The session keys of session i, the same in every process (a seed made from i). */
export function keysOf(i: number): SessionKeys {
  const seed = crypto.createHash('sha256').update(`hchat-mix-session-${i}`).digest();
  // PKCS#8 of an Ed25519 private key: this fixed prefix, then the 32-byte seed (RFC 8410).
  const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]);
  const privateKey = crypto.createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  return { privateKey, publicKey: crypto.createPublicKey(privateKey).export({ format: 'jwk' }).x! };
}

export const userOf = (i: number) => `mix${i}`;
export const sessionOf = (i: number) => `mix-session-${i.toString().padStart(8, '0')}`;

const SAMPLES = 25_000;
/** Sessions opened at once. */
const BATCH = 50;
/** How long a member waits for the host to know it joined (member_joined), at most. */
const HOST_KNOWS_MS = 15_000;

interface Chan {
  order: ChannelOrder;
  members: Session[];
  /** Posts not yet delivered to everyone owed: send time (ns) → members still owed. */
  pending: Map<bigint, Set<Session>>;
}

interface Session {
  i: number;
  ch: Chan;
  keys: SessionKeys;
  cert?: string;
  link?: ServerLink;
  hostLink?: HostLink;
  /** Subscribed at its channel's source: posts made now are owed to it. */
  live: boolean;
  /** Leaving on purpose (churn, close): a close is not a drop. */
  leaving: boolean;
  /** A return after a drop is scheduled. */
  retrying?: boolean;
  joined: boolean;
  /** The highest seq of its channel it holds (its source's numbering). */
  cursor: number;
}

/** A uniform sample (reservoir) of at most SAMPLES values. */
class Reservoir {
  seen = 0;
  values: number[] = [];
  add(v: number): void {
    this.seen++;
    if (this.values.length < SAMPLES) this.values.push(v);
    else {
      const j = Math.floor(Math.random() * this.seen);
      if (j < SAMPLES) this.values[j] = v;
    }
  }
}

if (process.send && process.argv.includes('--mix-worker')) {
  let order: OpenOrder;
  let signingKey: crypto.KeyObject;
  let serverKey: crypto.KeyObject | undefined;
  const chans: Chan[] = [];
  const sessions: Session[] = [];
  let start = 0n;
  let end = 0n;
  let serverSamples = new Reservoir();
  let hostSamples = new Reservoir();
  const fresh = () => ({
    posted: 0,
    postFailed: 0,
    unowed: 0,
    refused: 0,
    churned: 0,
    returned: 0,
    failedReturns: 0,
    returnMs: [] as number[],
    caughtUp: 0,
    skipped: 0,
  });
  let tally = fresh();
  /** How late the event loop ran (a busy member process delays every delivery it holds). */
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  let dropped = 0;
  /** Sessions back after a drop, and those given up after 6 tries, since opening. */
  let reconnected = 0;
  let gaveUp = 0;
  let closing = false;
  /** Posts a host accepted since opening (each must reach the server's backup). */
  let hostAccepted = 0;
  /** Why links were dropped: `server|host <error code>` → count. */
  const dropReasons: Record<string, number> = {};
  /** The first error message of each reason. */
  const dropExamples: Record<string, string> = {};
  let cpuAtStart: NodeJS.CpuUsage | undefined;
  let cpuAtEnd: NodeJS.CpuUsage | undefined;
  let poster: NodeJS.Timeout | undefined;
  let churner: NodeJS.Timeout | undefined;
  let lastNs = 0n;
  const inWindow = (ns: bigint) => ns >= start && ns < end;

  /** A member leaves: nothing more is owed to it. */
  const offline = (s: Session) => {
    s.live = false;
    for (const [ns, owed] of s.ch.pending)
      if (owed.delete(s) && owed.size === 0) s.ch.pending.delete(ns);
  };

  /** A `message` event at member s, from its server or host link. */
  const onMessage = (s: Session, viaHost: boolean) => (name: string, body: any) => {
    if (name !== 'message') return;
    const now = process.hrtime.bigint();
    const id = s.ch.order.id;
    let sent: bigint;
    try {
      if (body.channelId !== id || body.message.channelId !== id) throw new Error('channel');
      sent = sentAt(body.message.text ?? '');
    } catch {
      tally.refused++;
      return;
    }
    if (body.message.seq > s.cursor) s.cursor = body.message.seq;
    const owed = s.ch.pending.get(sent);
    if (owed?.delete(s)) {
      if (owed.size === 0) s.ch.pending.delete(sent);
    } else tally.unowed++;
    if (!inWindow(sent)) return;
    (viaHost ? hostSamples : serverSamples).add(Number(now - sent) / 1e6);
  };

  /** Counts a close that neither we nor a churn asked for. */
  const watch = (s: Session, link: ServerLink | HostLink) =>
    link.on('down', (reason?: HchatError) => {
      if (s.leaving || (s.link !== link && s.hostLink !== link)) return;
      dropped++;
      // A heartbeat timeout is this member's own check (rpc-link.ts: "… silent past the
      // heartbeat timeout"), or the other end's error frame (it found this member silent).
      const own = /silent past the heartbeat timeout$/.test(reason?.message ?? '');
      const why = `${link === s.hostLink ? 'host' : 'server'} ${reason?.code ?? 'eof'}${own ? ' (this end)' : ''}`;
      dropReasons[why] = (dropReasons[why] ?? 0) + 1;
      if (reason?.message && !dropExamples[why]) dropExamples[why] = reason.message.slice(0, 300);
      leave(s);
      comeBack(s);
    });

  /**
   * A session whose link dropped (or whose return failed) comes back as a peer does: after a
   * backoff doubling from 0.5 s to 5 s (×0.5–1 jitter), then catches up; 6 tries at most.
   */
  const comeBack = (s: Session, attempt = 0) => {
    if (s.retrying || closing) return;
    s.retrying = true;
    const delay = Math.min(5000, 500 * 2 ** attempt) * (0.5 + Math.random() / 2);
    setTimeout(() => {
      s.retrying = false;
      if (closing) return;
      open(s).then(
        () => {
          reconnected++;
          return catchUp(s).catch(() => undefined);
        },
        () => {
          leave(s);
          if (attempt < 5) comeBack(s, attempt + 1);
          else gaveUp++;
        },
      );
    }, delay);
  };

  /** Finds the host's tracker entry for s's channel (it may take a moment to be listed). */
  const hostEntry = async (s: Session) => {
    const want = s.ch.order.host!.toLowerCase();
    const deadline = Date.now() + HOST_KNOWS_MS;
    for (;;) {
      let after: string | undefined;
      do {
        const page = await s.link!.request('get_list', after ? { after } : {});
        const e = page.peers.find(
          (p) => p.username.toLowerCase() === want && p.hosts.includes(s.ch.order.id),
        );
        if (e) return e;
        after = page.next;
      } while (after);
      if (Date.now() > deadline) throw new Error(`no tracker entry hosts ${s.ch.order.id}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };

  /** Session s online at its channel's source, as a peer comes online (§3.6, §4.3). */
  const open = async (s: Session) => {
    const { id, host } = s.ch.order;
    const link = new ServerLink({
      host: order.host,
      port: order.port,
      trust: ServerTrust.pinned(order.host, order.port, order.fingerprint),
      reconnect: false,
      requestTimeoutMs: 60_000,
    });
    s.link = link;
    s.leaving = false;
    await link.start();
    if (!link.connected) throw new Error('the server link did not open');
    serverKey ??= publicKeyFromBase64(link.server!.publicKey);
    watch(s, link);
    const token = signClaims(
      { typ: 'session', sid: sessionOf(s.i), u: userOf(s.i), r: 'user', iat: Date.now() },
      signingKey,
    );
    s.cert = (await link.request('resume', { token })).cert;
    if (host !== undefined && !s.joined) {
      await link.request('channel_join', { channelId: id });
      s.joined = true;
    }
    await link.request('submit_info', {
      ip: '127.0.0.1',
      port: 20_000 + (s.i % 40_000),
      udpPort: 20_000 + (s.i % 40_000),
      status: 'online',
    });
    if (host === undefined) {
      link.on('event', onMessage(s, false));
      await link.request('subscribe', { channelIds: [id] });
    } else {
      // Read from the host: the server pushes this member none of the channel's messages.
      await link.request('subscribe', { channelIds: [] });
      const hl = new HostLink(
        await hostEntry(s),
        { cert: s.cert, keys: s.keys, sessionId: sessionOf(s.i) },
        () => serverKey,
      );
      s.hostLink = hl;
      await hl.start();
      if (!hl.connected) throw new Error(`the link to ${host} did not open`);
      watch(s, hl);
      hl.on('event', onMessage(s, true));
      // The host learns the member from the server's member_joined: until then it refuses it.
      const deadline = Date.now() + HOST_KNOWS_MS;
      while (!(await hl.request('subscribe', { channelIds: [id] })).channelIds.includes(id)) {
        if (Date.now() > deadline) throw new Error(`${host} never let ${userOf(s.i)} subscribe`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    if (s.leaving) throw new Error('left while opening');
    s.live = true;
  };

  /** What s missed while away, from its source (§3.6): counted, not timed. */
  const catchUp = async (s: Session) => {
    for (;;) {
      const ask = { channelId: s.ch.order.id, since: s.cursor, limit: 500 };
      const page = s.hostLink
        ? await s.hostLink.request('sync', ask)
        : await s.link!.request('sync', ask);
      for (const m of page.messages) {
        if (m.channelId !== s.ch.order.id) tally.refused++;
        if ((m.seq ?? 0) > s.cursor) s.cursor = m.seq!;
      }
      tally.caughtUp += page.messages.length;
      if (page.messages.length === 0 || s.cursor >= page.lastSeq) return;
    }
  };

  const leave = (s: Session) => {
    s.leaving = true;
    offline(s);
    s.hostLink?.stop();
    s.link?.stop();
    s.hostLink = undefined;
    s.link = undefined;
  };

  /** One post by a member of `ch` online now, to the channel's source. */
  const post = (ch: Chan) => {
    const online = ch.members.filter((m) => m.live);
    if (online.length === 0) return void tally.skipped++;
    const author = online[Math.floor(Math.random() * online.length)]!;
    let ns = process.hrtime.bigint();
    if (ns <= lastNs) ns = lastNs + 1n;
    lastNs = ns;
    const text = `${ns}|${author.i}|`.padEnd(TEXT_LENGTH, 'x');
    const base = { channelId: ch.order.id, author: userOf(author.i), ts: Date.now(), lc: 0, text };
    const id = messageId(base);
    const { author: _, ...wire } = base;
    const message = {
      ...wire,
      id,
      sig: signMessage({ ...base, id }, author.keys),
      cert: author.cert!,
    };
    const owed = new Set(online.filter((m) => m !== author));
    if (owed.size) ch.pending.set(ns, owed);
    if (inWindow(ns)) tally.posted++;
    const viaHost = author.hostLink !== undefined;
    const sent = author.hostLink
      ? author.hostLink.request('post', { message })
      : author.link!.request('post', { message });
    sent.then(
      (r) => {
        if (viaHost) hostAccepted++;
        if (r.seq > author.cursor) author.cursor = r.seq;
      },
      (_err: HchatError) => {
        if (inWindow(ns)) tally.postFailed++;
        ch.pending.delete(ns);
      },
    );
  };

  /** Posts `rate` a second until the window ends, each to a channel picked by its size. */
  const postUntilEnd = (rate: number) => {
    const cumulative: number[] = [];
    let total = 0;
    for (const c of chans) cumulative.push((total += c.order.size));
    const pick = () => {
      const x = Math.random() * total;
      let lo = 0;
      let hi = cumulative.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (cumulative[mid]! > x) hi = mid;
        else lo = mid + 1;
      }
      return chans[lo]!;
    };
    let owed = 0;
    let last = performance.now();
    return setInterval(() => {
      const now = performance.now();
      owed += ((now - last) / 1000) * rate;
      last = now;
      const ns = process.hrtime.bigint();
      if (ns >= start) cpuAtStart ??= process.cpuUsage();
      if (ns >= end) {
        cpuAtEnd ??= process.cpuUsage();
        clearInterval(poster);
        return;
      }
      for (; owed >= 1; owed--) post(pick());
    }, 10);
  };

  /** `perMinute` of the sessions a minute leave and come back at once (spread evenly). */
  const churnUntilEnd = (perMinute: number) => {
    let owed = 0;
    return setInterval(() => {
      if (process.hrtime.bigint() >= end) return clearInterval(churner);
      owed += (sessions.length * perMinute) / 600;
      for (; owed >= 1; owed--) {
        const s = sessions[Math.floor(Math.random() * sessions.length)]!;
        if (!s.live) continue;
        leave(s);
        tally.churned++;
        const t0 = performance.now();
        open(s)
          .then(() => {
            tally.returnMs.push(performance.now() - t0);
            tally.returned++;
            return catchUp(s);
          })
          .catch(() => {
            tally.failedReturns++;
            leave(s);
            comeBack(s);
          });
      }
    }, 100);
  };

  process.on('disconnect', () => process.exit(0));
  process.on('message', (m: any) => {
    void (async () => {
      if (m.cmd === 'open') {
        order = m as OpenOrder;
        signingKey = crypto.createPrivateKey(order.signingKeyPem);
        for (const o of order.channels) {
          const ch: Chan = { order: o, members: [], pending: new Map() };
          for (let i = o.first; i < o.first + o.size; i++) {
            const s: Session = {
              i,
              ch,
              keys: keysOf(i),
              live: false,
              leaving: false,
              joined: false,
              cursor: 0,
            };
            ch.members.push(s);
            sessions.push(s);
          }
          chans.push(ch);
        }
        // Sessions of server-read channels first, then those that join a host's channel: the
        // host hears of each join while the rest open.
        const ordered = [
          ...sessions.filter((s) => s.ch.order.host === undefined),
          ...sessions.filter((s) => s.ch.order.host !== undefined),
        ];
        const errors: string[] = [];
        for (let b = 0; b < ordered.length; b += BATCH) {
          await Promise.all(
            ordered.slice(b, b + BATCH).map((s) =>
              open(s).catch((err) => {
                if (errors.length < 5) errors.push(`${userOf(s.i)}: ${String(err)}`);
                leave(s);
              }),
            ),
          );
        }
        const opened = sessions.filter((s) => s.live).length;
        process.send!({
          opened,
          failed: sessions.length - opened,
          errors,
          dropReasons,
          lagMaxMs: lag.max / 1e6,
        });
      } else if (m.cmd === 'window') {
        const w = m as WindowOrder;
        start = BigInt(w.start);
        end = BigInt(w.end);
        tally = fresh();
        serverSamples = new Reservoir();
        hostSamples = new Reservoir();
        cpuAtStart = cpuAtEnd = undefined;
        lag.reset();
        clearInterval(poster);
        clearInterval(churner);
        poster = postUntilEnd(w.rate);
        churner = churnUntilEnd(w.churnPerMinute);
      } else if (m.cmd === 'owed') {
        let owed = 0;
        for (const ch of chans)
          for (const [ns, set] of ch.pending) if (inWindow(ns)) owed += set.size;
        process.send!({ owed });
      } else if (m.cmd === 'report') {
        let lost = 0;
        for (const ch of chans)
          for (const [ns, owed] of ch.pending) {
            if (inWindow(ns)) lost += owed.size;
            if (ns < end) ch.pending.delete(ns);
          }
        const cpu = (cpuAtEnd ?? process.cpuUsage()) as NodeJS.CpuUsage;
        const from = cpuAtStart ?? cpu;
        process.send!({
          ...tally,
          serverDeliveries: serverSamples.seen,
          hostDeliveries: hostSamples.seen,
          serverSamples: serverSamples.values,
          hostSamples: hostSamples.values,
          lost,
          dropped,
          dropReasons,
          dropExamples,
          reconnected,
          gaveUp,
          hostAccepted,
          lagP99ms: lag.percentile(99) / 1e6,
          lagMaxMs: lag.max / 1e6,
          online: sessions.filter((s) => s.live).length,
          cpuUs: cpu.user - from.user + cpu.system - from.system,
        } satisfies MixReport);
      } else if (m.cmd === 'close') {
        closing = true;
        clearInterval(poster);
        clearInterval(churner);
        for (const s of sessions) leave(s);
        setTimeout(() => process.exit(0), 200);
      }
    })();
  });
}
