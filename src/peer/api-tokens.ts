/**
 * The local API's bots and REST API tokens (issue 17; docs/REST.md): what the user's own session
 * asks the server for. A token's secret is in the answer of `POST /api/tokens` only.
 *   POST   /api/bots         {username}                              → 201 bot
 *   GET    /api/bots                                                 → {bots}
 *   POST   /api/tokens       {name, account?, scopes, channels?, expiresInDays?} → 201 token + secret
 *   GET    /api/tokens                                               → {tokens}
 *   DELETE /api/tokens/:id                                           → 204
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { OPS } from '../protocol/server-link.js';
import type { PeerNode } from './node.js';
import { parse } from './api-parse.js';

const TokenId = z.object({ id: z.string().max(64) });

/** Adds the bot and token routes. */
export function tokenRoutes(app: FastifyInstance, node: PeerNode): void {
  app.post('/api/bots', async (req, reply) => {
    const b = parse(OPS.bot_create.req, req.body, 'bot');
    return reply.code(201).send(await node.tokenOp('bot_create', b));
  });
  app.get('/api/bots', async () => node.tokenOp('bots', {}));
  app.post('/api/tokens', async (req, reply) => {
    const b = parse(OPS.token_create.req, req.body, 'token');
    return reply.code(201).send(await node.tokenOp('token_create', b));
  });
  app.get('/api/tokens', async () => node.tokenOp('tokens', {}));
  app.delete('/api/tokens/:id', async (req, reply) => {
    const { id } = parse(TokenId, req.params, 'token');
    await node.tokenOp('token_revoke', { id });
    return reply.code(204).send();
  });
}
