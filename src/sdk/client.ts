/**
 * The Hybrid Chat bot SDK (issue 17; docs/REST.md): a typed client of the REST API v1 that signs
 * what it posts, as every author does (docs/PROTOCOL.md §2.1). At `connect` it makes a fresh
 * Ed25519 key, has the server certify it for the token's account (`POST /keys`), and from then
 * on derives each item's id from its content, stamps it with a hybrid logical clock and signs
 * it; members check the signature against the certificate, so none has to trust the server.
 */
import type { z } from 'zod';
import type { Channel, StoredMessage } from '../protocol/common.js';
import type { History, Items, RestMe } from '../protocol/rest.js';
import type { OpRes } from '../protocol/server-link.js';
import { HybridClock } from '../shared/hlc.js';
import { messageId, type IdFields } from '../shared/message-id.js';
import { namedMentions } from '../shared/mention-syntax.js';
import { newSessionKeys, signMessage, type SessionKeys } from '../shared/signing.js';
import { GatewayConnection, type GatewayFrame } from './gateway.js';

/** An error answer of the API: the wire protocol's code, why, and the HTTP status. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(`${code}: ${message}`);
  }
}

/** What `post` and `reply` may add to a message's text. */
export interface PostOptions {
  replyTo?: string;
  /**
   * Names mentioned (lower case), or `here`. Receivers count only those the text writes as
   * `@name` (PROTOCOL.md §2.2): a name listed here but absent from the text pings nobody.
   */
  mentions?: string[];
}

/**
 * Whom a message mentions: the names of its signed `mentions` that its text writes (`@name`,
 * `@here`). Read mentions through this, never `m.mentions` alone: any member can sign a list
 * of names its text does not show (a silent ping), and receivers ignore those (§2.2).
 */
export function mentionsOf(m: { text?: string; mentions?: readonly string[] }): string[] {
  return namedMentions(m.text, m.mentions);
}

export interface ConnectOptions {
  /** The server's HTTP base, e.g. `http://127.0.0.1:8080`. */
  url: string;
  /** The API token (`tok_….…`), as shown once when it was made. */
  token: string;
}

/** A bot's (or a script's) connection to the REST API, signing as the token's account. */
export class BotClient {
  private readonly clock = new HybridClock();

  private constructor(
    private readonly base: string,
    private readonly token: string,
    private readonly keys: SessionKeys,
    private readonly cert: string,
    /** Who the token acts as. */
    readonly me: z.infer<typeof RestMe>,
  ) {}

  /** Checks the token, certifies a fresh key for it, and reads who it acts as. */
  static async connect(o: ConnectOptions): Promise<BotClient> {
    const base = o.url.replace(/\/+$/, '') + '/api/v1';
    const keys = newSessionKeys();
    const cert = (await request(base, o.token, 'POST', '/keys', { publicKey: keys.publicKey })) as {
      cert: string;
    };
    const me = (await request(base, o.token, 'GET', '/users/@me')) as z.infer<typeof RestMe>;
    return new BotClient(base, o.token, keys, cert.cert, me);
  }

  /** Any route of the API, answered as JSON (for what the typed methods do not cover). */
  request(method: string, path: string, body?: unknown): Promise<unknown> {
    return request(this.base, this.token, method, path, body);
  }

  async channels(): Promise<Channel[]> {
    return ((await this.request('GET', '/users/@me/channels')) as { channels: Channel[] }).channels;
  }

  async directory(after?: string): Promise<OpRes<'directory'>> {
    const q = after ? `?after=${encodeURIComponent(after)}` : '';
    return (await this.request('GET', `/channels${q}`)) as OpRes<'directory'>;
  }

  async join(channelId: string): Promise<Channel> {
    return (await this.request('POST', `/channels/${channelId}/join`)) as Channel;
  }

  async members(channelId: string): Promise<string[]> {
    return ((await this.request('GET', `/channels/${channelId}/members`)) as { members: string[] })
      .members;
  }

  /** A history page: the newest `limit` messages before `before` (or the newest). */
  async history(
    channelId: string,
    o: { limit?: number; before?: string } = {},
  ): Promise<z.infer<typeof History>> {
    const q = new URLSearchParams({ limit: String(o.limit ?? 50) });
    if (o.before) q.set('before', o.before);
    const page = (await this.request('GET', `/channels/${channelId}/messages?${q}`)) as z.infer<
      typeof History
    >;
    this.observe(page.messages);
    this.observe(page.related);
    return page;
  }

  /** Every item with a seq above `since` (catch-up), and the channel's last seq. */
  async items(channelId: string, since: number, limit = 500): Promise<z.infer<typeof Items>> {
    const page = (await this.request(
      'GET',
      `/channels/${channelId}/items?since=${since}&limit=${limit}`,
    )) as z.infer<typeof Items>;
    this.observe(page.messages);
    return page;
  }

  /** Posts a signed message; resolves with its id and seq. */
  post(channelId: string, text: string, o: PostOptions = {}): Promise<OpRes<'post'>> {
    return this.postItem({ channelId, text, replyTo: o.replyTo, mentions: o.mentions });
  }

  /** Answers `to` in its channel, as a reply to it. */
  reply(to: StoredMessage, text: string, o: Omit<PostOptions, 'replyTo'> = {}) {
    return this.post(to.channelId, text, { ...o, replyTo: to.id });
  }

  /** Reacts to a message with an emoji. */
  react(to: StoredMessage, emoji: string): Promise<OpRes<'post'>> {
    return this.postItem({ channelId: to.channelId, kind: 'react', target: to.id, emoji });
  }

  /**
   * Signs and posts any item of a channel's log (docs/PROTOCOL.md §2.2): its time is read from
   * the clock, which has seen every item this client read, so it orders after them.
   */
  async postItem(fields: Omit<IdFields, 'author' | 'ts' | 'lc'>): Promise<OpRes<'post'>> {
    const item = Object.fromEntries(
      Object.entries({ ...fields, author: this.me.username, ...this.clock.tick() }).filter(
        ([, v]) => v !== undefined,
      ),
    ) as unknown as IdFields;
    const id = messageId(item);
    const sig = signMessage({ ...item, id }, this.keys);
    const { author: _author, ...wire } = item;
    return (await this.request('POST', `/channels/${fields.channelId}/messages`, {
      ...wire,
      id,
      sig,
      cert: this.cert,
    })) as OpRes<'post'>;
  }

  /** A channel's last seq now (where reading from this moment on starts). */
  private async lastSeq(channelId: string): Promise<number> {
    return (await this.items(channelId, 0, 1)).lastSeq;
  }

  /**
   * Where each of the account's channels stands now (channel id → its last seq): `newItems`'
   * cursors to read from this moment on, fixed before anything else happens.
   */
  async positions(): Promise<Map<string, number>> {
    const at = new Map<string, number>();
    for (const c of await this.channels()) at.set(c.id, await this.lastSeq(c.id));
    return at;
  }

  /**
   * Every new item of the channels the account is a member of, as it arrives, from now on
   * (items already there are not replayed), until `signal` aborts or the token is refused.
   * Pushed by the gateway; each channel's items come once each, in seq order: a gap (a cut
   * the gateway could not resume) is filled from `GET …/items` before what follows it. Items the
   * client posted itself are included: skip them by `author`.
   *
   * `cursors` (channel id → the last seq read) says where each channel's reading stands; a
   * channel not in it starts from now. It is updated as each item is handed out, so a caller
   * that passes the same map again after an error (a 429, the server away) resumes where it
   * stopped, losing nothing and repeating nothing.
   */
  async *newItems(
    o: { signal?: AbortSignal; cursors?: Map<string, number> } = {},
  ): AsyncGenerator<StoredMessage> {
    const cursors = o.cursors ?? new Map<string, number>();
    const queue: GatewayFrame[] = [];
    let wake: (() => void) | undefined;
    const gw = new GatewayConnection(
      this.base.replace(/^http/, 'ws') + '/gateway',
      this.token,
      (f) => {
        queue.push(f);
        wake?.();
      },
    );
    this.gatewayConn = gw;
    o.signal?.addEventListener('abort', () => (gw.stop(), wake?.()), { once: true });
    gw.start();
    /** Items of `channelId` after its cursor up to `upTo` (or all), fetched page by page. */
    const fill = async function* (self: BotClient, channelId: string, upTo = Infinity) {
      for (;;) {
        const since = cursors.get(channelId)!;
        if (since >= upTo) return;
        const page = await self.items(channelId, since);
        for (const m of page.messages) {
          if (m.seq > upTo) return;
          cursors.set(channelId, m.seq);
          yield m;
        }
        if (page.messages.length === 0 || cursors.get(channelId)! >= page.lastSeq) return;
      }
    };
    try {
      while (!o.signal?.aborted) {
        const f = queue.shift();
        if (!f) {
          // Stopped (a refused token says so in a last frame, handled above): nothing more.
          if (gw.stopping) break;
          await new Promise<void>((resolve) => (wake = resolve));
          continue;
        }
        if (f.t === 'fatal') throw new ApiError(401, 'E_TOKEN_INVALID', f.reason);
        if (f.t === 'ready') {
          // A new session: channels not seen yet start now; the others catch up what a cut
          // that could not be resumed missed.
          for (const id of f.channels) {
            if (!cursors.has(id)) cursors.set(id, await this.lastSeq(id));
            else yield* fill(this, id);
          }
        } else if (f.t === 'event' && f.type === 'message') {
          const m = (f.data as { message: StoredMessage }).message;
          this.clock.observe(m);
          if (!cursors.has(m.channelId)) cursors.set(m.channelId, m.seq - 1);
          const at = cursors.get(m.channelId)!;
          if (m.seq <= at) continue;
          if (m.seq > at + 1) yield* fill(this, m.channelId, m.seq - 1);
          cursors.set(m.channelId, m.seq);
          yield m;
        }
      }
    } finally {
      gw.stop();
    }
  }

  /** The gateway connection of `newItems`, if one runs (tests cut it). */
  gatewayConn: GatewayConnection | undefined;

  /** Lets the clock see items read elsewhere (the gateway), so later posts order after them. */
  observe(items: readonly StoredMessage[]): void {
    for (const m of items) this.clock.observe(m);
  }
}

async function request(
  base: string,
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<unknown> {
  const res = await fetch(base + path, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = (await res.json().catch(() => undefined)) as
    { error?: { code: string; message: string; retryAfterMs?: number } } | undefined;
  if (!res.ok) {
    const e = json?.error;
    throw new ApiError(
      res.status,
      e?.code ?? 'E_INTERNAL',
      e?.message ?? res.statusText,
      e?.retryAfterMs,
    );
  }
  return json;
}
