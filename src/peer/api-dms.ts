/**
 * The local API's direct-message routes (README "Direct messages"): conversations, their
 * messages, read marks, safety numbers and verification, and the block list. Visitors get
 * 403 on every one (dms.ts).
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { Emoji, MessageText, Username, Uuid } from '../protocol/common.js';
import { DM_LIMITS } from '../shared/limits.js';
import type { DirectMessages } from './dms.js';
import { parse } from './api-parse.js';
import { NO_CONTENT, doc } from './api-doc.js';
import { ApiDm, ApiSafety, Blocks, DmPage, DmWritten } from './api-shapes.js';

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
const PostBody = z.object({ text: MessageText, replyTo: Uuid.optional() });
const EditBody = z.object({ text: MessageText });
const MessageParam = z.object({ id: Uuid, messageId: Uuid });
const ReactionParam = MessageParam.extend({ emoji: Emoji });
const VerifyBody = z.object({ username: Username, verified: z.boolean() });

/** Adds the direct-message routes. */
export function dmRoutes(app: FastifyInstance, dms: DirectMessages): void {
  app.get(
    '/api/dms',
    doc('This user’s conversations, newest activity first', {
      response: { 200: z.array(ApiDm) },
    }),
    async () => dms.list(),
  );
  app.post(
    '/api/dms',
    doc('Starts a conversation, or answers the one two users already have', {
      body: StartBody,
      response: { 200: ApiDm, 201: ApiDm },
    }),
    async (req, reply) => {
      const b = parse(StartBody, req.body, 'dm');
      const { dm, created } = await dms.start(b.members);
      return reply.code(created ? 201 : 200).send(dm);
    },
  );
  app.get(
    '/api/dms/:id',
    doc('A conversation', { params: IdParam, response: { 200: ApiDm } }),
    async (req) => dms.get(parse(IdParam, req.params, 'dm id').id),
  );
  app.get(
    '/api/dms/:id/messages',
    doc('A page of a conversation’s messages and notices, oldest first', {
      params: IdParam,
      querystring: PageQuery,
      response: { 200: DmPage },
    }),
    async (req) => {
      const { id } = parse(IdParam, req.params, 'dm id');
      const q = parse(PageQuery, req.query, 'query');
      return dms.messages(id, q.limit, q.before);
    },
  );
  app.post(
    '/api/dms/:id/messages',
    doc('Writes in a conversation, end-to-end encrypted to every device', {
      params: IdParam,
      body: PostBody,
      response: { 201: DmWritten },
    }),
    async (req, reply) => {
      const { id } = parse(IdParam, req.params, 'dm id');
      const b = parse(PostBody, req.body, 'message');
      return reply.code(201).send(await dms.post(id, b.text, b.replyTo));
    },
  );
  app.patch(
    '/api/dms/:id/messages/:messageId',
    doc('Edits one of this user’s messages, on every device of the conversation', {
      params: MessageParam,
      body: EditBody,
      response: { 200: DmWritten },
    }),
    async (req) => {
      const p = parse(MessageParam, req.params, 'message');
      const b = parse(EditBody, req.body, 'edit');
      return dms.edit(p.id, p.messageId, b.text);
    },
  );
  app.delete(
    '/api/dms/:id/messages/:messageId',
    doc('Deletes one of this user’s messages, on every device of the conversation', {
      params: MessageParam,
      response: { 200: DmWritten },
    }),
    async (req) => {
      const p = parse(MessageParam, req.params, 'message');
      return dms.remove(p.id, p.messageId);
    },
  );
  app.put(
    '/api/dms/:id/messages/:messageId/reactions/:emoji',
    doc('Adds this user’s reaction to a message of the conversation (once per user and emoji)', {
      params: ReactionParam,
      response: { 200: DmWritten },
    }),
    async (req) => {
      const p = parse(ReactionParam, req.params, 'reaction');
      return dms.react(p.id, p.messageId, p.emoji, true);
    },
  );
  app.delete(
    '/api/dms/:id/messages/:messageId/reactions/:emoji',
    doc('Takes back this user’s reaction', { params: ReactionParam, response: { 200: DmWritten } }),
    async (req) => {
      const p = parse(ReactionParam, req.params, 'reaction');
      return dms.react(p.id, p.messageId, p.emoji, false);
    },
  );
  app.post(
    '/api/dms/:id/read',
    doc('Marks a conversation read', { params: IdParam, response: { 204: NO_CONTENT } }),
    async (req, reply) => {
      dms.read(parse(IdParam, req.params, 'dm id').id);
      return reply.code(204).send();
    },
  );
  app.get(
    '/api/dms/:id/safety',
    doc('The other members’ safety numbers', { params: IdParam, response: { 200: ApiSafety } }),
    async (req) => dms.safety(parse(IdParam, req.params, 'dm id').id),
  );
  app.put(
    '/api/dms/:id/safety',
    doc('Marks (or unmarks) a member’s keys verified', {
      params: IdParam,
      body: VerifyBody,
      response: { 200: ApiSafety },
    }),
    async (req) => {
      const { id } = parse(IdParam, req.params, 'dm id');
      const b = parse(VerifyBody, req.body, 'safety');
      return dms.setVerified(id, b.username, b.verified);
    },
  );
  app.get(
    '/api/blocks',
    doc('The users this user blocks', { response: { 200: Blocks } }),
    async () => dms.blocks(),
  );
  app.put(
    '/api/blocks/:username',
    doc('Blocks a user on every device of this user', {
      params: UserParam,
      response: { 200: Blocks },
    }),
    async (req) => dms.block(parse(UserParam, req.params, 'user').username, true),
  );
  app.delete(
    '/api/blocks/:username',
    doc('Unblocks a user', { params: UserParam, response: { 200: Blocks } }),
    async (req) => dms.block(parse(UserParam, req.params, 'user').username, false),
  );
}
