/**
 * The door of the server's HTTP port (HTTP_DOOR_LIMITS): Node's HTTP server keeps a connection
 * that sends nothing, or half a request, open for ever, and one client holding enough of them
 * takes every file descriptor the process has (new peers, `/health` and the REST API then all
 * refused). So connections are capped per address prefix and in total (past a cap a new one is
 * closed at once), one must finish its first request's headers within `firstRequestMs`, and one
 * with no byte either way for `idleMs` is closed. An upgraded connection (the bot gateway's
 * WebSocket) is the gateway's from then on, with heartbeats of its own.
 */
import fs from 'node:fs';
import type http from 'node:http';
import type net from 'node:net';
import { remoteOf } from '../shared/framed-socket.js';
import { HTTP_DOOR_LIMITS } from '../shared/limits.js';

export type HttpDoorLimits = { -readonly [K in keyof typeof HTTP_DOOR_LIMITS]: number };

/**
 * The caps for a process that may open `files` descriptors (its soft limit: Node raises it to the
 * hard one at start): one address group an eighth of them, all connections half, so that what
 * one group holds leaves the rest of the process its descriptors, and a client sending many
 * requests at once (900 posts, each answered 201 or 429) is not cut off on a machine that allows
 * that many. Where the limit cannot be read, HTTP_DOOR_LIMITS as they are.
 */
export function httpDoorLimits(files = openFileLimit()): HttpDoorLimits {
  if (files === undefined) return { ...HTTP_DOOR_LIMITS };
  const within = (n: number, lo: number, hi: number) => Math.max(lo, Math.min(hi, Math.floor(n)));
  return {
    ...HTTP_DOOR_LIMITS,
    perAddress: within(files / 8, 64, 4096),
    total: within(files / 2, 256, 32_768),
  };
}

/** This process's soft limit of open files (Linux: /proc/self/limits), if it can be read. */
function openFileLimit(): number | undefined {
  try {
    const line = fs
      .readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = Number(line?.split(/\s{2,}/)[1]);
    return Number.isFinite(soft) && soft > 0 ? soft : undefined;
  } catch {
    return undefined;
  }
}

/** Guards `server`; `prefixOf` gives the budget key of an address. */
export function guardHttpPort(
  server: http.Server,
  prefixOf: (ip: string) => string,
  limits: HttpDoorLimits = httpDoorLimits(),
): void {
  const perPrefix = new Map<string, number>();
  let open = 0;
  /** Connections whose first request has not come yet, with their deadline. */
  const waiting = new Map<net.Socket, NodeJS.Timeout>();
  const started = (socket: net.Socket) => {
    clearTimeout(waiting.get(socket));
    waiting.delete(socket);
  };
  // No byte either way for idleMs: closed. Counted here, from the socket's own byte counts:
  // the server's `setTimeout` is Node's and fastify's to set (fastify sets it to 0), and Node
  // moves a socket's timeout between requests itself.
  const moved = new Map<net.Socket, { bytes: number; at: number }>();
  const sweep = setInterval(
    () => {
      const now = Date.now();
      for (const [socket, seen] of moved) {
        const bytes = socket.bytesRead + socket.bytesWritten;
        if (bytes !== seen.bytes) moved.set(socket, { bytes, at: now });
        else if (now - seen.at >= limits.idleMs) socket.destroy();
      }
    },
    Math.max(50, limits.idleMs / 4),
  );
  sweep.unref();
  server.on('close', () => clearInterval(sweep));
  server.on('connection', (socket: net.Socket) => {
    const prefix = prefixOf(remoteOf(socket).ip);
    const mine = perPrefix.get(prefix) ?? 0;
    if (open >= limits.total || mine >= limits.perAddress) {
      socket.destroy();
      return;
    }
    open++;
    perPrefix.set(prefix, mine + 1);
    const deadline = setTimeout(() => socket.destroy(), limits.firstRequestMs);
    deadline.unref();
    waiting.set(socket, deadline);
    moved.set(socket, { bytes: 0, at: Date.now() });
    socket.once('close', () => {
      started(socket);
      moved.delete(socket);
      open--;
      const n = (perPrefix.get(prefix) ?? 1) - 1;
      if (n > 0) perPrefix.set(prefix, n);
      else perPrefix.delete(prefix);
    });
  });
  server.on('request', (req: http.IncomingMessage) => started(req.socket));
  server.on('upgrade', (req: http.IncomingMessage) => {
    started(req.socket);
    // The gateway's from now on: its heartbeats say when it is dead.
    moved.delete(req.socket);
  });
}
