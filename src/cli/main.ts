/**
 * `hchat`: the one command of Hybrid Chat (SPEC §10). Every flag has an environment variable
 * (`HCHAT_<FLAG>`), shown in `--help`.
 */
import { Command } from 'commander';
import { addBotCommand } from './bot-command.js';
import { addDemoCommand } from './demo-command.js';
import { addPeerCommand } from './peer-command.js';
import { addServerCommand } from './server-command.js';
import { redactedArgs } from './options.js';

const program = new Command()
  .name('hchat')
  .description(
    "Hybrid Chat: channels hosted on their owners' peers, with a central server as tracker and backup",
  )
  .showHelpAfterError();

// In this order in --help. Each command loads only its own part when it runs (dynamic imports).
addServerCommand(program);
addPeerCommand(program);
addDemoCommand(program);
addBotCommand(program);

// A secret on the command line (--api-token, --token, a URL's credentials) is readable by every
// local user in the process list: show the command without it from now on (process.title
// rewrites what /proc/<pid>/cmdline answers). It was readable while Node started: the
// environment variables (HCHAT_API_TOKEN, …), private to the user, never are.
const shown = redactedArgs(process.argv.slice(2));
if (shown) process.title = ['hchat', ...shown].join(' ');

program.parseAsync(process.argv).catch((err: unknown) => {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'EADDRINUSE')
    console.error(`hchat: ${e.message}: choose another port (0 picks a free one)`);
  else console.error('hchat:', e.message ?? err);
  process.exit(1);
});
