/**
 * The routes of the REST API v1 (issue 17; docs/REST.md). Each one is a wire operation run as the
 * token's account (api-call.ts), so a call is checked exactly as a peer's request would be; on
 * top of that, a token limited to some channels touches only those. `read` routes are GETs,
 * `write` routes change something.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { v7 as uuidv7 } from 'uuid';
import { z } from 'zod';
import { Channel, ChannelName, NewMessage } from '../../protocol/common.js';
import { HchatError } from '../../protocol/errors.js';
import {
  ChannelIdParams,
  DirectoryQuery,
  History,
  HistoryQuery,
  Items,
  ItemsQuery,
  KeyBody,
  KeyCert,
  NewChannelBody,
  RestChannels,
  RestError,
  RestMe,
  RestUser,
  UserIdParams,
  GatewayQuery,
} from '../../protocol/rest.js';
import { OPS, type OpName, type OpReq, type OpRes } from '../../protocol/server-link.js';
import type { ApiTokenRecord } from '../../store/api-token-store.js';
import type { TokenService } from '../token-service.js';
import type { Gateway } from './gateway.js';
import { scopedEntry } from './token-scope.js';
import { readWhole } from '../../protocol/page-budget.js';
import { readClaims } from '../../shared/tokens.js';

/** What the routes need from their server. */
export interface RestRouteDeps {
  tokens: TokenService;
  /** Runs wire operation `op` as the token's account, from the caller's address. */
  call<K extends OpName>(
    token: ApiTokenRecord,
    remote: { ip: string; port: number },
    op: K,
    body: OpReq<K>,
  ): Promise<OpRes<K>>;
  /** A registered account by name (any case): its spelling, and its owner if it is a bot. */
  user(username: string): Promise<{ username: string; owner?: string } | undefined>;
  /** A channel by id. */
  channel(id: string): Promise<Channel | undefined>;
  /** The channels an account is a member of. */
  channelsOf(username: string): Promise<Channel[]>;
  /** The real-time gateway of this instance (gateway.ts). */
  gateway: Gateway;
}

const ERRORS = { 400: RestError, 401: RestError, 403: RestError, 404: RestError, 429: RestError };
/** A route that reads a body may also answer 413: over `API_LIMITS.maxBodyBytes` (64 KiB). */
const BODY_ERRORS = { ...ERRORS, 413: RestError };
const read = { scope: 'read' as const };
const write = { scope: 'write' as const };

function remoteOf(req: FastifyRequest): { ip: string; port: number } {
  return {
    ip: (req.socket.remoteAddress ?? '?').replace(/^::ffff:/, ''),
    port: req.socket.remotePort ?? 0,
  };
}

/** The token of a call (the auth hook put it there). */
function tokenOf(req: FastifyRequest): ApiTokenRecord {
  if (!req.token) throw new HchatError('E_TOKEN_INVALID');
  return req.token;
}

/** True when the token may touch `channelId` (every channel, unless it names some). */
function inScope(t: ApiTokenRecord, channelId: string): boolean {
  return t.channels === null || t.channels.includes(channelId);
}

/** Refuses a channel outside the token's channels as if it did not exist. */
function checkScope(t: ApiTokenRecord, channelId: string): void {
  if (!inScope(t, channelId)) throw new HchatError('E_CHANNEL_NOT_FOUND');
}

export function restRoutes(d: RestRouteDeps): FastifyPluginAsync {
  return async (plain) => {
    const app = plain.withTypeProvider<ZodTypeProvider>();
    const call = <K extends OpName>(req: FastifyRequest, op: K, body: OpReq<K>) =>
      d.call(tokenOf(req), remoteOf(req), op, body);

    /** A channel's members, every page of them (the wire answer is cut to a frame). */
    const allMembers = (req: FastifyRequest, channelId: string): Promise<string[]> =>
      readWhole(async (after) => {
        const r = await call(req, 'members', { channelId, ...(after ? { after } : {}) });
        return { items: r.members, next: r.next };
      });

    /** `user_id` as an account name: `@me` is the token's own. */
    const nameOf = (req: FastifyRequest, userId: string) =>
      userId === '@me' ? tokenOf(req).account : userId;
    const isSelf = (t: ApiTokenRecord, name: string) =>
      name.toLowerCase() === t.account.toLowerCase();

    /** The channels the token's account shares with `name`, within the token's channels. */
    const shared = async (t: ApiTokenRecord, name: string): Promise<Channel[]> => {
      const mine = (await d.channelsOf(t.account)).filter((c) => inScope(t, c.id));
      if (isSelf(t, name)) return mine;
      const theirs = new Set((await d.channelsOf(name)).map((c) => c.id));
      return mine.filter((c) => theirs.has(c.id));
    };

    /**
     * A user the token may see: its own account, or one sharing a channel with it; any other
     * name is `E_NOT_FOUND`, exactly as one that does not exist (no account enumeration).
     */
    const visibleUser = async (t: ApiTokenRecord, name: string) => {
      const u = await d.user(name);
      if (!u || (!isSelf(t, name) && (await shared(t, u.username)).length === 0))
        throw new HchatError('E_NOT_FOUND', 'no such user');
      return { username: u.username, bot: u.owner !== undefined, owner: u.owner };
    };

    app.get(
      '/users/:user_id',
      {
        config: read,
        schema: {
          summary: 'A user: the token’s own account (@me), or one sharing a channel with it',
          params: UserIdParams,
          response: { 200: z.union([RestMe, RestUser]), ...ERRORS },
        },
      },
      async (req) => {
        const t = tokenOf(req);
        const user = await visibleUser(t, nameOf(req, req.params.user_id));
        if (!isSelf(t, user.username)) return user;
        const token = {
          id: t.id,
          scopes: t.scopes,
          channels: t.channels,
          expiresAt: t.expiresAt,
        };
        return { ...user, token };
      },
    );

    app.get(
      '/users/:user_id/channels',
      {
        config: read,
        schema: {
          summary:
            'The channels of a user that the token may see: all of its own (@me), or those it shares with another',
          params: UserIdParams,
          response: { 200: RestChannels, ...ERRORS },
        },
      },
      async (req) => {
        const t = tokenOf(req);
        const user = await visibleUser(t, nameOf(req, req.params.user_id));
        return { channels: await shared(t, user.username) };
      },
    );

    app.get(
      '/channels',
      {
        config: read,
        schema: {
          summary: 'The channel directory, a page at a time (`next` → `after`)',
          querystring: DirectoryQuery,
          response: { 200: OPS.directory.res, ...ERRORS },
        },
      },
      async (req) => {
        const page = await call(req, 'directory', { after: req.query.after });
        const t = tokenOf(req);
        return { ...page, channels: page.channels.filter((c) => inScope(t, c.id)) };
      },
    );

    app.post(
      '/channels',
      {
        config: write,
        schema: {
          summary: 'Creates a channel owned by the token’s account',
          body: NewChannelBody.extend({ name: ChannelName }),
          response: { 201: Channel, ...BODY_ERRORS, 409: RestError },
        },
      },
      async (req, reply) => {
        if (tokenOf(req).channels !== null)
          throw new HchatError('E_TOKEN_SCOPE', 'a token limited to channels cannot create one');
        const c = await call(req, 'channel_create', {
          id: req.body.id ?? uuidv7(),
          name: req.body.name,
          allowVisitors: req.body.allowVisitors,
        });
        d.gateway.refresh(tokenOf(req).account);
        return reply.code(201).send(c);
      },
    );

    app.get(
      '/channels/:channel_id',
      {
        config: read,
        schema: {
          summary: 'A channel the token may read',
          params: ChannelIdParams,
          response: { 200: Channel, ...ERRORS },
        },
      },
      async (req) => {
        const id = req.params.channel_id;
        checkScope(tokenOf(req), id);
        // Readable, as `history` checks it (the same refusals); then the channel itself.
        await call(req, 'history', { channelId: id, limit: 1 });
        const c = await d.channel(id);
        if (!c) throw new HchatError('E_CHANNEL_NOT_FOUND');
        return c;
      },
    );

    app.post(
      '/channels/:channel_id/join',
      {
        config: write,
        schema: {
          summary: 'Joins a channel: the token’s account becomes a member',
          params: ChannelIdParams,
          response: { 200: Channel, ...BODY_ERRORS },
        },
      },
      async (req) => {
        checkScope(tokenOf(req), req.params.channel_id);
        const c = await call(req, 'channel_join', { channelId: req.params.channel_id });
        d.gateway.refresh(tokenOf(req).account);
        return c;
      },
    );

    app.post(
      '/channels/:channel_id/leave',
      {
        config: write,
        schema: {
          summary: 'Leaves a channel',
          params: ChannelIdParams,
          response: { 200: z.object({}), ...BODY_ERRORS },
        },
      },
      async (req) => {
        checkScope(tokenOf(req), req.params.channel_id);
        const r = await call(req, 'channel_leave', { channelId: req.params.channel_id });
        d.gateway.refresh(tokenOf(req).account);
        return r;
      },
    );

    app.get(
      '/channels/:channel_id/members',
      {
        config: read,
        schema: {
          summary: 'A channel’s members',
          params: ChannelIdParams,
          response: { 200: OPS.members.res.omit({ next: true }), ...ERRORS },
        },
      },
      async (req) => {
        checkScope(tokenOf(req), req.params.channel_id);
        return { members: await allMembers(req, req.params.channel_id) };
      },
    );

    app.get(
      '/channels/:channel_id/messages',
      {
        config: read,
        schema: {
          summary:
            'A history page: the newest `limit` messages before message `before` (or the newest), oldest first, with the items naming them',
          params: ChannelIdParams,
          querystring: HistoryQuery,
          response: { 200: History, ...ERRORS },
        },
      },
      async (req) => {
        checkScope(tokenOf(req), req.params.channel_id);
        return call(req, 'history', {
          channelId: req.params.channel_id,
          limit: req.query.limit,
          before: req.query.before,
        });
      },
    );

    app.get(
      '/channels/:channel_id/items',
      {
        config: read,
        schema: {
          summary:
            'Catch-up: every item (messages, edits, deletes, reactions) with `seq` above `since`, in seq order, and the channel’s last seq',
          params: ChannelIdParams,
          querystring: ItemsQuery,
          response: { 200: Items, ...ERRORS },
        },
      },
      async (req) => {
        checkScope(tokenOf(req), req.params.channel_id);
        return call(req, 'sync', {
          channelId: req.params.channel_id,
          since: req.query.since,
          limit: req.query.limit,
        });
      },
    );

    app.post(
      '/channels/:channel_id/messages',
      {
        config: write,
        schema: {
          summary:
            'Posts an item (a message, edit, delete, reaction) signed by the token’s account with a key certified by POST /keys',
          params: ChannelIdParams,
          body: NewMessage,
          response: {
            201: OPS.post.res,
            200: OPS.post.res,
            ...BODY_ERRORS,
            409: RestError,
            422: RestError,
          },
        },
      },
      async (req, reply) => {
        checkScope(tokenOf(req), req.params.channel_id);
        if (req.body.channelId !== req.params.channel_id)
          throw new HchatError('E_BAD_REQUEST', 'channelId: not the channel of the path');
        const r = await call(req, 'post', { message: req.body });
        return reply.code(r.duplicate ? 200 : 201).send(r);
      },
    );

    app.get(
      '/presence',
      {
        config: read,
        schema: {
          summary:
            'Who is online that the token may see (members of its channels, hosts of channels it reads), a page at a time',
          querystring: DirectoryQuery,
          response: { 200: OPS.get_list.res, ...ERRORS },
        },
      },
      async (req) => {
        const t = tokenOf(req);
        const page = await call(req, 'get_list', { after: req.query.after });
        if (t.channels === null) return page;
        const members = new Set<string>();
        for (const id of t.channels) {
          const m = await allMembers(req, id).catch(() => []);
          for (const u of m) members.add(u.toLowerCase());
        }
        const peers = page.peers.filter((p) => members.has(p.username.toLowerCase()));
        return { ...page, peers: peers.map((p) => scopedEntry(p, t.channels)) };
      },
    );

    app.get(
      '/gateway',
      {
        websocket: true,
        config: read,
        schema: {
          summary:
            'The real-time gateway (WebSocket): numbered events of the token’s channels, with resume (docs/REST.md “Gateway”)',
          querystring: GatewayQuery,
        },
      },
      (socket, req) => {
        const q = req.query as z.infer<typeof GatewayQuery>;
        const resume = q.resume !== undefined ? { session: q.resume, seq: q.seq ?? 0 } : undefined;
        d.gateway.open(socket, tokenOf(req), remoteOf(req), resume).catch((err: unknown) => {
          const e = err instanceof HchatError ? err : new HchatError('E_INTERNAL');
          socket.close(1011, e.code);
        });
      },
    );

    app.post(
      '/keys',
      {
        config: write,
        schema: {
          summary:
            'Certifies an Ed25519 public key for the token’s account: messages signed with it carry this certificate',
          body: KeyBody,
          response: { 200: KeyCert, ...BODY_ERRORS },
        },
      },
      async (req) => {
        const t = tokenOf(req);
        const cert = await d.tokens.certify(t, req.body.publicKey);
        const claims = readClaims(cert) as { exp: number; bot?: true };
        return { cert, exp: claims.exp, bot: claims.bot === true };
      },
    );
  };
}
