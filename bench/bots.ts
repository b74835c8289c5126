/**
 * Bots as their users meet them (issue 17): a person mentions a bot and waits for its answer.
 * A real `bin/hchat server`; alice on the wire protocol, as her peer speaks it (TLS, a signed
 * post, the answer pushed to her subscribed connection); the bot a real `bin/hchat bot` process
 * on the REST API and its gateway. Mention to answer: alice's post sent → the bot's reply pushed
 * to her, `BENCH_BOT_MENTIONS` (100) one after the other, median of `BENCH_REPEATS` (3) runs.
 * Anchor, same run: the same round trip when the answering side is a second wire client that
 * posts its reply as soon as the mention is pushed to it (what a bot built into a peer would
 * cost): what REST, the gateway and the bot process add is the difference.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { v7 as uuidv7 } from 'uuid';
import type { StoredMessage } from '../src/protocol/common.js';
import { messageId } from '../src/shared/message-id.js';
import { newSessionKeys, signMessage, type SessionKeys } from '../src/shared/signing.js';
import { Client, ROOT, startServer, stopProcess, type ServerAddress } from './harness.js';
import { median } from './stats.js';

const MENTIONS = Number(process.env.BENCH_BOT_MENTIONS ?? 100);
const REPEATS = Number(process.env.BENCH_REPEATS ?? 3);
/** How long one answer may take before the run fails. */
const ANSWER_MS = 10_000;

interface Person {
  c: Client;
  keys: SessionKeys;
  cert: string;
  name: string;
}

async function person(to: ServerAddress, name: string): Promise<Person> {
  const c = await Client.connect(to, true);
  const keys = newSessionKeys();
  await c.request('register', { username: name, password: `${name}-bench` });
  const s = await c.request('login', {
    username: name,
    password: `${name}-bench`,
    publicKey: keys.publicKey,
  });
  return { c, keys, cert: s.cert as string, name };
}

let lastTs = 0;
/** A signed post of `text` by `p` (mentioning `mentions`), as a peer makes it. */
function post(p: Person, channelId: string, text: string, extra: object = {}): Promise<unknown> {
  const ts = Math.max(Date.now(), lastTs + 1);
  lastTs = ts;
  const base = { channelId, author: p.name, ts, lc: 0, text, ...extra };
  const id = messageId(base);
  const { author: _a, ...wire } = base;
  return p.c.request('post', {
    message: { ...wire, id, sig: signMessage({ ...base, id }, p.keys), cert: p.cert },
  });
}

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** Mention → answer, `MENTIONS` times one after the other; p50 and p99 in ms. */
async function roundTrips(
  alice: Person,
  channelId: string,
  bot: string,
): Promise<{ p50: number; p99: number }> {
  const ms: number[] = [];
  for (let i = 0; i < MENTIONS; i++) {
    const t0 = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const answered = new Promise<void>((resolve, reject) => {
      // A bench that waits for ever tells nothing: a missing answer fails the run, naming it.
      timer = setTimeout(
        () => reject(new Error(`${bot} did not answer "ping ${i}" within ${ANSWER_MS} ms`)),
        ANSWER_MS,
      );
      alice.c.onEvent = (f) => {
        const m = (f.body as { message?: StoredMessage } | undefined)?.message;
        if (f.ev === 'message' && m?.author === bot && m.text === `pong ${i}`) resolve();
      };
    });
    await post(alice, channelId, `@${bot} ping ${i}`, { mentions: [bot] });
    await answered.finally(() => clearTimeout(timer));
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  return { p50: percentile(ms, 0.5), p99: percentile(ms, 0.99) };
}

/** The figures for the report. */
export async function benchBots(): Promise<Record<string, number>> {
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'hchat-bench-bots-'));
  // The bot answers 100 mentions one after the other, faster than a token's default budget (20
  // requests a second): raised, so that the figures are the round trip's, not the limiter's.
  const server = await startServer(path.join(data, 'server'), undefined, false, [
    '--api-rate',
    '1000',
    '--api-burst',
    '1000',
  ]);
  const to: ServerAddress = { addr: server.ready.tcp!, fingerprint: server.ready.fingerprint };
  const http = server.ready.http!;
  const runs: { bot: { p50: number; p99: number }; wire: { p50: number; p99: number } }[] = [];
  try {
    const alice = await person(to, 'alice');
    const channelId = uuidv7();
    await alice.c.request('channel_create', { id: channelId, name: 'bench', allowVisitors: false });
    // The anchor: bob answers on the wire as soon as the mention is pushed to him.
    const bob = await person(to, 'bob');
    await bob.c.request('channel_join', { channelId });
    bob.c.onEvent = (f) => {
      const m = (f.body as { message?: StoredMessage } | undefined)?.message;
      if (f.ev === 'message' && m?.mentions?.includes('bob'))
        void post(bob, channelId, m.text!.replace('@bob ping', 'pong'));
    };
    // The bot: made by alice, on its token, joined through its config.
    await alice.c.request('bot_create', { username: 'pinger' });
    const token = await alice.c.request('token_create', {
      name: 'bench',
      account: 'pinger',
      scopes: ['read', 'write'],
    });
    const config = path.join(data, 'bot.json');
    fs.writeFileSync(path.join(data, 'bot.token'), token.token, { mode: 0o600 });
    fs.writeFileSync(
      config,
      JSON.stringify({
        channels: [channelId],
        tokenFile: 'bot.token',
        // The rules read the text without the bot's own mention: "ping 7".
        rules: [{ when: { regex: '^ping (\\d+)$' }, reply: 'pong {1}' }],
      }),
    );
    const proc = spawn(process.execPath, ['bin/hchat', 'bot', '--config', config, '--url', http], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      await new Promise<void>((resolve, reject) => {
        let out = '';
        proc.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          if (/^ready /m.test(out)) resolve();
        });
        proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
        proc.once('exit', (code) => reject(new Error(`hchat bot exited ${code}: ${out}`)));
      });
      await alice.c.request('subscribe', { channelIds: [channelId] });
      for (let r = 0; r < REPEATS; r++) {
        const bot = await roundTrips(alice, channelId, 'pinger');
        const wire = await roundTrips(alice, channelId, 'bob');
        runs.push({ bot, wire });
        console.log(
          `  run ${r + 1}: bot p50 ${bot.p50.toFixed(1)} ms, p99 ${bot.p99.toFixed(1)} ms; ` +
            `wire anchor p50 ${wire.p50.toFixed(1)} ms, p99 ${wire.p99.toFixed(1)} ms`,
        );
      }
    } finally {
      proc.kill('SIGTERM');
    }
    alice.c.close();
    bob.c.close();
  } finally {
    await stopProcess(server.proc);
    fs.rmSync(data, { recursive: true, force: true });
  }
  const out = {
    mentions: MENTIONS,
    runs: runs.length,
    botP50Ms: median(runs.map((r) => r.bot.p50)),
    botP99Ms: median(runs.map((r) => r.bot.p99)),
    wireP50Ms: median(runs.map((r) => r.wire.p50)),
    wireP99Ms: median(runs.map((r) => r.wire.p99)),
  };
  return { ...out, botToWireP50: out.botP50Ms / out.wireP50Ms };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await benchBots(), null, 2));
}
