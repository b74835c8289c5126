/**
 * The part of `hchat bot --help` after the options: the config file's format, in brief (the
 * schema is src/bot/config.ts; README "Write a bot in 5 minutes" has the full example).
 */
import { BOT_LIMITS } from '../shared/limits.js';

/** The config's format, after `hchat bot`'s options. */
export const BOT_HELP = `
Config file (JSON; examples/autoresponder.json is a complete one):
  {
    "channels": ["<channel id>", …],     join these at start (optional)
    "tokenFile": "bot.token",            the token, read at start (optional; relative to the config)
    "rules": [                           the first rule that matches a message answers it
      { "when": "mention", "reply": "Hi @{author}!" },
      { "when": {"keyword": "help"}, "reply": "…", "react": "👋", "cooldownSeconds": 60 },
      { "when": {"regex": "^ticket (\\\\d+)$", "flags": "i"}, "reply": "Ticket {1}: …" }
    ],
    "away": { "message": "@{owner} is away; they will see this later." }   (optional)
  }
  Templates: {author}, {text} (the text without the bot's mention), {channel} (its name),
  {owner}, {match} and {1}…{9} (what a regex matched, and its groups). A reply mentions only
  the names its template writes (@alice, @{author}, @{owner}), never one from someone's text.
  Each rule needs a "reply" and/or a "react"; "cooldownSeconds" is per rule and channel (while
  the first matching rule cools down, the message gets nothing). Keywords match a whole word in
  any case; keyword and regex rules look at the text without the bot's mention. A regex is at
  most ${BOT_LIMITS.maxPatternChars} characters and runs on the first ${BOT_LIMITS.regexInputChars} characters of a text; the config is trusted
  (you wrote it), the messages are not. Messages by the bot itself or by any other bot (their
  certificate says bot) are never answered, so two bots cannot loop. It runs only on a bot's
  token: make the bot and a token that acts as it ("Bots and tokens" in the web UI); on your
  own token it stops at start. A name filled in never pings as @here: only a literal @here in
  the template does.

  away: direct messages are end-to-end encrypted between devices and a bot has none, so it
  cannot answer its owner's DMs. Instead, when a channel message mentions the bot's owner and
  the owner is not online (not in GET /presence), and no rule answered it, the bot replies with
  this template, at most once per ${BOT_LIMITS.awayCooldownMs / 60_000} minutes per channel.

The bot logs one line per action on stdout (replied, reacted, away, error; never the token),
and "ready bot=<name> channels=<n>" once it listens. An answer past the token's request budget
(429) is sent when the server allows ("limited retry_ms=<n>"), not dropped. Tokens, scopes and the API: docs/REST.md.
`;
