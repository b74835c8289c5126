/**
 * An echo bot in 20 lines (docs/REST.md): it answers every message that mentions it with the same
 * text. Run: `HCHAT_URL=http://127.0.0.1:8080 HCHAT_TOKEN=tok_… node --import tsx examples/echo-bot.ts`
 */
import { BotClient, mentionsOf } from '../src/sdk/client.js';

const bot = await BotClient.connect({
  url: process.env.HCHAT_URL!,
  token: process.env.HCHAT_TOKEN!,
});
const me = bot.me.username.toLowerCase();
const from = await bot.positions(); // read from here on: nothing posted after "ready" is missed
console.log(`echo bot ${bot.me.username} ready in ${from.size} channels`);

for await (const m of bot.newItems({ cursors: from })) {
  // Messages (not edits or reactions) by others that mention this bot (`@bot` in the text).
  if ((m.kind ?? 'message') !== 'message' || m.author.toLowerCase() === me) continue;
  if (!mentionsOf(m).includes(me) || !m.text) continue;
  await bot.reply(m, m.text.replace(`@${me}`, '').trim() || '…');
}
