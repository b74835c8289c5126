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
import { OPS } from '../protocol/server-link.js';
import type { PeerNode } from './node.js';
import { parse } from './api-parse.js';
import { NO_CONTENT, doc } from './api-doc.js';
import { Bot, Bots, MadeToken, NewToken, Tokens } from './api-shapes.js';

const TokenId = OPS.token_revoke.req;
const BotBody = OPS.bot_create.req;

/** Adds the bot and token routes. */
export function tokenRoutes(app: FastifyInstance, node: PeerNode): void {
  app.post(
    '/api/bots',
    doc('Makes a bot account owned by this user', { body: BotBody, response: { 201: Bot } }),
    async (req, reply) => {
      const b = parse(BotBody, req.body, 'bot');
      return reply.code(201).send(await node.tokenOp('bot_create', b));
    },
  );
  app.get(
    '/api/bots',
    doc('This user’s bots, oldest first', { response: { 200: Bots } }),
    async () => node.tokenOp('bots', {}),
  );
  app.post(
    '/api/tokens',
    doc('Makes a REST API token; its secret is in this answer only', {
      body: NewToken,
      response: { 201: MadeToken },
    }),
    async (req, reply) => {
      const b = parse(NewToken, req.body, 'token');
      return reply.code(201).send(await node.tokenOp('token_create', b));
    },
  );
  app.get(
    '/api/tokens',
    doc('This user’s tokens and its bots’, newest first (never their secrets)', {
      response: { 200: Tokens },
    }),
    async () => node.tokenOp('tokens', {}),
  );
  app.delete(
    '/api/tokens/:id',
    doc('Revokes a token', { params: TokenId, response: { 204: NO_CONTENT } }),
    async (req, reply) => {
      const { id } = parse(TokenId, req.params, 'token');
      await node.tokenOp('token_revoke', { id });
      return reply.code(204).send();
    },
  );
}
