/**
 * The local API as the UI uses it (README "Local API"): same origin, JSON, errors as
 * `{error: {code, message}}`, live events over server-sent events; the token as
 * `Authorization: Bearer` (auth.ts).
 */
import type { TypingEvent } from '../../src/protocol/typing-ops.js';
import { TYPING_LIMITS } from '../../src/shared/limits.js';
import type { components, paths } from './local-api-types.js';
import { authHeaders } from './auth.js';
import { E_PEER_UNREACHABLE, setPeerReachable } from './peer-reach.js';

/** The local API's answers, as its OpenAPI document names them (docs/local-api.openapi.json). */
type Schemas = components['schemas'];
/** What `method path` answers with `status` (200 by default), as the document says. */
export type Answer<
  P extends keyof paths,
  M extends 'get' | 'post' | 'put' | 'patch' | 'delete' = 'get',
  S extends number = 200,
> = paths[P][M] extends {
  responses: Record<S, { content: { 'application/json': infer T } }>;
}
  ? T
  : never;

export type Me = Schemas['Me'];

/** A channel: as joined (`GET /api/channels`, with counts) or in the directory (`joined`). */
export type Channel = Omit<Schemas['DirectoryChannel'], 'joined'> &
  Partial<Pick<Schemas['Channel'], 'hosted' | 'unread' | 'mentions'>> & { joined?: boolean };

/** A message in its current state (edits, delete, reactions folded in). */
export type Message = Schemas['Message'];
export type Reaction = Schemas['Reaction'];
/** A file attached to a message (README "Files"). */
export type ChatFile = Schemas['File'];

/** What is known of a user's avatar: its hash and when it was set (README "Avatars"). */
export type Avatar = Schemas['Avatar'];

/** A bot account of yours, and an API token as listed (never its secret) (docs/REST.md). */
export type Bot = Schemas['Bot'];
export type Token = Schemas['Token'];
/** What `POST /api/tokens` takes, and answers: the token with its secret, shown this once. */
export type NewToken = Schemas['NewTokenInput'];
export type MadeToken = Schemas['MadeToken'];

/** `GET /api/search`'s answer. */
export type SearchAnswer = Schemas['SearchAnswer'];

/** A page of a channel's messages (`around` one: with `hasNewer`). */
export type Page = Schemas['Page'];

/** A session the tracker lists. */
export type Peer = Schemas['Peer'];

/** A live stream this user may watch (README "Livestream API"). */
export type Stream = Schemas['Stream'];

/** A viewer's stats of a stream, as the play socket sends them (no role, no SRTP counters). */
export type ViewerStats = Omit<
  Schemas['ViewerStats'],
  'role' | 'srtpUnkeyed' | 'srtpAuthFailures' | 'srtpReplays' | 'srtpMalformed'
>;

/** A channel's member, online or not. */
export type Member = Schemas['Member'];
/** An item just written: a message, an edit, a delete, a reaction. */
export type Written = Schemas['Written'];

/** The `typing` event: the wire's shape, with `expiresAt` on this machine's clock. */
export type Typing = TypingEvent;

/** The UI sends `typing` at most this often while its user types. */
export const TYPING_EVERY_MS = TYPING_LIMITS.sendEveryMs;

/** An error answered by the API, with its catalogue code. */
export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** The API's error in an answer's body, or the HTTP status when the body says nothing. */
export function errorOf(status: number, statusText: string, body: string): ApiError {
  let e: { code?: string; message?: string } | undefined;
  try {
    e = (JSON.parse(body) as { error?: typeof e }).error;
  } catch {
    // not JSON: the status says it
  }
  return new ApiError(e?.code ?? 'E_HTTP', e?.message ?? `${status} ${statusText}`.trim(), status);
}

/** What a request the peer did not answer says (not the browser's "TypeError: Failed to fetch"). */
export const PEER_UNREACHABLE_TEXT =
  'Your peer is not running (or not answering), so this was not done';

/**
 * `fetch`, but a request that got no answer at all (the peer's process is gone, or its port is
 * closed) throws an ApiError `E_PEER_UNREACHABLE` that says so, and marks the peer unreachable;
 * any answer marks it reachable again (peer-reach.ts).
 */
export async function reach(path: string, init: RequestInit): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(path, init);
  } catch (err) {
    if (init.signal?.aborted) throw err;
    setPeerReachable(false);
    throw new ApiError(E_PEER_UNREACHABLE, PEER_UNREACHABLE_TEXT, 0);
  }
  setPeerReachable(true);
  return res;
}

/**
 * Set from the moment this page asks to log out until it logs in again: the views still shown
 * while the page leaves (a refresh an event started, the peer's link coming up once nobody is
 * logged in) ask nothing more, as every answer would be a 401 the console shows.
 */
let signedOut = false;
/** A logout is on its way (a session read answered meanwhile may predate it). */
let loggingOut = false;
/** What a page asks while nobody is logged in. */
const SIGNED_OUT_PATHS = new Set([
  '/api/me',
  '/api/session',
  '/api/register',
  '/api/login',
  '/api/visitor',
  '/api/logout',
]);

/** One call of the local API: JSON in and out; an error answer throws its ApiError. */
export async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  if (signedOut && !SIGNED_OUT_PATHS.has(path.split('?')[0]!))
    throw new ApiError('E_AUTH_REQUIRED', 'logged out on this page', 401);
  const res = await reach(path, {
    method,
    headers: {
      ...authHeaders(),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const data = text ? JSON.parse(text) : undefined;
  if (!res.ok) {
    const e = data?.error ?? { code: 'E_HTTP', message: `${res.status} ${res.statusText}` };
    throw new ApiError(e.code, e.message, res.status);
  }
  return data as T;
}

/** A login or visitor entry went through: the page asks again. */
function signedIn<T>(answer: T): T {
  signedOut = false;
  return answer;
}

export const api = {
  me: () => call<Me>('GET', '/api/me'),
  // Someone logged in (in another tab of this peer, say): this page may ask again.
  session: () =>
    call<Answer<'/api/session'>>('GET', '/api/session').then((a) => {
      if (a.me && !loggingOut) signedOut = false;
      return a;
    }),
  register: (username: string, password: string) =>
    call('POST', '/api/register', { username, password }),
  login: (username: string, password: string) =>
    call('POST', '/api/login', { username, password }).then(signedIn),
  visitor: (name: string) => call('POST', '/api/visitor', { name }).then(signedIn),
  logout: async () => {
    signedOut = true;
    loggingOut = true;
    try {
      return await call('POST', '/api/logout');
    } catch (err) {
      signedOut = false; // still logged in
      throw err;
    } finally {
      loggingOut = false;
    }
  },
  setStatus: (status: Me['status']) => call('PUT', '/api/status', { status }),
  channels: () => call<Channel[]>('GET', '/api/channels'),
  directory: () => call<Channel[]>('GET', '/api/directory'),
  peers: () => call<Peer[]>('GET', '/api/peers'),
  create: (name: string, allowVisitors: boolean) =>
    call<Channel>('POST', '/api/channels', { name, allowVisitors }),
  join: (id: string) => call<Channel>('POST', `/api/channels/${id}/join`),
  leave: (id: string) => call('POST', `/api/channels/${id}/leave`),
  /** The owner's changes (README "Channels"). */
  updateChannel: (id: string, change: { name?: string; topic?: string; allowVisitors?: boolean }) =>
    call('PATCH', `/api/channels/${id}`, change),
  removeMember: (id: string, username: string) =>
    call('DELETE', `/api/channels/${id}/members/${encodeURIComponent(username)}`),
  deleteChannel: (id: string) => call('DELETE', `/api/channels/${id}`),
  search: (q: string, channelId?: string) =>
    call<SearchAnswer>(
      'GET',
      `/api/search?q=${encodeURIComponent(q)}${channelId ? `&channelId=${channelId}` : ''}`,
    ),
  messages: (id: string, before?: string) =>
    call<Page>('GET', `/api/channels/${id}/messages?limit=50${before ? `&before=${before}` : ''}`),
  members: (id: string) => call<Member[]>('GET', `/api/channels/${id}/members`),
  read: (id: string) => call('POST', `/api/channels/${id}/read`),
  /** The page centred on one message (a reply's original), from this peer's copy. */
  around: (id: string, messageId: string) =>
    call<Page>('GET', `/api/channels/${id}/messages?around=${messageId}&limit=50`),
  /** A message: text, files (ids of uploads to this channel), or both. */
  post: (id: string, m: { text?: string; replyTo?: string; files?: string[] }) =>
    call<Written>('POST', `/api/channels/${id}/messages`, m),
  edit: (id: string, messageId: string, text: string) =>
    call('PATCH', `/api/channels/${id}/messages/${messageId}`, { text }),
  remove: (id: string, messageId: string) =>
    call('DELETE', `/api/channels/${id}/messages/${messageId}`),
  react: (id: string, messageId: string, emoji: string, on: boolean) =>
    call(
      on ? 'PUT' : 'DELETE',
      `/api/channels/${id}/messages/${messageId}/reactions/${encodeURIComponent(emoji)}`,
    ),
  typing: (id: string) => call('POST', `/api/channels/${id}/typing`),
  streams: () => call<Stream[]>('GET', '/api/streams'),
  goLive: (channelId: string, fps: number, bitrateKbps: number) =>
    call<Schemas['NewStream']>('POST', `/api/channels/${channelId}/streams`, {
      source: 'browser',
      fps,
      bitrateKbps,
    }),
  endStream: (id: string) => call('DELETE', `/api/streams/${id}`),
  /** Who of these users has an avatar (at most 100 names; those without one are left out). */
  avatars: (users: string[]) =>
    call<Avatar[]>('GET', `/api/avatars?users=${users.map(encodeURIComponent).join(',')}`),
  /** Sets your avatar: the picture's bytes, typed PNG, JPEG or WebP, at most 256 KiB. */
  setAvatar: async (picture: Blob): Promise<Avatar> => {
    const res = await reach('/api/me/avatar', {
      method: 'PUT',
      headers: { ...authHeaders(), 'content-type': picture.type },
      body: picture,
    });
    const text = await res.text();
    if (!res.ok) throw errorOf(res.status, res.statusText, text);
    return JSON.parse(text) as Avatar;
  },
  watch: (id: string, streamer: string) =>
    call<Schemas['Watching']>('POST', `/api/streams/${id}/watch`, { streamer }),
  unwatch: (id: string) => call('DELETE', `/api/streams/${id}/watch`),
  /** Your bots and REST API tokens (docs/REST.md "Tokens"). */
  bots: async () => (await call<Answer<'/api/bots'>>('GET', '/api/bots')).bots,
  createBot: (username: string) => call<Bot>('POST', '/api/bots', { username }),
  tokens: async () => (await call<Answer<'/api/tokens'>>('GET', '/api/tokens')).tokens,
  createToken: (t: NewToken) => call<MadeToken>('POST', '/api/tokens', t),
  revokeToken: (id: string) => call('DELETE', `/api/tokens/${encodeURIComponent(id)}`),
  /** Your messages not delivered, pending or failed, in every channel (README "Local API"). */
  outbox: async () => (await call<Answer<'/api/outbox'>>('GET', '/api/outbox')).messages,
  /** Dismisses a failed message of yours: it goes from this peer. */
  dismiss: (id: string) => call('DELETE', `/api/outbox/${encodeURIComponent(id)}`),
};

/** Orders messages as every replica does: (ts, lc, id). */
export function byChannelOrder(a: Message, b: Message): number {
  return a.ts - b.ts || a.lc - b.lc || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}
