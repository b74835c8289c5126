/**
 * Builds the public REST API v1 and its gateway on the server's HTTP port (issue 17): the
 * server hands in what a call reaches (its frame dispatch, stores, token service), and gets
 * back the request handler for `/api/` and the gateway (revocations and shutdown reach it).
 */
import type http from 'node:http';
import type { Logger } from 'pino';
import type { ApiTokenStore } from '../../store/api-token-store.js';
import type { ServerStore } from '../../store/server-store.js';
import type { Conn } from '../conn.js';
import type { FrameDispatch } from '../frame-dispatch.js';
import type { TokenService } from '../token-service.js';
import { runApiCall } from './api-call.js';
import type { BadTokenThrottle } from './bad-tokens.js';
import { Gateway, type GatewayDeps } from './gateway.js';
import { createRestApi } from './rest-api.js';

export interface StartApiDeps {
  http: http.Server;
  frames: FrameDispatch;
  store: ServerStore;
  apiTokens: ApiTokenStore;
  tokens: TokenService;
  /** Failed bearer tokens per address group (the server's, so that its metrics count them). */
  badTokens: BadTokenThrottle;
  opsLog: Logger;
  /** Forgets what a call's or a gateway session's connection left (subscriptions, views). */
  finished(conn: Conn): void;
  /** Loads what a session of `account` needs on this instance (its channels, for presence). */
  attach(account: string): Promise<unknown>;
  /** Who belongs where (the server's Presence): what presence a gateway session may see. */
  memberships: GatewayDeps['memberships'];
  /** The tracker's entries of a user. */
  entriesOf: GatewayDeps['entriesOf'];
  rate?: number;
  burst?: number;
  /** Bytes the gateway keeps for resume per account and per instance (API_LIMITS). */
  accountBytes?: number;
  instanceBytes?: number;
}

export async function startApi(
  d: StartApiDeps,
): Promise<{ handle: http.RequestListener; gateway: Gateway }> {
  const gateway = new Gateway({
    frames: d.frames,
    tokens: d.apiTokens,
    channelsOf: (name) => d.store.channelsOf(name),
    memberships: d.memberships,
    entriesOf: d.entriesOf,
    attach: d.attach,
    finished: d.finished,
    accountBytes: d.accountBytes,
    instanceBytes: d.instanceBytes,
  });
  const { handle } = await createRestApi(d.http, {
    gateway,
    opsLog: d.opsLog,
    tokens: d.tokens,
    badTokens: d.badTokens,
    rate: d.rate,
    burst: d.burst,
    call: async (token, remote, op, body) => {
      // A call is a session of the account attaching here, as a login is: what it may see
      // (presence above all) is read from its channels, which must be loaded first.
      await d.attach(token.account);
      return (await runApiCall(
        { frames: d.frames, finished: d.finished },
        token,
        remote,
        op,
        body,
      )) as never;
    },
    user: async (name) => {
      const u = await d.store.getUser(name);
      if (!u) return undefined;
      const bot = await d.apiTokens.getBot(u.username);
      return { username: u.username, owner: bot?.owner };
    },
    channel: (id) => d.store.getChannel(id),
    channelsOf: (name) => d.store.channelsOf(name),
  });
  return { handle, gateway };
}
