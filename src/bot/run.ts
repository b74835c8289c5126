/**
 * `hchat bot` running: connects with the SDK (src/sdk/client.ts), joins the config's channels,
 * reads every new message of its channels and does what src/bot/rules.ts decides (reply,
 * react, away message), logging one line per action on `log` (never the token). A failed poll
 * (the server away, a 429) is retried after a wait, from where the reading stopped; a token
 * that stops holding (revoked, expired) ends the bot.
 */
import type { StoredMessage } from '../protocol/common.js';
import { ApiError, BotClient } from '../sdk/client.js';
import { encodeLogValue } from '../shared/connlog.js';
import { BOT_LIMITS } from '../shared/limits.js';
import type { BotConfig } from './config.js';
import {
  Cooldowns,
  awayReply,
  decide,
  isForBot,
  mentionsOwner,
  type SeenMessage,
} from './rules.js';

export interface BotRunOptions {
  /** The server's HTTP base. */
  url: string;
  token: string;
  config: BotConfig;
  /** Where the action lines go (stdout for the CLI). */
  log: (line: string) => void;
}

/** A running bot. */
export interface RunningBot {
  /** The account it acts as. */
  name: string;
  /** Channels it listens in. */
  channels: number;
  /** Stops reading; resolves when the loop has ended. */
  stop(): Promise<void>;
  /** Resolves when the bot stops, rejects when it cannot go on (its token refused). */
  done: Promise<void>;
}

/** One log line: `<what> key=value …`, values encoded as in the connection log. */
function line(what: string, fields: Record<string, string | number | undefined>): string {
  let out = what;
  for (const [k, v] of Object.entries(fields))
    if (v !== undefined) out += ` ${k}=${encodeLogValue(v)}`;
  return out;
}

/** Connects, joins, fixes where reading starts, and starts answering. */
export async function startBot(o: BotRunOptions): Promise<RunningBot> {
  const bot = await BotClient.connect({ url: o.url, token: o.token }).catch((err: unknown) => {
    if (err instanceof ApiError) throw err;
    // fetch's own error says only "fetch failed": the reason is its cause.
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new Error(`cannot reach ${o.url}: ${cause?.code ?? cause?.message ?? why(err)}`);
  });
  const me = bot.me.username;
  // Only a bot's account: its certificate says `bot: true`, which every `hchat bot` skips, so
  // two of them never answer each other. On a person's account (a user's own token) two bots
  // would take each other's replies for a person's words and answer for ever.
  if (bot.me.bot !== true) throw new NotABotError(me);
  const owner = bot.me.owner;
  for (const [i, id] of o.config.channels.entries()) {
    try {
      await bot.join(id);
    } catch (err) {
      throw new Error(`channels[${i}] (${id}): ${(err as Error).message}`);
    }
  }
  const names = new Map<string, string>();
  for (const c of await bot.channels()) names.set(c.id, c.name);
  // Fixed before the ready line: a message posted once the bot says it is ready is seen.
  const cursors = await bot.positions();
  const cooldowns = new Cooldowns();
  const abort = new AbortController();

  const channelName = async (id: string): Promise<string> => {
    if (!names.has(id)) for (const c of await bot.channels()) names.set(c.id, c.name);
    return names.get(id) ?? id;
  };

  /** Whether the owner has a session the bot may see online (invisible counts as away). */
  const ownerOnline = async (): Promise<boolean> => {
    let after: string | undefined;
    do {
      const q = after ? `?after=${encodeURIComponent(after)}` : '';
      const page = (await bot.request('GET', `/presence${q}`)) as {
        peers: { username: string }[];
        next?: string;
      };
      if (page.peers.some((p) => p.username.toLowerCase() === owner!.toLowerCase())) return true;
      after = page.next;
    } while (after);
    return false;
  };

  const handle = async (m: StoredMessage): Promise<void> => {
    if (!isForBot(m, me)) return;
    const seen: SeenMessage & { channelId: string } = {
      author: m.author,
      text: m.text!,
      mentions: m.mentions ?? [],
      channel: await channelName(m.channelId),
      channelId: m.channelId,
    };
    const where = { channel: seen.channel, to: m.author };
    const action = decide(o.config.rules, seen, { me, owner }, cooldowns, Date.now());
    if (action) {
      const rule = action.rule.index;
      if (action.reply) {
        const reply = action.reply;
        const r = await whenAllowed(() => bot.reply(m, reply.text, { mentions: reply.mentions }));
        o.log(line('replied', { ...where, rule, message: r.id }));
      }
      if (action.react) {
        const emoji = action.react;
        await whenAllowed(() => bot.react(m, emoji));
        o.log(line('reacted', { ...where, rule, emoji: action.react }));
      }
      return;
    }
    const away = o.config.away;
    if (!away || !mentionsOwner(seen, owner)) return;
    const key = `away:${m.channelId}`;
    if (!cooldowns.ready(key, BOT_LIMITS.awayCooldownMs, Date.now())) return;
    if (await ownerOnline()) return;
    cooldowns.mark(key, Date.now());
    const reply = awayReply(away.message, seen, { me, owner });
    if (!reply) return;
    const r = await whenAllowed(() => bot.reply(m, reply.text, { mentions: reply.mentions }));
    o.log(line('away', { ...where, owner, message: r.id }));
  };

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      abort.signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
    });

  /**
   * An answer past the token's budget (429) is sent when the server says it may be, not
   * dropped: a person who asked gets it late rather than never. At most `limitedTries` tries.
   */
  const whenAllowed = async <T>(send: () => Promise<T>): Promise<T> => {
    for (let tries = 1; ; tries++) {
      try {
        return await send();
      } catch (err) {
        const limited = err instanceof ApiError && err.status === 429;
        if (!limited || tries >= BOT_LIMITS.limitedTries || abort.signal.aborted) throw err;
        const ms = err.retryAfterMs ?? BOT_LIMITS.retryMinMs;
        o.log(line('limited', { retry_ms: ms }));
        await sleep(ms);
      }
    }
  };

  const done = (async () => {
    let wait: number = BOT_LIMITS.retryMinMs;
    while (!abort.signal.aborted) {
      try {
        for await (const m of bot.newItems({ signal: abort.signal, cursors })) {
          try {
            await handle(m);
          } catch (err) {
            // One message's answer failed (refused, limited): the next ones still get theirs.
            if (isFatal(err)) throw err;
            o.log(line('error', { channel: names.get(m.channelId), message: m.id, why: why(err) }));
          }
          wait = BOT_LIMITS.retryMinMs;
        }
      } catch (err) {
        if (abort.signal.aborted) break;
        if (isFatal(err)) throw err;
        const ms = (err instanceof ApiError && err.retryAfterMs) || wait;
        o.log(line('error', { why: why(err), retry_ms: ms }));
        await sleep(ms);
        wait = Math.min(wait * 2, BOT_LIMITS.retryMaxMs);
      }
    }
  })();
  done.catch(() => abort.abort());

  return {
    name: me,
    channels: cursors.size,
    async stop() {
      abort.abort();
      await done.catch(() => undefined);
    },
    done,
  };
}

/** A token that acts as a person's account, not a bot's: `hchat bot` does not run on it. */
export class NotABotError extends Error {
  constructor(readonly account: string) {
    super(
      `the token acts as ${account}, a person's account, not a bot's: hchat bot runs only as a bot ` +
        `(its messages are marked as a bot's, and bots never answer bots, so two cannot loop). ` +
        `Make a bot and a token that acts as it: in the web UI, "Bots and tokens" (create the bot, ` +
        `then a token for it, "Read and write"); or through your peer's local API, ` +
        `POST /api/bots {"username": "<bot>"} then POST /api/tokens {"name": "<bot>", ` +
        `"account": "<bot>", "scopes": ["read", "write"]} (README "Write a bot in 5 minutes").`,
    );
  }
}

/** A token refused: nothing the bot does can work any more. */
function isFatal(err: unknown): boolean {
  return err instanceof ApiError && err.status === 401;
}

function why(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
