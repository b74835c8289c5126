/** The local API's search route (README "Search"): `GET /api/search?q=&channelId=&limit=&before=`. */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { Uuid } from '../protocol/common.js';
import { SearchQuery } from '../protocol/search-ops.js';
import { SEARCH_LIMITS } from '../shared/limits.js';
import type { PeerSearch } from './search.js';
import { parse } from './api-parse.js';
import { doc } from './api-doc.js';
import { ApiSearch } from './api-shapes.js';

const Query = z.object({
  q: SearchQuery,
  channelId: Uuid.optional(),
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(SEARCH_LIMITS.maxResults)
    .default(SEARCH_LIMITS.defaultResults),
  before: Uuid.optional(),
});

/** Adds the search route. */
export function searchRoutes(app: FastifyInstance, search: PeerSearch): void {
  app.get(
    '/api/search',
    doc('Full-text search of the messages this user may read, newest first', {
      querystring: Query,
      response: { 200: ApiSearch },
    }),
    async (req) => search.search(parse(Query, req.query, 'query')),
  );
}
