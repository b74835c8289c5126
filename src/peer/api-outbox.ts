/**
 * The local API's outbox routes (README "Local API"): what the user wrote that no replica took
 * yet or ever will (`pending`, `failed`), in every channel, those the user no longer reads too:
 * a message written offline in a channel its author was removed from (or that was deleted)
 * meanwhile fails when it is sent, and is read here, since its channel left the user's list.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { HchatError } from '../protocol/errors.js';
import { Uuid } from '../protocol/common.js';
import type { PeerNode } from './node.js';
import { parse } from './api-parse.js';
import { NO_CONTENT, doc } from './api-doc.js';
import { Outbox } from './api-shapes.js';
import { apiMessages } from './message-view.js';

/** At most this many of the oldest undelivered messages are listed. */
export const OUTBOX_LIST_MAX = 500;

const IdParam = z.object({ id: Uuid });

/** Adds the outbox routes. */
export function outboxRoutes(app: FastifyInstance, node: PeerNode): void {
  app.get(
    '/api/outbox',
    doc('Your messages not delivered (pending or failed), oldest first, in every channel', {
      response: { 200: Outbox },
    }),
    async () => {
      const me = node.accountName;
      const held = node.store.undelivered(me, OUTBOX_LIST_MAX);
      return { messages: apiMessages(node.store, held, me, node) };
    },
  );
  app.delete(
    '/api/outbox/:id',
    doc('Dismisses a failed message of yours: it goes from this peer', {
      params: IdParam,
      response: { 204: NO_CONTENT },
    }),
    async (req, reply) => {
      const { id } = parse(IdParam, req.params, 'message id');
      if (!node.store.discardFailed(node.accountName, id))
        throw new HchatError('E_NOT_FOUND', 'no failed message of yours with that id');
      return reply.code(204).send();
    },
  );
}
