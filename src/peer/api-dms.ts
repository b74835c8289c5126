/**
 * The local API's direct-message routes (README "Direct messages"): conversations, their
 * messages, read marks, safety numbers and verification, and the block list. Visitors get
 * 403 on every one (dms.ts).
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { MessageText, Username, Uuid } from '../protocol/common.js';
import { DM_LIMITS } from '../shared/limits.js';
import type { DirectMessages } from './dms.js';
import { parse } from './api-parse.js';

const IdParam = z.object({ id: Uuid });
const UserParam = z.object({ username: Username });
const StartBody = z.object({
  members: z
    .array(Username)
    .min(1, 'members: name at least one other user')
    .max(DM_LIMITS.maxMembers - 1, `members: at most ${DM_LIMITS.maxMembers - 1} others`),
});
const PageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(50),
  before: Uuid.optional(),
});
const PostBody = z.object({ text: MessageText });
const VerifyBody = z.object({ username: Username, verified: z.boolean() });

/** Adds the direct-message routes. */
export function dmRoutes(app: FastifyInstance, dms: DirectMessages): void {
  app.get('/api/dms', async () => dms.list());
  app.post('/api/dms', async (req, reply) => {
    const b = parse(StartBody, req.body, 'dm');
    const { dm, created } = await dms.start(b.members);
    return reply.code(created ? 201 : 200).send(dm);
  });
  app.get('/api/dms/:id', async (req) => dms.get(parse(IdParam, req.params, 'dm id').id));
  app.get('/api/dms/:id/messages', async (req) => {
    const { id } = parse(IdParam, req.params, 'dm id');
    const q = parse(PageQuery, req.query, 'query');
    return dms.messages(id, q.limit, q.before);
  });
  app.post('/api/dms/:id/messages', async (req, reply) => {
    const { id } = parse(IdParam, req.params, 'dm id');
    const b = parse(PostBody, req.body, 'message');
    return reply.code(201).send(await dms.post(id, b.text));
  });
  app.post('/api/dms/:id/read', async (req, reply) => {
    dms.read(parse(IdParam, req.params, 'dm id').id);
    return reply.code(204).send();
  });
  app.get('/api/dms/:id/safety', async (req) => dms.safety(parse(IdParam, req.params, 'dm id').id));
  app.put('/api/dms/:id/safety', async (req) => {
    const { id } = parse(IdParam, req.params, 'dm id');
    const b = parse(VerifyBody, req.body, 'safety');
    return dms.setVerified(id, b.username, b.verified);
  });
  app.get('/api/blocks', async () => dms.blocks());
  app.put('/api/blocks/:username', async (req) =>
    dms.block(parse(UserParam, req.params, 'user').username, true),
  );
  app.delete('/api/blocks/:username', async (req) =>
    dms.block(parse(UserParam, req.params, 'user').username, false),
  );
}
