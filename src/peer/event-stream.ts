/**
 * `GET /api/events` (server-sent events) without unbounded buffers. A stream does not queue
 * events of its own: it keeps a cursor into the hub's shared window and writes the next events
 * only while less than `eventStreamHighWater` bytes wait towards its reader. A reader that stops
 * reading therefore holds that much at most; once the window has moved past its cursor (it missed
 * events it can no longer get), its stream ends with `event: error` (`E_SLOW_CONSUMER`) and the
 * peer logs it. At most `maxEventStreams` streams are open at once.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { HchatError } from '../protocol/errors.js';
import { LOCAL_API_LIMITS } from '../shared/limits.js';
import type { EventHub, LocalEvent } from './event-hub.js';

/** How often an idle stream gets a comment line (keeps proxies and the browser from giving up). */
const KEEP_ALIVE_MS = 15_000;
/** How long an ended stream's last bytes may wait for its reader before the socket is closed. */
const END_GRACE_MS = 5_000;

/** The event streams of one local API. */
export class EventStreams {
  private open = 0;
  /** How to end each open stream (`endAll`). */
  private readonly enders = new Set<() => void>();

  constructor(
    private readonly hub: EventHub,
    private readonly limits: {
      maxEventStreams: number;
      eventStreamHighWater: number;
    } = LOCAL_API_LIMITS,
  ) {}

  /** Streams events after `since` (default: from now on) until the reader goes. */
  serve(req: FastifyRequest, reply: FastifyReply, since: number | undefined): void {
    if (this.open >= this.limits.maxEventStreams) throw new HchatError('E_TOO_MANY_STREAMS');
    this.open++;
    reply.hijack();
    const res = reply.raw;
    const socket = res.socket;
    const hub = this.hub;
    const highWater = this.limits.eventStreamHighWater;
    // From `since`, as far back as the window goes (a reconnecting reader that was dropped gets
    // what is left, not another drop). Ids of a run start above those of earlier runs
    // (event-hub.ts), so a reader's id from before a restart gets everything kept: what the
    // restarted peer told before its reader came back is not skipped. An id past the last one
    // (a clock set back between runs) means everything kept too.
    const from = since === undefined ? hub.lastId : since > hub.lastId ? 0 : since;
    let cursor = Math.max(from, hub.oldestId - 1);
    let ended = false;

    const write = (e: LocalEvent) =>
      res.write(`id: ${e.id}\nevent: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`);
    const pump = () => {
      if (ended) return;
      if (cursor + 1 < hub.oldestId) return drop();
      while (res.writableLength < highWater) {
        const e = hub.get(cursor + 1);
        if (!e) return;
        write(e);
        cursor = e.id;
      }
    };
    const drop = () => {
      const behind = hub.lastId - cursor;
      console.warn(`hchat peer: event stream closed: its reader is ${behind} events behind`);
      const err = new HchatError(
        'E_SLOW_CONSUMER',
        `this stream fell ${behind} events behind; reconnect, and reload what the events would have told`,
      );
      res.write(`event: error\ndata: ${JSON.stringify(err.toWire())}\n\n`);
      finish();
    };
    const finish = () => {
      if (ended) return;
      ended = true;
      this.open--;
      this.enders.delete(finish);
      stop();
      clearInterval(keepAlive);
      res.end();
      // A reader that reads nothing would keep these last bytes (and the socket) for ever. The
      // socket itself: once the response has finished, it is no longer attached to `res`.
      setTimeout(() => socket?.destroy(), END_GRACE_MS).unref();
    };

    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
    });
    res.write(': hybrid chat events\n\n');
    const stop = hub.listen(pump);
    res.on('drain', pump);
    const keepAlive = setInterval(() => {
      if (res.writableLength < highWater) res.write(': keep-alive\n\n');
    }, KEEP_ALIVE_MS);
    res.on('close', finish);
    this.enders.add(finish);
    pump();
  }

  /** Ends every open stream with its last bytes (the API is closing). */
  endAll(): void {
    for (const end of [...this.enders]) end();
  }
}
