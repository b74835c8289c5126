/** Validation of what the local API reads: a bad request names what was wrong. */
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { z } from 'zod';
import { HchatError } from '../protocol/errors.js';
import { describeIssues } from '../protocol/server-link.js';

/** `value` as `schema` reads it, or E_BAD_REQUEST naming `what` and every problem. */
export function parse<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value ?? {});
  if (!r.success) throw new HchatError('E_BAD_REQUEST', `${what}: ${describeIssues(r.error)}`);
  return r.data;
}

/**
 * Makes every body of `scope`'s routes the raw bytes sent, whatever their type (a JSON file stays
 * bytes), at most `limit` of them; more is `tooLarge` (E_FILE_TOO_LARGE, naming the limit).
 */
export function rawBodies(scope: FastifyInstance, limit: number, tooLarge: string): void {
  scope.removeAllContentTypeParsers();
  scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: limit }, (_req, body, done) =>
    done(null, body),
  );
  scope.setErrorHandler((err: { code?: string }, req, reply) => {
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      // Fastify answers this with `Connection: close` and closes at once; a client still sending
      // the body (a browser uploading a file that is too large) then meets a broken connection
      // instead of the answer. Keep the connection, and read what is still coming and drop it.
      reply.removeHeader('connection');
      discardRest(req.raw);
      throw new HchatError('E_FILE_TOO_LARGE', tooLarge);
    }
    throw err;
  });
}

/** How long a refused body may still be coming before its connection is closed. */
const DISCARD_MS = 30_000;

/** Reads the rest of a refused request and drops it, for at most DISCARD_MS. */
function discardRest(raw: IncomingMessage): void {
  if (raw.complete) return;
  const timer = setTimeout(() => raw.socket?.destroy(), DISCARD_MS);
  timer.unref();
  const stop = () => clearTimeout(timer);
  raw.once('end', stop);
  raw.once('close', stop);
  raw.resume();
}

/** A raw body (rawBodies) as bytes: none is empty. */
export function bodyBytes(body: unknown): Buffer {
  return Buffer.isBuffer(body) ? body : Buffer.alloc(0);
}
