/**
 * The local API's avatar routes (README "Avatars"): set yours (the picture's bytes as the body),
 * see who has one, and read one. Served like files: its own type, `nosniff`, a sandboxing CSP.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { AvatarType } from '../protocol/avatars.js';
import { Username } from '../protocol/common.js';
import { FILE_LIMITS } from '../shared/limits.js';
import type { PeerNode } from './node.js';
import { bodyBytes, parse, rawBodies } from './api-parse.js';
import { doc } from './api-doc.js';
import { Avatar } from './api-shapes.js';

const UserParam = z.object({ username: Username });
const ListQuery = z.object({
  users: z
    .string()
    .max(3400)
    .transform((s) => s.split(',').filter((u) => u !== ''))
    .pipe(
      z.array(Username).min(1, 'users: name 1 to 100 users').max(100, 'users: name 1 to 100 users'),
    ),
});

const AvatarHeaders = z.object({ 'content-type': AvatarType });

/** `v`: the version wanted (the `hash` an `avatar` event or list gave), asked of the server when not held here. */
const PictureQuery = z.object({ v: z.string().max(128).optional() });

/** Adds the avatar routes. */
export function avatarRoutes(app: FastifyInstance, node: PeerNode): void {
  void app.register(async (scope) => {
    rawBodies(scope, FILE_LIMITS.maxAvatarBytes, 'avatar: at most 256 KiB');
    scope.put(
      '/api/me/avatar',
      doc('Sets this user’s avatar: the body is the picture, PNG, JPEG or WebP, ≤ 256 KiB', {
        headers: AvatarHeaders,
        consumes: AvatarType.options,
        body: z.string(),
        response: { 200: Avatar },
      }),
      async (req) => {
        const type = parse(
          AvatarHeaders.shape['content-type'],
          req.headers['content-type'],
          'Content-Type',
        );
        return node.avatars.set(type, bodyBytes(req.body));
      },
    );
  });

  app.get(
    '/api/avatars',
    doc('Which of these users have an avatar (those without one are left out)', {
      querystring: ListQuery,
      response: { 200: z.array(Avatar) },
    }),
    async (req) => {
      const q = parse(ListQuery, req.query, 'query');
      return node.avatars.list(q.users);
    },
  );

  app.get(
    '/api/avatars/:username',
    doc('A user’s avatar, checked: its user’s signature', {
      params: UserParam,
      querystring: PictureQuery,
      response: {
        200: {
          description: 'The picture',
          content: Object.fromEntries(AvatarType.options.map((t) => [t, { schema: z.string() }])),
        },
      },
    }),
    async (req, reply) => {
      const { username } = parse(UserParam, req.params, 'user');
      const { v } = parse(PictureQuery, req.query, 'query');
      const a = await node.avatars.get(username, v);
      return reply
        .header('content-type', a.type)
        .header('x-content-type-options', 'nosniff')
        .header('content-security-policy', "sandbox; default-src 'none'")
        .header('cache-control', 'private, no-cache')
        .header('etag', `"${a.hash}"`)
        .send(a.data);
    },
  );
}
