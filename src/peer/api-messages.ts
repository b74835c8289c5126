/**
 * The local API's message routes (README "Messages"): read a page (or the page around one
 * message), post with a reply, edit, delete, react.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { Emoji, MessageText, Uuid } from '../protocol/common.js';
import type { PeerNode } from './node.js';
import { parse } from './api-parse.js';
import { doc } from './api-doc.js';
import { Page, Written } from './api-shapes.js';
import { FileId } from '../protocol/files.js';
import { FILE_LIMITS } from '../shared/limits.js';

const IdParam = z.object({ id: Uuid });
const MessageParam = z.object({ id: Uuid, messageId: Uuid });
const ReactionParam = MessageParam.extend({ emoji: Emoji });
const PageQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(500).default(50),
    before: Uuid.optional(),
    around: Uuid.optional(),
  })
  .refine((q) => !(q.before && q.around), 'before and around: one at most');
const PostBody = z
  .object({
    text: MessageText.optional(),
    replyTo: Uuid.optional(),
    files: z
      .array(FileId)
      .min(1)
      .max(FILE_LIMITS.filesPerMessage)
      .refine((a) => new Set(a).size === a.length, 'files: each file once')
      .optional(),
  })
  .refine((b) => b.text !== undefined || b.files !== undefined, 'text or files: at least one');
const EditBody = z.object({ text: MessageText });

/** Adds the message routes. */
export function messageRoutes(app: FastifyInstance, node: PeerNode): void {
  app.get(
    '/api/channels/:id/messages',
    doc('A page of messages: the newest, those `before` one, or those `around` one', {
      params: IdParam,
      querystring: PageQuery,
      response: { 200: Page },
    }),
    async (req) => {
      const { id } = parse(IdParam, req.params, 'channel id');
      const q = parse(PageQuery, req.query, 'query');
      if (q.around !== undefined) {
        if (!node.readsChannel(id)) throw await node.unreadable(id);
        return node.actions.around(id, q.around, q.limit);
      }
      return node.messages(id, q.limit, q.before);
    },
  );
  app.post(
    '/api/channels/:id/messages',
    doc('Posts a message: text, files attached here first, or both; maybe a reply', {
      params: IdParam,
      body: PostBody,
      response: { 201: Written },
    }),
    async (req, reply) => {
      const { id } = parse(IdParam, req.params, 'channel id');
      const b = parse(PostBody, req.body, 'message');
      return reply.code(201).send(await node.actions.post(id, b.text, b.replyTo, b.files));
    },
  );
  app.patch(
    '/api/channels/:id/messages/:messageId',
    doc('Edits a message (its author only)', {
      params: MessageParam,
      body: EditBody,
      response: { 200: Written },
    }),
    async (req) => {
      const p = parse(MessageParam, req.params, 'message');
      const b = parse(EditBody, req.body, 'edit');
      return node.actions.edit(p.id, p.messageId, b.text);
    },
  );
  app.delete(
    '/api/channels/:id/messages/:messageId',
    doc('Deletes a message (its author, or the channel’s owner)', {
      params: MessageParam,
      response: { 200: Written },
    }),
    async (req) => {
      const p = parse(MessageParam, req.params, 'message');
      return node.actions.remove(p.id, p.messageId);
    },
  );
  app.put(
    '/api/channels/:id/messages/:messageId/reactions/:emoji',
    doc('Adds this user’s reaction (once per user and emoji)', {
      params: ReactionParam,
      response: { 200: Written },
    }),
    async (req) => {
      const p = parse(ReactionParam, req.params, 'reaction');
      return node.actions.react(p.id, p.messageId, p.emoji, true);
    },
  );
  app.delete(
    '/api/channels/:id/messages/:messageId/reactions/:emoji',
    doc('Removes this user’s reaction', { params: ReactionParam, response: { 200: Written } }),
    async (req) => {
      const p = parse(ReactionParam, req.params, 'reaction');
      return node.actions.react(p.id, p.messageId, p.emoji, false);
    },
  );
}
