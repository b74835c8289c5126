/**
 * The local API's file routes (README "Files"): attach a file to a channel (the raw bytes as the
 * body), fetch one in the background, ask how much of it is here, and read it. A file is served
 * so that it can never run script in the app's origin: its own type, `nosniff`, a sandboxing
 * CSP, and `attachment` for everything but plain raster images.
 */
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { HchatError } from '../protocol/errors.js';
import { MimeType, Preview, Uuid } from '../protocol/common.js';
import { FileId } from '../protocol/files.js';
import { humanBytes } from '../shared/file-id.js';
import { FILE_LIMITS } from '../shared/limits.js';
import type { PeerNode } from './node.js';
import { bodyBytes, parse, rawBodies } from './api-parse.js';
import { doc, raw } from './api-doc.js';
import { ApiFile, FileStatus } from './api-shapes.js';

const IdParam = z.object({ id: Uuid });
const FileParam = z.object({ id: Uuid, fileId: FileId });
const Side = z.coerce.number().int().min(1).max(65535);
const UploadQuery = z
  .object({
    name: z
      .string()
      .min(1, 'name: must not be empty')
      .max(FILE_LIMITS.maxNameChars, `name: at most ${FILE_LIMITS.maxNameChars} characters`),
    width: Side.optional(),
    height: Side.optional(),
  })
  .refine(
    (q) => (q.width === undefined) === (q.height === undefined),
    'width and height: both or neither',
  );
const ReadQuery = z.object({ download: z.enum(['0', '1']).optional() });
/** The upload's headers: the file's type, and an image's preview (with width and height). */
const UploadHeaders = z.object({
  'content-type': MimeType.default('application/octet-stream'),
  'x-preview': Preview.optional(),
});

/** Types a browser shows inline without running anything. */
const INLINE = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);
/** What a served file may do in the browser: nothing but show itself. */
const FILE_CSP = "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'";

/** Adds the file routes. */
export function fileRoutes(app: FastifyInstance, node: PeerNode, maxFileBytes: number): void {
  // The upload's body is the file itself.
  void app.register(async (scope) => {
    rawBodies(scope, maxFileBytes, `files are at most ${humanBytes(maxFileBytes)}`);
    scope.post(
      '/api/channels/:id/files',
      {
        bodyLimit: maxFileBytes,
        ...doc('Attaches a file to a channel: the body is its bytes, typed as the file is', {
          params: IdParam,
          querystring: UploadQuery,
          headers: UploadHeaders,
          consumes: ['*/*'],
          body: z.string(),
          response: { 201: ApiFile },
        }),
      },
      async (req, reply) => {
        const { id } = parse(IdParam, req.params, 'channel id');
        const q = parse(UploadQuery, req.query, 'query');
        const type = parse(
          UploadHeaders.shape['content-type'],
          req.headers['content-type'],
          'Content-Type',
        );
        const rawPreview = req.headers['x-preview'];
        const preview =
          rawPreview === undefined
            ? undefined
            : parse(UploadHeaders.shape['x-preview'], rawPreview, 'X-Preview');
        if (preview !== undefined && q.width === undefined)
          throw new HchatError('E_BAD_REQUEST', 'X-Preview: only with width and height');
        const file = node.files.upload(id, bodyBytes(req.body), {
          name: q.name,
          type,
          ...(q.width !== undefined
            ? { image: { width: q.width, height: q.height!, ...(preview ? { preview } : {}) } }
            : {}),
        });
        return reply.code(201).send(file);
      },
    );
  });

  app.post(
    '/api/channels/:id/files/:fileId/fetch',
    doc('Fetches a file in the background (its progress: events `file`)', {
      params: FileParam,
      response: { 202: FileStatus },
    }),
    async (req, reply) => {
      const p = readable(node, parse(FileParam, req.params, 'file'));
      void node.files.fetch(p.id, p.fileId).catch(() => undefined); // progress: events `file`
      return reply.code(202).send(status(node, p));
    },
  );

  app.get(
    '/api/channels/:id/files/:fileId/status',
    doc('How much of a file is here', { params: FileParam, response: { 200: FileStatus } }),
    async (req) => status(node, readable(node, parse(FileParam, req.params, 'file'))),
  );

  app.get(
    '/api/channels/:id/files/:fileId',
    doc('A file’s bytes, sent as they arrive (fetched first when not all here)', {
      params: FileParam,
      querystring: ReadQuery,
      response: {
        200: raw('*/*', 'The file, typed as it is; `attachment` but for raster images'),
      },
    }),
    async (req, reply) => {
      const p = readable(node, parse(FileParam, req.params, 'file'));
      const q = parse(ReadQuery, req.query, 'query');
      // Sent as it arrives: the first bytes go while the rest is still being fetched.
      const { manifest: m, chunks } = await node.files.open(p.id, p.fileId);
      const inline = INLINE.has(m.type.split(';')[0]!.trim().toLowerCase()) && q.download !== '1';
      const ascii = m.name.replace(/[^\x20-\x7e]|["\\]/g, '_');
      reply
        .header('content-type', m.type)
        .header('content-length', m.size)
        .header('x-content-type-options', 'nosniff')
        .header('content-security-policy', FILE_CSP)
        .header('cache-control', 'private, max-age=31536000, immutable')
        .header(
          'content-disposition',
          `${inline ? 'inline' : 'attachment'}; filename="${ascii}"; filename*=UTF-8''${rfc5987(m.name)}`,
        );
      return reply.send(Readable.from(chunks));
    },
  );
}

/** A value as RFC 5987 wants it: percent-encoded UTF-8, `'()*` included. */
function rfc5987(value: string): string {
  return encodeURIComponent(value).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** The channel must be one this peer's user reads. */
function readable<T extends { id: string }>(node: PeerNode, p: T): T {
  if (!node.readsChannel(p.id)) throw new HchatError('E_NOT_MEMBER');
  return p;
}

/** What is here of the file (before its manifest came: only that nothing is). */
function status(node: PeerNode, p: { id: string; fileId: string }): FileStatus {
  const ref = node.files.localRef(p.id, p.fileId);
  if (ref) return node.files.view(p.id, ref);
  const url = `/api/channels/${p.id}/files/${p.fileId}`;
  return { id: p.fileId, channelId: p.id, url, state: 'missing', have: 0 };
}
