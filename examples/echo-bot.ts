/**
 * An echo bot in 20 lines (docs/REST.md): it answers every message that mentions it with the same
 * text. Run: `HCHAT_URL=http://127.0.0.1:8080 HCHAT_TOKEN=tok_… node --import tsx examples/echo-bot.ts`
 */
import { BotClient } from '../src/sdk/client.js';

const bot = await BotClient.connect({
  url: process.env.HCHAT_URL!,
  token: process.env.HCHAT_TOKEN!,
});
const me = bot.me.username.toLowerCase();
const seen = new Map<string, number>();
for (const c of await bot.channels()) seen.set(c.id, (await bot.items(c.id, 0, 1)).lastSeq);
console.log(`echo bot ${bot.me.username} ready in ${seen.size} channels`);
for (;;) {
  for (const [channelId, since] of seen) {
    const { messages, lastSeq } = await bot.items(channelId, since);
    for (const m of messages)
      if (m.mentions?.includes(me) && m.text)
        await bot.reply(m, m.text.replace(`@${me}`, '').trim() || '…');
    seen.set(channelId, messages.at(-1)?.seq ?? Math.max(since, lastSeq));
  }
  await new Promise((r) => setTimeout(r, 500));
}
