/**
 * `hchat bot`: the autoresponder (src/bot/) from its config file, checked before anything starts,
 * on the REST API v1 with a bot's token.
 */
import fs from 'node:fs';
import type { Command } from 'commander';
import { BOT_HELP } from './bot-help.js';
import { BotConfigError, loadBotConfig, type BotConfig } from '../bot/config.js';
import { opt } from './env-option.js';
import { onSignals } from './signals.js';
import { parseHttpUrl } from './options.js';

/** Adds `hchat bot` to `program`. */
export function addBotCommand(program: Command): void {
  program
    .command('bot')
    .description(
      'run an autoresponder bot on the REST API v1 (docs/REST.md): it answers mentions, keywords and regexes with templates, from a config file',
    )
    .addOption(opt('--config <file.json>', 'the bot’s rules (format below)', 'HCHAT_BOT_CONFIG'))
    .addOption(
      opt(
        '--url <url>',
        "the server's HTTP base, as its ready line prints it (http=…)",
        'HCHAT_URL',
      ).argParser(parseHttpUrl),
    )
    .addOption(
      opt(
        '--token <token>',
        'the bot’s API token (better: HCHAT_TOKEN, or tokenFile in the config, out of shell history)',
        'HCHAT_TOKEN',
      ),
    )
    .addHelpText('after', BOT_HELP)
    .action(async (o: { config?: string; url?: string; token?: string }, cmd: Command) => {
      const fail = (why: string): never => cmd.error(`error: ${why}`);
      // Required, checked here: commander's own check comes before the one for unknown options,
      // which then went unnamed (a typo reported as a missing --config).
      if (!o.config) return fail("required option '--config <file.json>' not specified");
      let config: BotConfig;
      try {
        config = loadBotConfig(o.config);
      } catch (err) {
        if (!(err instanceof BotConfigError)) throw err;
        return fail(`config ${o.config}: ${err.message}`);
      }
      const url = o.url ?? fail("required option '--url <url>' not specified");
      let token = o.token;
      if (token === undefined && config.tokenFile !== undefined) {
        try {
          token = fs.readFileSync(config.tokenFile, 'utf8').trim();
        } catch (err) {
          fail(`config ${o.config}: tokenFile: ${(err as Error).message}`);
        }
      }
      if (!token) return fail('no token: give --token, HCHAT_TOKEN or tokenFile in the config');
      const { startBot } = await import('../bot/run.js');
      const bot = await startBot({ url, token, config, log: (l) => console.log(l) });
      onSignals(() => bot.stop());
      console.log(`ready bot=${bot.name} channels=${bot.channels}`);
      bot.done.catch((err: unknown) => {
        console.error(`hchat bot: stopped: ${(err as Error).message}`);
        process.exit(1);
      });
    });
}
