/**
 * The peer's local JSON API (SPEC §10) and its page, on 127.0.0.1 only. Every request must name
 * this peer in its Host header (no DNS rebinding) and, when a browser sends an Origin, come from
 * this same origin (no cross-site requests). Errors answer `{"error":{"code","message"}}`.
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { ERRORS, HchatError } from '../protocol/errors.js';
import { LONE_SURROGATE, holdsLoneSurrogate } from '../protocol/frame.js';
import type { PeerNode } from './node.js';
import fs from 'node:fs';
import type { Socket } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import { renderHome } from './home-page.js';
import { lockApi } from './api-auth.js';
import { isThisUser, tcpPeerOwner } from '../shared/socket-owner.js';
import { LOCAL_API_LIMITS } from '../shared/limits.js';
import { documentApi } from './api-doc.js';
import { sessionRoutes } from './api-session.js';
import { streamRoutes } from './api-streams.js';
import { messageRoutes } from './api-messages.js';
import { outboxRoutes } from './api-outbox.js';
import { fileRoutes } from './api-files.js';
import { avatarRoutes } from './api-avatars.js';
import { channelRoutes } from './api-channels.js';
import { searchRoutes } from './api-search.js';
import { dmRoutes } from './api-dms.js';
import { tokenRoutes } from './api-tokens.js';

/**
 * Where `npm run build` puts the web UI (vite.config.ts): dist/web, next to this file's folder
 * when it runs compiled (dist/peer), or from the sources (src/peer, in tests).
 */
const HERE = path.dirname(fileURLToPath(import.meta.url));
const WEB_ROOT = [
  path.resolve(HERE, '..', 'web'),
  path.resolve(HERE, '..', '..', 'dist', 'web'),
].find((d) => fs.existsSync(path.join(d, 'index.html')));
const CSP =
  "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'";

/** The error code of a status a plugin answered with (PROTOCOL.md §7); others: E_BAD_REQUEST. */
const FASTIFY_CODES: Record<number, string> = { 403: 'E_FORBIDDEN', 404: 'E_NOT_FOUND' };

/**
 * Builds the API for a node; `port` is the port it will listen on (for Host checks), `token` the
 * credential every request but the UI's static files must carry (api-auth.ts).
 */
export function buildApi(node: PeerNode, port: () => number, token: string): FastifyInstance {
  // Event streams never end by themselves: closing the API closes them.
  const app = Fastify({
    logger: false,
    bodyLimit: 64 * 1024,
    forceCloseConnections: true,
    // Errors Fastify raises before any route (a malformed %-escape in the path, a bad header)
    // answer in the API's own shape, with a catalogue code (found by `npm run fuzz`).
    frameworkErrors: (err, _req, reply) => {
      void sendError(reply, new HchatError('E_BAD_REQUEST', err.message.slice(0, 200)));
    },
  });

  // Empty bodies are fine (logout, join); anything else must be a JSON object.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = (body as string).trim();
    if (text === '') return done(null, {});
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return done(new HchatError('E_BAD_REQUEST', 'body is not valid JSON'), undefined);
    }
    // Such a text could not be signed and stored as it is (protocol/frame.ts).
    if (holdsLoneSurrogate(value, text))
      return done(new HchatError('E_BAD_REQUEST', `body: ${LONE_SURROGATE}`), undefined);
    done(null, value);
  });

  // Another local user's connection is refused whatever it carries (a token can leak), and kept
  // for as little as can be: at most LOCAL_API_LIMITS.foreignConnections at once (past it one is
  // closed at once), each for at most foreignConnectionMs, its answer closing it; such
  // connections left open had taken every file descriptor of the peer (its own user then
  // refused, its P2P port too).
  const foreign = new WeakSet<Socket>();
  let foreignOpen = 0;
  app.server.on('connection', (socket: Socket) => {
    if (isThisUser(tcpPeerOwner(socket))) return;
    if (foreignOpen >= LOCAL_API_LIMITS.foreignConnections) return void socket.destroy();
    foreign.add(socket);
    foreignOpen++;
    const deadline = setTimeout(() => socket.destroy(), LOCAL_API_LIMITS.foreignConnectionMs);
    deadline.unref();
    socket.once('close', () => {
      clearTimeout(deadline);
      foreignOpen--;
    });
  });
  // Decided once, as the connection came: the owner of its other end does not change.
  app.addHook('onRequest', async (req, reply) => {
    if (foreign.has(req.raw.socket)) {
      void reply.header('connection', 'close');
      throw new HchatError(
        'E_FORBIDDEN',
        "this peer's local API answers only its own operating-system user",
      );
    }
  });
  app.addHook('onRequest', async (req) => checkOrigin(req, port()));
  lockApi(app, token);
  // A WebSocket upgrade refused by the checks above was answered over the bare socket, which the
  // HTTP server no longer tracks: close it, or it stays open (and holds `close()`) for ever.
  app.addHook('onResponse', async (req) => {
    if (req.raw.headers.upgrade !== undefined) req.raw.socket?.destroy();
  });

  app.setErrorHandler((err: unknown, req, reply) => {
    if (err instanceof HchatError) return sendError(reply, err);
    const e = err as { statusCode?: number; message?: string; code?: string };
    // A body of a type no route here reads (curl -d sends a form by default): what to send.
    if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      const type = req.headers['content-type'] ?? 'none';
      return sendError(
        reply,
        new HchatError(
          'E_BAD_REQUEST',
          `Content-Type ${type} is not taken by ${req.method} ${req.url.split('?')[0]}: ` +
            'send JSON with "Content-Type: application/json"',
        ),
      );
    }
    if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
      // A plugin's refusal (the static files' of a path leaving their folder: 403) under the
      // code PROTOCOL.md §7 pairs with its status.
      const code = FASTIFY_CODES[e.statusCode] ?? 'E_BAD_REQUEST';
      return reply
        .code(e.statusCode)
        .send({ error: { code, message: e.message ?? 'bad request' } });
    }
    // A request the peer's shutdown overtook (its stores closed under it) is no fault of ours.
    if (node.isClosed)
      return sendError(reply, new HchatError('E_SHUTTING_DOWN', 'this peer is shutting down'));
    console.error('hchat peer: API error:', err);
    return sendError(reply, new HchatError('E_INTERNAL'));
  });
  app.setNotFoundHandler((req, reply) =>
    sendError(
      reply,
      new HchatError('E_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`),
    ),
  );

  if (WEB_ROOT) {
    // The web UI, served from this peer alone (no CDN): works offline.
    void app.register(fastifyStatic, {
      root: WEB_ROOT,
      setHeaders: (res) => {
        res.setHeader('content-security-policy', CSP);
        res.setHeader('x-content-type-options', 'nosniff');
        res.setHeader('referrer-policy', 'no-referrer');
      },
    });
  } else {
    // Built without the UI (a bare `tsc`): say so rather than answer 404.
    app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').send(renderHome()));
  }

  // The document first: it is built from each route as the routes below are registered.
  documentApi(app);
  void app.register(async (api) => {
    sessionRoutes(api, node);
    messageRoutes(api, node);
    outboxRoutes(api, node);
    fileRoutes(api, node, node.maxFileBytes);
    avatarRoutes(api, node);
    channelRoutes(api, node);
    searchRoutes(api, node.search);
    dmRoutes(api, node.dms);
    tokenRoutes(api, node);
    streamRoutes(api, node);
  });
  return app;
}

function sendError(reply: FastifyReply, err: HchatError): FastifyReply {
  return reply.code(ERRORS[err.code].status).send({ error: err.toWire() });
}

const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** Refuses foreign Host headers (DNS rebinding) and cross-origin browser requests. */
function checkOrigin(req: FastifyRequest, port: number): void {
  const host = req.headers.host ?? '';
  const m = /^(.*?)(?::(\d+))?$/.exec(host.toLowerCase());
  if (!m || !LOCAL_HOSTS.has(m[1]!) || (m[2] !== undefined && Number(m[2]) !== port)) {
    throw new HchatError('E_BAD_HOST', `Host "${host.slice(0, 100)}" is not this peer`);
  }
  const origin = req.headers.origin;
  if (origin !== undefined && origin.toLowerCase() !== `http://${host.toLowerCase()}`) {
    throw new HchatError('E_BAD_ORIGIN', `Origin "${origin.slice(0, 100)}" is not this peer`);
  }
  if (req.headers['sec-fetch-site'] === 'cross-site') throw new HchatError('E_BAD_ORIGIN');
}
