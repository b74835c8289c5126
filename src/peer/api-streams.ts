/**
 * The local API's livestream routes (SPEC §8; README "Livestream API"): go live, list, stop,
 * watch, stats, export to a local tool as RTP, and the browser's media over WebSockets
 * (live-ws.ts).
 */
import type { FastifyInstance } from 'fastify';
import fastifyWebsocket from '@fastify/websocket';
import { z } from 'zod';
import { Uuid } from '../protocol/common.js';
import { StreamSource } from '../protocol/stream-ops.js';
import type { PeerNode } from './node.js';
import { parse } from './api-parse.js';
import { NO_CONTENT, described, doc, raw } from './api-doc.js';
import { Forwarded, NewStream, Stream, StreamStats, Watching } from './api-live-shapes.js';
import { MAX_PUBLISHED_FRAME, play, publish } from './live-ws.js';

const IdParam = z.object({ id: Uuid });
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

/** Whose stream to watch, when several users announce the same stream id (PROTOCOL.md §5.1). */
const WatchBody = z.object({ streamer: z.string().min(1).max(64).optional() });

/** The WebSocket routes: what each carries. */
const SOCKETS = [
  ['publish', publish, 'The streamer’s browser sends its WebCodecs chunks (WebSocket; live-ws.ts)'],
  [
    'play',
    play,
    'A viewer’s browser gets whole frames and stats, and asks for keyframes (WebSocket; live-ws.ts)',
  ],
] as const;

/** Adds the livestream routes. */
export function streamRoutes(app: FastifyInstance, node: PeerNode): void {
  app.post(
    '/api/channels/:id/streams',
    doc('Goes live in a channel', {
      params: IdParam,
      body: GoLiveBody,
      response: { 201: NewStream },
    }),
    async (req, reply) => {
      const { id } = parse(IdParam, req.params, 'channel id');
      const b = parse(GoLiveBody, req.body, 'stream');
      return reply.code(201).send(await node.live.goLive(id, b));
    },
  );
  app.get(
    '/api/streams',
    doc('The live streams this user may watch', { response: { 200: z.array(Stream) } }),
    async () => node.live.list(),
  );
  app.delete(
    '/api/streams/:streamId',
    doc('Ends one of this peer’s streams', {
      params: StreamParam,
      response: { 204: NO_CONTENT },
    }),
    async (req, reply) => {
      const { streamId } = parse(StreamParam, req.params, 'stream id');
      await node.live.stop(streamId);
      return reply.code(204).send();
    },
  );
  app.post(
    '/api/streams/:streamId/watch',
    doc('Starts watching: joins the stream’s relay tree', {
      params: StreamParam,
      body: WatchBody,
      response: { 200: Watching },
    }),
    async (req) => {
      const { streamId } = parse(StreamParam, req.params, 'stream id');
      const { streamer } = parse(WatchBody, req.body ?? {}, 'watch');
      return node.live.watch(streamId, streamer);
    },
  );
  app.delete(
    '/api/streams/:streamId/watch',
    doc('Stops watching', { params: StreamParam, response: { 204: NO_CONTENT } }),
    async (req, reply) => {
      const { streamId } = parse(StreamParam, req.params, 'stream id');
      await node.live.unwatch(streamId);
      return reply.code(204).send();
    },
  );
  app.get(
    '/api/streams/:streamId/stats',
    doc('A stream’s stats, as its streamer or as a viewer', {
      params: StreamParam,
      response: { 200: StreamStats },
    }),
    async (req) => {
      const { streamId } = parse(StreamParam, req.params, 'stream id');
      return node.live.stats(streamId);
    },
  );
  app.post(
    '/api/streams/:streamId/forward',
    doc('Sends the stream as RTP (or SRTP) to a tool on this machine', {
      params: StreamParam,
      body: ForwardBody,
      response: { 200: Forwarded },
    }),
    async (req) => {
      const { streamId } = parse(StreamParam, req.params, 'stream id');
      const b = parse(ForwardBody, req.body, 'forward');
      return node.live.forward(streamId, b.host, b.port, b.srtp);
    },
  );
  // The browser's media: WebCodecs chunks in (publish), whole frames out (play); see live-ws.ts.
  void app.register(fastifyWebsocket, { options: { maxPayload: MAX_PUBLISHED_FRAME } });
  void app.register(async (scope) => {
    for (const [route, handler, summary] of SOCKETS) {
      // `wsHandler` rather than `websocket: true`, which would hide the route from the document;
      // a request that is no upgrade gets the same bare 404 as there.
      scope.route({
        method: 'GET',
        url: `/api/streams/:streamId/${route}`,
        ...doc(summary, {
          params: StreamParam,
          response: {
            101: described(z.null(), 'Switching to the WebSocket protocol'),
            404: described(z.null(), 'Not a WebSocket upgrade: no body'),
          },
        }),
        wsHandler: (socket, req) => {
          const p = StreamParam.safeParse(req.params);
          if (!p.success) return socket.close(1008, 'E_BAD_REQUEST');
          handler(node.live, p.data.streamId, socket);
        },
        handler: (_req, reply) => reply.code(404).send(),
      });
    }
  });
  app.get(
    '/api/streams/:streamId/sdp',
    doc('The SDP of the stream’s newest export (or of one to `port`)', {
      params: StreamParam,
      querystring: SdpQuery,
      response: { 200: raw('application/sdp', 'The session description') },
    }),
    async (req, reply) => {
      const { streamId } = parse(StreamParam, req.params, 'stream id');
      const q = parse(SdpQuery, req.query, 'query');
      return reply.type('application/sdp').send(node.live.sdp(streamId, q.port));
    },
  );
}
