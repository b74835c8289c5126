/**
 * The peer's local JSON API (SPEC §10) and its page, on 127.0.0.1 only. Every request must name
 * this peer in its Host header (no DNS rebinding) and, when a browser sends an Origin, come from
 * this same origin (no cross-site requests). Errors answer `{"error":{"code","message"}}`.
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ERRORS, HchatError } from '../protocol/errors.js';
import { ChannelName, Password, Status, Username, Uuid, VisitorName } from '../protocol/common.js';
import { StreamSource } from '../protocol/stream-ops.js';
import type { PeerNode } from './node.js';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import fastifyWebsocket from '@fastify/websocket';
import { MAX_PUBLISHED_FRAME, play, publish } from './live-ws.js';
import { renderHome } from './home-page.js';
import { lockApi } from './api-auth.js';
import { EventStreams } from './event-stream.js';
import { parse } from './api-parse.js';
import { messageRoutes } from './api-messages.js';
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

const Creds = z.object({ username: Username, password: Password });
const VisitorBody = z.object({ name: VisitorName });
const StatusBody = z.object({ status: Status });
const ChannelBody = z.object({ name: ChannelName, allowVisitors: z.boolean().default(false) });
const IdParam = z.object({ id: Uuid });
const EventsQuery = z.object({ since: z.coerce.number().int().min(0).optional() });
const GoLiveBody = z.object({
  source: StreamSource,
  fps: z.number().int().min(1).max(60).default(30),
  bitrateKbps: z.number().int().min(16).max(20_000).default(1000),
  /** `rtp` source: take SRTP, under the key the answer gives (`srtp.key`). */
  srtp: z.boolean().default(false),
});
const StreamParam = z.object({ streamId: Uuid });
const SdpQuery = z.object({ port: z.coerce.number().int().min(1024).max(65533).optional() });
/** Export goes to local tools only: the API must not aim UDP at other hosts. */
const ForwardBody = z.object({
  host: z.enum(['127.0.0.1', 'localhost']).transform(() => '127.0.0.1'),
  port: z.number().int().min(1024).max(65533),
  /** SRTP instead of plain RTP; the keys are in the SDP of the answer. */
  srtp: z.boolean().default(false),
});

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
    try {
      done(null, JSON.parse(text));
    } catch {
      done(new HchatError('E_BAD_REQUEST', 'body is not valid JSON'), undefined);
    }
  });

  app.addHook('onRequest', async (req) => checkOrigin(req, port()));
  lockApi(app, token, port);
  // A WebSocket upgrade refused by the checks above was answered over the bare socket, which the
  // HTTP server no longer tracks: close it, or it stays open (and holds `close()`) for ever.
  app.addHook('onResponse', async (req) => {
    if (req.raw.headers.upgrade !== undefined) req.raw.socket?.destroy();
  });

  app.setErrorHandler((err: unknown, _req, reply) => {
    if (err instanceof HchatError) return sendError(reply, err);
    const e = err as { statusCode?: number; message?: string };
    if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
      return reply
        .code(e.statusCode)
        .send({ error: { code: 'E_BAD_REQUEST', message: e.message ?? 'bad request' } });
    }
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

  app.post('/api/register', async (req, reply) => {
    const b = parse(Creds, req.body, 'register');
    return reply.code(201).send(await node.register(b.username, b.password));
  });
  app.post('/api/login', async (req) => {
    const b = parse(Creds, req.body, 'login');
    return node.login(b.username, b.password);
  });
  app.post('/api/visitor', async (req) => {
    const b = parse(VisitorBody, req.body, 'visitor');
    return node.visitor(b.name);
  });
  app.post('/api/logout', async (_req, reply) => {
    await node.logout();
    return reply.code(204).send();
  });
  app.get('/api/me', async () => node.me());
  // For the web UI's start: who is logged in, without a 401 when nobody is.
  app.get('/api/session', async () => ({ me: node.session ? node.me() : null }));
  app.put('/api/status', async (req) => {
    const b = parse(StatusBody, req.body, 'status');
    return node.setStatus(b.status);
  });
  app.get('/api/peers', async () => node.peers());
  app.get('/api/directory', async () => node.directory());
  app.get('/api/channels', async () => node.channels());
  app.post('/api/channels', async (req, reply) => {
    const b = parse(ChannelBody, req.body, 'channel');
    return reply.code(201).send(await node.createChannel(b.name, b.allowVisitors));
  });
  app.post('/api/channels/:id/join', async (req) => {
    const { id } = parse(IdParam, req.params, 'channel id');
    return node.join(id);
  });
  messageRoutes(app, node);
  fileRoutes(app, node, node.maxFileBytes);
  avatarRoutes(app, node);
  channelRoutes(app, node);
  searchRoutes(app, node.search);
  dmRoutes(app, node.dms);
  tokenRoutes(app, node);
  app.post('/api/channels/:id/typing', async (req, reply) => {
    const { id } = parse(IdParam, req.params, 'channel id');
    await node.typing.send(id);
    return reply.code(204).send();
  });
  app.get('/api/channels/:id/members', async (req) => {
    const { id } = parse(IdParam, req.params, 'channel id');
    return node.members(id);
  });
  app.post('/api/channels/:id/read', async (req, reply) => {
    const { id } = parse(IdParam, req.params, 'channel id');
    node.markRead(id);
    return reply.code(204).send();
  });
  const streams = new EventStreams(node.events);
  app.get('/api/events', async (req, reply) => {
    const q = parse(EventsQuery, req.query, 'query');
    const lastHeader = Number(req.headers['last-event-id']);
    streams.serve(req, reply, q.since ?? (Number.isInteger(lastHeader) ? lastHeader : undefined));
  });

  // Livestreams (SPEC §8; README "Livestream API").
  app.post('/api/channels/:id/streams', async (req, reply) => {
    const { id } = parse(IdParam, req.params, 'channel id');
    const b = parse(GoLiveBody, req.body, 'stream');
    return reply.code(201).send(await node.live.goLive(id, b));
  });
  app.get('/api/streams', async () => node.live.list());
  app.delete('/api/streams/:streamId', async (req, reply) => {
    const { streamId } = parse(StreamParam, req.params, 'stream id');
    await node.live.stop(streamId);
    return reply.code(204).send();
  });
  app.post('/api/streams/:streamId/watch', async (req) => {
    const { streamId } = parse(StreamParam, req.params, 'stream id');
    return node.live.watch(streamId);
  });
  app.delete('/api/streams/:streamId/watch', async (req, reply) => {
    const { streamId } = parse(StreamParam, req.params, 'stream id');
    await node.live.unwatch(streamId);
    return reply.code(204).send();
  });
  app.get('/api/streams/:streamId/stats', async (req) => {
    const { streamId } = parse(StreamParam, req.params, 'stream id');
    return node.live.stats(streamId);
  });
  app.post('/api/streams/:streamId/forward', async (req) => {
    const { streamId } = parse(StreamParam, req.params, 'stream id');
    const b = parse(ForwardBody, req.body, 'forward');
    return node.live.forward(streamId, b.host, b.port, b.srtp);
  });
  // The browser's media: WebCodecs chunks in (publish), whole frames out (play); see live-ws.ts.
  void app.register(fastifyWebsocket, { options: { maxPayload: MAX_PUBLISHED_FRAME } });
  void app.register(async (scope) => {
    for (const [route, handler] of [
      ['publish', publish],
      ['play', play],
    ] as const) {
      scope.get(`/api/streams/:streamId/${route}`, { websocket: true }, (socket, req) => {
        const p = StreamParam.safeParse(req.params);
        if (!p.success) return socket.close(1008, 'E_BAD_REQUEST');
        handler(node.live, p.data.streamId, socket);
      });
    }
  });
  app.get('/api/streams/:streamId/sdp', async (req, reply) => {
    const { streamId } = parse(StreamParam, req.params, 'stream id');
    const q = parse(SdpQuery, req.query, 'query');
    return reply.type('application/sdp').send(node.live.sdp(streamId, q.port));
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
