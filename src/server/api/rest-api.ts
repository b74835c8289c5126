/**
 * The public REST API v1 on the server's HTTP port (issue 17; docs/REST.md): bearer tokens,
 * per-token rate limits with `RateLimit-*` headers, the routes (rest-routes.ts) and their
 * OpenAPI 3.1 document, generated from the same zod schemas the routes validate with, served at
 * `/api/v1/openapi.json` with a reference page at `/api/v1/docs` (bundled, no CDN). Errors answer
 * `{"error":{"code","message"}}` with the wire protocol's codes and their HTTP statuses.
 */
import type http from 'node:http';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import fastifyWebsocket from '@fastify/websocket';
import {
  hasZodFastifySchemaValidationErrors,
  jsonSchemaTransform,
  jsonSchemaTransformObject,
  validatorCompiler,
} from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import { ERRORS, HchatError } from '../../protocol/errors.js';
import { LONE_SURROGATE, holdsLoneSurrogate } from '../../protocol/frame.js';
import { PROTOCOL_VERSION } from '../../protocol/common.js';
import { API_LIMITS } from '../../shared/limits.js';
import { RateLimiter } from '../../shared/rate-limit.js';
import { documentLater } from '../../shared/openapi-later.js';
import type { ApiTokenRecord } from '../../store/api-token-store.js';
import type { BadTokenThrottle } from './bad-tokens.js';
import { restRoutes, type RestRouteDeps } from './rest-routes.js';

/** The prefix of every route of this version. */
export const API_PREFIX = '/api/v1';

declare module 'fastify' {
  interface FastifyRequest {
    /** The live token of the call (set by the auth hook on every route but the document's). */
    token?: ApiTokenRecord;
  }
  interface FastifyContextConfig {
    /** What the route needs of its token: reading, or writing too. Absent: no token needed. */
    scope?: 'read' | 'write';
  }
}

/** What the REST API needs from its server. */
export interface RestApiDeps extends RestRouteDeps {
  opsLog: Logger;
  /** Failed tokens per address group: a spent budget answers 429 before the store is read. */
  badTokens: BadTokenThrottle;
  rate?: number;
  burst?: number;
}

/**
 * Builds the API on `server` (the HTTP port's server, which hands it `/api/v1` requests):
 * resolves with the request handler once every route is ready.
 */
export async function createRestApi(
  server: http.Server,
  d: RestApiDeps,
): Promise<{ app: FastifyInstance; handle: http.RequestListener }> {
  let handle: http.RequestListener | undefined;
  const app = Fastify({
    bodyLimit: API_LIMITS.maxBodyBytes,
    // The HTTP port's server is made elsewhere; fastify routes what it is handed.
    serverFactory: (handler) => {
      handle = handler;
      return server;
    },
    logger: false,
    // Errors fastify meets before any route (an over-long parameter, a bad %-escape) answer in
    // the API's own shape, as every other refusal does.
    frameworkErrors: (err, _req, reply) => {
      const e = new HchatError('E_BAD_REQUEST', `the request's path: ${err.message}`);
      void (reply as FastifyReply).code(400).send({ error: e.toWire() });
    },
  });
  app.setValidatorCompiler(validatorCompiler);
  // Answers are built from validated data and sent as they are (the contract tests check them).
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));

  const limiter = new RateLimiter(d.rate ?? API_LIMITS.tokenRate, d.burst ?? API_LIMITS.tokenBurst);
  const burst = d.burst ?? API_LIMITS.tokenBurst;

  app.setErrorHandler((err, req, reply) => {
    const e = toHchatError(err, req);
    if (e.code === 'E_INTERNAL') d.opsLog.error({ err, route: req.url }, 'REST call failed');
    if (ERRORS[e.code].status === 429 && e.retryAfterMs !== undefined)
      void reply.header('retry-after', Math.ceil(e.retryAfterMs / 1000));
    return reply.code(ERRORS[e.code].status).send({ error: e.toWire() });
  });
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({
      error: { code: 'E_NOT_FOUND', message: `no route ${req.method} ${req.url.split('?')[0]}` },
    }),
  );

  // First: its own request hook marks upgrades, so that a refused one (a bad token, below) has
  // its socket closed after the answer rather than left open.
  await app.register(fastifyWebsocket, { options: { maxPayload: 4096 } });

  // Every route that names a scope needs a live token with it; the call then counts against the
  // token's budget, told in the RateLimit-* headers of every answer. An address group that sent
  // too many bad tokens is refused before its token is read (bad-tokens.ts).
  app.addHook('onRequest', async (req, reply) => {
    const scope = req.routeOptions.config.scope;
    if (scope === undefined) return;
    const token = await d.badTokens.guard(req.socket.remoteAddress ?? '?', () =>
      d.tokens.authenticate(req.headers.authorization),
    );
    const wait = limiter.take(token.id);
    void reply.header('ratelimit-limit', burst);
    void reply.header('ratelimit-remaining', limiter.left(token.id));
    void reply.header('ratelimit-reset', limiter.secondsToFull(token.id));
    if (wait > 0) throw HchatError.rateLimited('too many requests with this token', wait);
    if (!token.scopes.includes(scope))
      throw new HchatError('E_TOKEN_SCOPE', `this token has no ${scope} scope`);
    req.token = token;
  });

  // A body's strings must be Unicode text, as a frame's must (PROTOCOL.md §1): a lone surrogate
  // could not be signed and stored as it is.
  app.addHook('preValidation', async (req) => {
    if (holdsLoneSurrogate(req.body))
      throw new HchatError('E_BAD_REQUEST', `body: ${LONE_SURROGATE}`);
  });

  // The document and its pages are made when first asked for (openapi-later.ts).
  const docs = documentLater(
    app,
    {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'Hybrid Chat REST API',
          version: `1 (protocol ${PROTOCOL_VERSION})`,
          description:
            'Bots and integrations: users, channels, messages and presence with scoped tokens. ' +
            'Messages are signed by their author (docs/PROTOCOL.md §2.1).',
        },
        servers: [{ url: '/', description: 'the server that serves this document' }],
        components: {
          securitySchemes: { token: { type: 'http', scheme: 'bearer' } },
        },
        security: [{ token: [] }],
      },
      transform: jsonSchemaTransform,
      transformObject: jsonSchemaTransformObject,
    },
    async (instance) => {
      const { default: swaggerUi } = await import('@fastify/swagger-ui');
      await instance.register(swaggerUi, { routePrefix: `${API_PREFIX}/docs` });
    },
  );
  await app.register(restRoutes(d), { prefix: API_PREFIX });
  app.get(`${API_PREFIX}/openapi.json`, { schema: { hide: true } }, async () =>
    (await docs()).swagger(),
  );
  // swagger-ui's pages, answered by the document's instance.
  const page = async (req: FastifyRequest, reply: FastifyReply) => {
    const res = await (
      await docs()
    ).inject({
      method: 'GET', // a HEAD's answer is the GET's, sent without its body
      url: req.url,
      headers: { accept: req.headers.accept ?? '*/*' },
    });
    const {
      'content-length': _length,
      'transfer-encoding': _te,
      connection: _c,
      ...headers
    } = res.headers;
    // Not one of its pages (a path that left /docs with `..`, say): refused as any unknown route.
    if (res.statusCode === 404) return reply.callNotFound();
    return reply.code(res.statusCode).headers(headers).send(res.rawPayload);
  };
  app.get(`${API_PREFIX}/docs`, { schema: { hide: true } }, page);
  app.get(`${API_PREFIX}/docs/*`, { schema: { hide: true } }, page);
  await app.ready();
  return { app, handle: handle! };
}

/** The HchatError an error of a call stands for. */
function toHchatError(err: unknown, req: FastifyRequest): HchatError {
  if (err instanceof HchatError) return err;
  if (hasZodFastifySchemaValidationErrors(err)) {
    const where = err.validationContext ?? 'request';
    const why = err.validation
      .slice(0, 3)
      .map((v) => `${v.instancePath.replace(/^\//, '').replace(/\//g, '.') || where}: ${v.message}`)
      .join('; ');
    return new HchatError('E_BAD_REQUEST', `${req.method} ${req.routeOptions.url}: ${why}`);
  }
  const code = (err as { code?: unknown }).code;
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE')
    return new HchatError(
      'E_FRAME_TOO_LARGE',
      `the request body exceeds ${API_LIMITS.maxBodyBytes} bytes`,
    );
  if (typeof code === 'string' && code.startsWith('FST_ERR_CTP'))
    return new HchatError('E_BAD_REQUEST', (err as Error).message);
  if ((err as { statusCode?: number }).statusCode === 400)
    return new HchatError('E_BAD_REQUEST', (err as Error).message);
  return new HchatError('E_INTERNAL');
}
