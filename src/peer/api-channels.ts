/**
 * The local API's channel management routes (README "Channels"): leave, and the owner's
 * rename, topic, visitors, member removal and delete.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { ChannelName, Topic, Username, Uuid } from '../protocol/common.js';
import type { PeerNode } from './node.js';
import { parse } from './api-parse.js';
import { NO_CONTENT, doc } from './api-doc.js';
import { Written } from './api-shapes.js';

const IdParam = z.object({ id: Uuid });
const MemberParam = z.object({ id: Uuid, username: Username });
const ChannelPatch = z
  .object({
    name: ChannelName.optional(),
    topic: Topic.optional(),
    allowVisitors: z.boolean().optional(),
  })
  .strict()
  .refine(
    (b) => b.name !== undefined || b.topic !== undefined || b.allowVisitors !== undefined,
    'name, topic or allowVisitors: one at least',
  );

/** Adds the channel management routes. */
export function channelRoutes(app: FastifyInstance, node: PeerNode): void {
  app.post(
    '/api/channels/:id/leave',
    doc('Leaves a channel (not its owner: it deletes it)', {
      params: IdParam,
      response: { 204: NO_CONTENT },
    }),
    async (req, reply) => {
      const { id } = parse(IdParam, req.params, 'channel id');
      await node.channelActions.leave(id);
      return reply.code(204).send();
    },
  );
  app.patch(
    '/api/channels/:id',
    doc('Changes a channel’s name, topic or visitors (its owner only)', {
      params: IdParam,
      body: ChannelPatch,
      response: { 200: Written },
    }),
    async (req) => {
      const { id } = parse(IdParam, req.params, 'channel id');
      const b = parse(ChannelPatch, req.body, 'channel');
      return node.channelActions.update(id, b);
    },
  );
  app.delete(
    '/api/channels/:id/members/:username',
    doc('Removes a member (the owner only): it can neither read, post nor join again', {
      params: MemberParam,
      response: { 200: Written },
    }),
    async (req) => {
      const p = parse(MemberParam, req.params, 'member');
      return node.channelActions.removeMember(p.id, p.username);
    },
  );
  app.delete(
    '/api/channels/:id',
    doc('Deletes a channel (its owner only)', { params: IdParam, response: { 200: Written } }),
    async (req) => {
      const { id } = parse(IdParam, req.params, 'channel id');
      return node.channelActions.remove(id);
    },
  );
}
