/**
 * The local API's OpenAPI 3.1 document (issue 17; docs/local-api.openapi.json), generated from
 * the zod schemas each route declares, the very ones its handler validates with through
 * `parse()` (api-parse.ts), which names what was wrong in its own words (README "Local API").
 * Fastify itself validates nothing here: its validator passes every request through to the
 * handler. Served at `GET /api/openapi.json`, behind the API token like every `/api` route, made
 * when first read (openapi-later.ts).
 */
import type { FastifyInstance } from 'fastify';
import {
  createJsonSchemaTransform,
  createJsonSchemaTransformObject,
} from 'fastify-type-provider-zod';
import { z } from 'zod';
import { PROTOCOL_VERSION } from '../protocol/common.js';
import { documentLater } from '../shared/openapi-later.js';

/**
 * The named schemas of the local API: its own registry, not zod's global one, so that its
 * components never mix with the REST API's (both are in one process in tests and `hchat demo`).
 */
export const localApiSchemas = z.registry<{ id?: string; description?: string }>();

/** `schema`, named `id` among the document's components. */
export function named<T extends z.ZodType>(id: string, schema: T, description?: string): T {
  localApiSchemas.add(schema, description === undefined ? { id } : { id, description });
  return schema;
}

/** Every refusal: a code of the catalogue (docs/PROTOCOL.md §7) and why. */
export const ApiErrorBody = named(
  'Error',
  z.object({ error: z.object({ code: z.string(), message: z.string() }) }),
  'A refusal: `code` from the error catalogue (docs/PROTOCOL.md §7), `message` says why',
);

/** The error answers every route may give: the status is the code's (docs/PROTOCOL.md §7). */
const REFUSALS = {
  '4xx': json(ApiErrorBody, 'Refused: the error’s code says why'),
  '5xx': json(ApiErrorBody, 'Failed here, or at the server or peer this call needed'),
};

/** What each status of an answer means, in the document. */
const MEANING: Record<number, string> = {
  200: 'Done',
  201: 'Made',
  202: 'Accepted: under way',
};

/** A JSON answer of `schema`, described. */
function json(schema: z.ZodType, description: string) {
  return { description, content: { 'application/json': { schema } } };
}

/** `schema`, with a description in the document. */
export function described<T extends z.ZodType>(schema: T, description: string): T {
  localApiSchemas.add(schema, { description });
  return schema;
}

/** An answer with no body (its type `null` tells the document so). */
export const NO_CONTENT = described(z.null(), 'Done: no body');

/** A body that is not JSON, of type `type`, described by `description`. */
export function raw(type: string, description: string) {
  return { description, content: { [type]: { schema: z.string() } } };
}

/** Where the document is served. */
export const OPENAPI_ROUTE = '/api/openapi.json';

/**
 * Documents `app`'s routes: call before any route is added (the document is built from each
 * route as it is registered), then register the routes in a plugin.
 */
export function documentApi(app: FastifyInstance): void {
  // Requests are validated by each handler's `parse()`, against the same schemas.
  app.setValidatorCompiler(() => () => true);
  // Answers are sent as built (test/local-openapi.test.ts checks them against the document).
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  const docs = documentLater(app, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Hybrid Chat local API',
        version: `protocol ${PROTOCOL_VERSION}`,
        description:
          'The API of one peer on 127.0.0.1, which its web UI uses (README "Local API", SPEC §10). ' +
          'Every /api route needs the peer’s API token: `Authorization: Bearer <token>`, or, on a ' +
          'GET only, a URL key made from it (`?key=<expiry>.<HMAC-SHA256(token, "hchat url key v1 " + expiry)>`, ' +
          'at most 12 hours ahead), for what a browser loads by address. No cookie opens anything.',
      },
      servers: [{ url: '/', description: 'the peer that serves this document' }],
      components: {
        securitySchemes: {
          token: { type: 'http', scheme: 'bearer' },
          urlKey: { type: 'apiKey', in: 'query', name: 'key' },
        },
      },
      security: [{ token: [] }, { urlKey: [] }],
    },
    transform: createJsonSchemaTransform({ schemaRegistry: localApiSchemas }),
    transformObject: createJsonSchemaTransformObject({ schemaRegistry: localApiSchemas }),
  });
  let document: OpenApiDocument | undefined;
  app.get(
    OPENAPI_ROUTE,
    { schema: { hide: true } },
    async () => (document ??= usedOnly((await docs()).swagger() as OpenApiDocument)),
  );
}

/** What this file reads of a document. */
type OpenApiDocument = { components?: { schemas?: Record<string, unknown> } };

/**
 * The document without the components no route refers to: the zod transform makes an input and
 * an output component of every named schema, and most are only ever one of the two.
 */
function usedOnly(doc: OpenApiDocument): OpenApiDocument {
  const all = doc.components?.schemas ?? {};
  const used = new Set<string>();
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) return value.forEach(visit);
    if (value === null || typeof value !== 'object') return;
    for (const [key, child] of Object.entries(value)) {
      const name =
        key === '$ref' && typeof child === 'string'
          ? /^#\/components\/schemas\/(.+)$/.exec(child)?.[1]
          : undefined;
      if (name === undefined) visit(child);
      else if (!used.has(name)) {
        used.add(name);
        visit(all[name]);
      }
    }
  };
  visit({ ...doc, components: { ...doc.components, schemas: {} } });
  const schemas = Object.fromEntries(Object.entries(all).filter(([name]) => used.has(name)));
  return { ...doc, components: { ...doc.components, schemas } };
}

/** What a route declares of itself: its parts' schemas and its answers but the refusals. */
interface RouteDoc {
  params?: z.ZodType;
  querystring?: z.ZodType;
  headers?: z.ZodType;
  body?: z.ZodType;
  consumes?: string[];
  description?: string;
  response: Record<number, unknown>;
}

/**
 * A route's options: `summary`, its schemas, and its answers (a zod schema is a JSON one) with
 * the refusals every route has.
 */
export function doc(summary: string, d: RouteDoc) {
  const response: Record<string, unknown> = {};
  for (const [status, answer] of Object.entries(d.response)) {
    const isJson = answer instanceof z.ZodType && !(answer instanceof z.ZodNull);
    response[status] = isJson ? json(answer, MEANING[Number(status)] ?? 'Answer') : answer;
  }
  return { schema: { summary, ...d, response: { ...response, ...REFUSALS } } };
}
