/**
 * `hchat`: the one command of Hybrid Chat (SPEC §10). Every flag has an environment variable
 * (`HCHAT_<FLAG>`), shown in `--help`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command, Option } from 'commander';
import type { HchatError } from '../protocol/errors.js';
import type { NatsBus } from '../server/bus-nats.js';
import { formatRecord } from '../shared/connlog.js';
import { BOT_HELP } from './bot-help.js';
import { BotConfigError, loadBotConfig, type BotConfig } from '../bot/config.js';
import { LOG_LEVELS, createOpsLog, type LogLevel } from '../server/ops-log.js';
import {
  parseCount,
  parseApiToken,
  parseFanout,
  parseBus,
  parseBusNamespace,
  parseBytes,
  parseHost,
  parseServers,
  parseFingerprint,
  parseHttpUrl,
  parseMs,
  parseDrainMs,
  parsePort,
  parsePortOrOff,
  parsePrefixBits,
  parseRate,
  parseThreads,
  parseStoreUrl,
  redactedArgs,
} from './options.js';

const defaultData = (what: string) => path.join(os.homedir(), '.hchat', what);

function opt(flags: string, description: string, env: string): Option {
  return new Option(flags, description).env(env);
}

/**
 * Runs `stop` on SIGINT, SIGTERM (a supervisor) or SIGHUP (a closing terminal), then exits;
 * `onTerm`, when given, runs instead on SIGTERM. Returns the stop, for other reasons to end.
 */
function onSignals(stop: () => Promise<void>, onTerm?: () => Promise<void>): () => void {
  let stopping = false;
  const handler = (signal?: NodeJS.Signals) => {
    // A second signal while stopping (a drain, a store that hangs) ends the process at once.
    if (stopping) {
      if (signal) process.exit(1);
      return;
    }
    stopping = true;
    (signal === 'SIGTERM' && onTerm ? onTerm : stop)().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error('hchat: error while stopping:', err);
        process.exit(1);
      },
    );
  };
  for (const s of STOP_SIGNALS) process.on(s, handler);
  return () => handler();
}

/** Signals that stop a process: Ctrl-C, a supervisor, a closing terminal. */
const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * Calls `stop` when the process that started this one ends (it is then adopted by init or a
 * subreaper): `npm start` killed by a signal it does not pass on leaves no demo behind.
 */
function stopWithParent(stop: () => void, parent: number): void {
  if (process.ppid !== parent) stop();
  setInterval(() => {
    if (process.ppid !== parent) stop();
  }, 500).unref();
}

/** ε of the hybrid logical clock: the same flag on the server and on peers. */
function clockSkewOption(): Option {
  return opt(
    '--max-clock-skew-ms <ms>',
    'refuse messages stamped further ahead of this clock (default 60000)',
    'HCHAT_MAX_CLOCK_SKEW_MS',
  ).argParser(parseMs);
}

const program = new Command()
  .name('hchat')
  .description(
    "Hybrid Chat: channels hosted on their owners' peers, with a central server as tracker and backup",
  )
  .showHelpAfterError();

program
  .command('server')
  .description('run the central server (tracker, accounts, channel directory, backup store)')
  .addOption(
    opt('--host <host>', 'address to listen on', 'HCHAT_HOST')
      .default('127.0.0.1')
      .argParser(parseHost),
  )
  .addOption(
    opt('--port <port>', 'TCP port of the framed protocol (0: any free port)', 'HCHAT_PORT')
      .default(7000)
      .argParser(parsePort),
  )
  .addOption(
    opt(
      '--stun-port <port>',
      'UDP port where peers learn their public address (STUN Binding; peers are told which; default 0: any free port)',
      'HCHAT_STUN_PORT',
    )
      .default(0)
      .argParser(parsePort),
  )
  .addOption(
    opt(
      '--relay-port <port>',
      'TCP port relaying P2P links and livestream media that no hole punch can carry (peers are told which; default 0: any free port; off: no relay)',
      'HCHAT_RELAY_PORT',
    )
      .default(0)
      .argParser(parsePortOrOff),
  )
  .addOption(
    opt(
      '--http-port <port>',
      'HTTP port for operators: /health, /ready, /metrics (0: any free port)',
      'HCHAT_HTTP_PORT',
    )
      .default(7080)
      .argParser(parsePort),
  )
  .addOption(
    opt(
      '--log-level <level>',
      'operational log (JSON lines on stderr) from this level up',
      'HCHAT_LOG_LEVEL',
    )
      .choices(LOG_LEVELS)
      .default('info'),
  )
  .addOption(opt('--data <dir>', 'data folder', 'HCHAT_DATA').default(defaultData('server')))
  .addOption(
    opt(
      '--store <url>',
      'PostgreSQL for accounts, channels and messages: postgres://user@host:port/db (default: SQLite in the data folder)',
      'HCHAT_STORE',
    ),
  )
  .addOption(
    opt(
      '--tls-cert <file>',
      'TLS certificate (PEM) from a CA, with --tls-key (default: a self-signed one in the data folder, made on first start)',
      'HCHAT_TLS_CERT',
    ),
  )
  .addOption(opt('--tls-key <file>', 'private key (PEM) of --tls-cert', 'HCHAT_TLS_KEY'))
  .addOption(
    opt(
      '--signing-key <file>',
      "the deployment's Ed25519 signing key (PKCS#8 PEM), the same for every instance (default: <data>/server-key.pem, made on first start)",
      'HCHAT_SIGNING_KEY',
    ),
  )
  .addOption(
    opt(
      '--drain-ms <ms>',
      'on SIGTERM, /ready answers 503 and peers are told to move to another instance; how long to wait for them before closing (default 10000)',
      'HCHAT_DRAIN_MS',
    ).argParser(parseDrainMs),
  )
  .addOption(
    opt('--heartbeat-ms <ms>', 'how often peers must send a frame', 'HCHAT_HEARTBEAT_MS')
      .default(5000)
      .argParser(parseMs),
  )
  .addOption(
    opt('--peer-timeout-ms <ms>', 'drop a peer silent this long', 'HCHAT_PEER_TIMEOUT_MS')
      .default(15000)
      .argParser(parseMs),
  )
  .addOption(
    opt(
      '--verify-threads <n>',
      "threads that check posts' signatures off the main thread (default 0: on it)",
      'HCHAT_VERIFY_THREADS',
    ).argParser(parseThreads),
  )
  .addOption(
    opt(
      '--max-registrations-per-address <n>',
      'registrations per hour from one address prefix (default 10)',
      'HCHAT_MAX_REGISTRATIONS_PER_ADDRESS',
    ).argParser(parseCount),
  )
  .addOption(
    opt(
      '--max-visitors-per-address <n>',
      'live visitor sessions from one address prefix (default 20)',
      'HCHAT_MAX_VISITORS_PER_ADDRESS',
    ).argParser(parseCount),
  )
  .addOption(
    opt(
      '--visitor-grace-ms <ms>',
      'how long a visitor session whose connection closed stays resumable (default 60000)',
      'HCHAT_VISITOR_GRACE_MS',
    ).argParser(parseMs),
  )
  .addOption(
    opt(
      '--max-tracker-entries-per-address <n>',
      'tracker entries (announced peer sessions) from one address prefix at once (default 256)',
      'HCHAT_MAX_TRACKER_ENTRIES_PER_ADDRESS',
    ).argParser(parseCount),
  )
  .addOption(
    opt(
      '--max-unauthenticated-per-address <n>',
      'connections without a session from one address prefix (default 64)',
      'HCHAT_MAX_UNAUTHENTICATED_PER_ADDRESS',
    ).argParser(parseCount),
  )
  .addOption(
    opt(
      '--max-unauthenticated <n>',
      'connections without a session in total (default 1024)',
      'HCHAT_MAX_UNAUTHENTICATED',
    ).argParser(parseCount),
  )
  .addOption(
    opt(
      '--hello-timeout-ms <ms>',
      'time a new connection has to say hello (default 5000)',
      'HCHAT_HELLO_TIMEOUT_MS',
    ).argParser(parseMs),
  )
  .addOption(
    opt(
      '--posts-per-second <n>',
      'posts per second per user, sustained (default 50)',
      'HCHAT_POSTS_PER_SECOND',
    ).argParser(parseCount),
  )
  .addOption(
    opt(
      '--post-burst <n>',
      'posts a user may send at once above the sustained rate (default 500)',
      'HCHAT_POST_BURST',
    ).argParser(parseCount),
  )
  .addOption(clockSkewOption())
  .addOption(
    opt(
      '--sessions-per-account <n>',
      'live sessions per account; a login past it ends the oldest (default 10)',
      'HCHAT_SESSIONS_PER_ACCOUNT',
    ).argParser(parseCount),
  )
  .addOption(
    opt(
      '--channels-per-account <n>',
      'channels one user may own (default 200)',
      'HCHAT_CHANNELS_PER_ACCOUNT',
    ).argParser(parseCount),
  )
  .addOption(
    opt(
      '--max-file-bytes <bytes>',
      'largest file backed up here (default 25M)',
      'HCHAT_MAX_FILE_BYTES',
    ).argParser(parseBytes),
  )
  .addOption(
    opt(
      '--file-quota-bytes <bytes>',
      'bytes of files each user may have backed up here (default 1G)',
      'HCHAT_FILE_QUOTA_BYTES',
    ).argParser(parseBytes),
  )
  .addOption(
    opt(
      '--api-rate <n>',
      'REST API requests per second per token (default 20)',
      'HCHAT_API_RATE',
    ).argParser(parseCount),
  )
  .addOption(
    opt(
      '--api-burst <n>',
      'REST API requests per token in a burst (default 100)',
      'HCHAT_API_BURST',
    ).argParser(parseCount),
  )
  .addOption(
    opt(
      '--api-bad-token-burst <n>',
      'failed REST API tokens one address group may send at once before its requests are refused (429) unread; then one per 2 s (default 30)',
      'HCHAT_API_BAD_TOKEN_BURST',
    ).argParser(parseCount),
  )
  .addOption(
    opt(
      '--dm-mailbox <n>',
      "envelopes one device's direct-message mailbox holds (default 10000)",
      'HCHAT_DM_MAILBOX',
    ).argParser(parseCount),
  )
  .addOption(
    opt(
      '--ipv4-prefix <bits>',
      'IPv4 addresses sharing this prefix share one budget (default 24)',
      'HCHAT_IPV4_PREFIX',
    ).argParser(parsePrefixBits(32)),
  )
  .addOption(
    opt(
      '--ipv6-prefix <bits>',
      'IPv6 addresses sharing this prefix share one budget (default 64)',
      'HCHAT_IPV6_PREFIX',
    ).argParser(parsePrefixBits(128)),
  )
  .addOption(
    opt(
      '--bus <url>',
      'event bus shared with the other instances of this deployment: nats://HOST:PORT (tls://… for TLS, USER:PASS@ or TOKEN@ for credentials; several separated by commas); default: in-process, one instance',
      'HCHAT_BUS',
    ),
  )
  .addOption(
    opt(
      '--bus-namespace <name>',
      'subject namespace on the bus, for deployments sharing one NATS (default hchat)',
      'HCHAT_BUS_NAMESPACE',
    ).argParser(parseBusNamespace),
  )
  .action(
    async (o: {
      host: string;
      port: number;
      httpPort: number;
      stunPort: number;
      relayPort: number | false;
      logLevel: LogLevel;
      data: string;
      store?: string;
      tlsCert?: string;
      tlsKey?: string;
      signingKey?: string;
      drainMs?: number;
      heartbeatMs: number;
      peerTimeoutMs: number;
      verifyThreads?: number;
      maxRegistrationsPerAddress?: number;
      maxVisitorsPerAddress?: number;
      visitorGraceMs?: number;
      maxTrackerEntriesPerAddress?: number;
      maxUnauthenticatedPerAddress?: number;
      maxUnauthenticated?: number;
      helloTimeoutMs?: number;
      ipv4Prefix?: number;
      ipv6Prefix?: number;
      postsPerSecond?: number;
      postBurst?: number;
      maxClockSkewMs?: number;
      sessionsPerAccount?: number;
      channelsPerAccount?: number;
      maxFileBytes?: number;
      fileQuotaBytes?: number;
      dmMailbox?: number;
      apiRate?: number;
      apiBurst?: number;
      apiBadTokenBurst?: number;
      bus?: string;
      busNamespace?: string;
    }) => {
      if (o.peerTimeoutMs <= o.heartbeatMs)
        program.error('error: --peer-timeout-ms must be greater than --heartbeat-ms');
      if ((o.tlsCert === undefined) !== (o.tlsKey === undefined))
        program.error('error: --tls-cert and --tls-key go together');
      // Checked here, not by commander, whose error would print the URL (and its password).
      for (const [flag, value, check] of [
        ['--store', o.store, parseStoreUrl],
        ['--bus', o.bus, parseBus],
      ] as const) {
        if (value === undefined) continue;
        try {
          check(value);
        } catch (err) {
          program.error(`error: option '${flag} <url>': ${(err as Error).message}`);
        }
      }
      // Instances that share a bus serve one deployment: a session made on one must be good
      // on the others, so they must sign with the same key.
      if (o.bus !== undefined && o.signingKey === undefined)
        program.error(
          "error: --bus needs --signing-key (the deployment's one signing key, the same file for every instance)",
        );
      let bus: NatsBus | undefined;
      if (o.bus !== undefined) {
        try {
          const { NatsBus } = await import('../server/bus-nats.js');
          bus = await NatsBus.connect(o.bus, {
            namespace: o.busNamespace,
            // Link changes and dropped events, on stderr in the connection log's line format.
            log: (ev, fields) => console.error(formatRecord(ev, fields)),
          });
        } catch (err) {
          program.error(`error: --bus: ${(err as Error).message}`);
        }
      }
      // Each command loads only its own part: a peer never loads the server, nor the server a
      // peer (a process spawned starts in 0.6 s instead of 0.8 s).
      const { CentralServer } = await import('../server/server.js');
      const server = await CentralServer.start({
        bus,
        host: o.host,
        port: o.port,
        stunPort: o.stunPort,
        relayPort: o.relayPort,
        httpPort: o.httpPort,
        dataDir: path.resolve(o.data),
        storeUrl: o.store,
        tls: o.tlsCert && o.tlsKey ? { certFile: o.tlsCert, keyFile: o.tlsKey } : undefined,
        signingKeyFile: o.signingKey,
        drainMs: o.drainMs,
        heartbeatMs: o.heartbeatMs,
        timeoutMs: o.peerTimeoutMs,
        verifyThreads: o.verifyThreads,
        maxRegistrationsPerAddress: o.maxRegistrationsPerAddress,
        maxVisitorsPerAddress: o.maxVisitorsPerAddress,
        visitorGraceMs: o.visitorGraceMs,
        maxTrackerEntriesPerAddress: o.maxTrackerEntriesPerAddress,
        maxUnauthenticatedPerAddress: o.maxUnauthenticatedPerAddress,
        maxUnauthenticated: o.maxUnauthenticated,
        helloTimeoutMs: o.helloTimeoutMs,
        ipv4PrefixBits: o.ipv4Prefix,
        ipv6PrefixBits: o.ipv6Prefix,
        postsPerSecond: o.postsPerSecond,
        postBurst: o.postBurst,
        maxClockSkewMs: o.maxClockSkewMs,
        sessionsPerAccount: o.sessionsPerAccount,
        channelsPerAccount: o.channelsPerAccount,
        maxFileBytes: o.maxFileBytes,
        fileQuotaBytes: o.fileQuotaBytes,
        dmMailbox: o.dmMailbox,
        apiRate: o.apiRate,
        apiBurst: o.apiBurst,
        apiBadTokenBurst: o.apiBadTokenBurst,
        opsLog: createOpsLog(o.logLevel),
      });
      // SIGTERM (a supervisor, a rolling restart) drains: peers move to another instance first.
      onSignals(
        () => server.close(),
        () => server.drain(),
      );
      console.log(
        `ready tcp=${server.tcpAddress} http=${server.httpUrl} fingerprint=${server.fingerprint}`,
      );
    },
  );

program
  .command('peer')
  .description('run a peer: your channels, your outbox, and the local web UI and JSON API')
  .addOption(
    opt(
      '--server <host:port[#fingerprint],…>',
      "central server to register with; #fingerprint pins its TLS key (else it is trusted on first use and remembered in <data>/known_servers); several, comma-separated, are one deployment's instances: the peer moves to the next when its instance fails or drains",
      'HCHAT_SERVER',
    )
      .makeOptionMandatory()
      .argParser(parseServers),
  )
  .addOption(
    opt(
      '--server-fingerprint <fingerprint>',
      'the TLS key fingerprint to pin for every --server address given without its own #fingerprint (a certificate the instances share; as the ready line prints it)',
      'HCHAT_SERVER_FINGERPRINT',
    ).argParser(parseFingerprint),
  )
  .addOption(
    opt('--host <host>', 'address for the P2P and UDP ports', 'HCHAT_HOST')
      .default('127.0.0.1')
      .argParser(parseHost),
  )
  .addOption(
    opt('--p2p-port <port>', 'TCP port for peers (0: any free port)', 'HCHAT_P2P_PORT')
      .default(0)
      .argParser(parsePort),
  )
  .addOption(
    opt('--udp-port <port>', 'UDP port for livestreams (0: any free port)', 'HCHAT_UDP_PORT')
      .default(0)
      .argParser(parsePort),
  )
  .addOption(
    opt(
      '--ui-port <port>',
      'port of the web UI and local API on 127.0.0.1 (0: any free port)',
      'HCHAT_UI_PORT',
    )
      .default(0)
      .argParser(parsePort),
  )
  .addOption(
    opt('--data <dir>', 'data folder (session, outbox, caches)', 'HCHAT_DATA').default(
      defaultData('peer'),
    ),
  )
  .addOption(
    opt(
      '--api-token <token>',
      'token of the local API (default: the one in <data>/api-token, made on first start)',
      'HCHAT_API_TOKEN',
    ).argParser(parseApiToken),
  )
  .addOption(
    opt(
      '--stream-fanout <k>',
      'viewers a streamer (and each relaying viewer) feeds directly',
      'HCHAT_STREAM_FANOUT',
    )
      .default(4)
      .argParser(parseFanout),
  )
  .addOption(
    opt(
      '--upload-limit <bytes>',
      'bytes per second this peer serves files at most (default: no cap)',
      'HCHAT_UPLOAD_LIMIT',
    ).argParser(parseBytes),
  )
  .addOption(
    opt(
      '--max-file-bytes <bytes>',
      'largest file you may attach (default 25M)',
      'HCHAT_MAX_FILE_BYTES',
    ).argParser(parseBytes),
  )
  .addOption(
    opt(
      '--file-cache-bytes <bytes>',
      "bytes of other people's files kept here before the least recently used go (default 512M)",
      'HCHAT_FILE_CACHE_BYTES',
    ).argParser(parseBytes),
  )
  .addOption(
    opt(
      '--udp-loss <rate>',
      'drop this fraction of incoming UDP datagrams at random (loss tests)',
      'HCHAT_UDP_LOSS',
    )
      .default(0)
      .argParser(parseRate),
  )
  .addOption(
    opt(
      '--file-patience-ms <ms>',
      'how long a file fetch that gets nowhere keeps trying (default 20000; for tests of fetches that cannot succeed)',
      'HCHAT_FILE_PATIENCE_MS',
    ).argParser(parseMs),
  )
  .addOption(
    opt(
      '--punch-deadline-ms <ms>',
      'how long a hole punch dials before the relay takes over (default 5000; for tests of punches that cannot succeed)',
      'HCHAT_PUNCH_DEADLINE_MS',
    ).argParser(parseMs),
  )
  .addOption(
    opt(
      '--visitor-check-ms <ms>',
      'how often this peer, as a channel host, asks the server whether the visitors on its P2P links are still in session (default 30000; for tests of visitor sessions that end)',
      'HCHAT_VISITOR_CHECK_MS',
    ).argParser(parseMs),
  )
  .addOption(clockSkewOption())
  .action(
    async (o: {
      server: { host: string; port: number; fingerprint?: string }[];
      serverFingerprint?: string;
      host: string;
      p2pPort: number;
      udpPort: number;
      uiPort: number;
      data: string;
      streamFanout: number;
      maxClockSkewMs?: number;
      udpLoss: number;
      punchDeadlineMs?: number;
      visitorCheckMs?: number;
      filePatienceMs?: number;
      apiToken?: string;
      uploadLimit?: number;
      maxFileBytes?: number;
      fileCacheBytes?: number;
    }) => {
      // A signal before the ready line (the server does not answer yet) stops it cleanly too.
      const early = new AbortController();
      const earlyStop = () => early.abort();
      for (const s of STOP_SIGNALS) process.on(s, earlyStop);
      const { startPeer } = await import('../peer/index.js');
      const starting = startPeer({
        startAbort: early.signal,
        serverHost: o.server[0]!.host,
        serverPort: o.server[0]!.port,
        serverFingerprint: o.server[0]!.fingerprint ?? o.serverFingerprint,
        // --server-fingerprint pins every address given without its own (a shared certificate).
        otherServers: o.server
          .slice(1)
          .map((a) => ({ ...a, fingerprint: a.fingerprint ?? o.serverFingerprint })),
        host: o.host,
        p2pPort: o.p2pPort,
        udpPort: o.udpPort,
        uiPort: o.uiPort,
        dataDir: path.resolve(o.data),
        streamFanout: o.streamFanout,
        maxClockSkewMs: o.maxClockSkewMs,
        udpLoss: o.udpLoss,
        punchDeadlineMs: o.punchDeadlineMs,
        visitorCheckMs: o.visitorCheckMs,
        filePatienceMs: o.filePatienceMs,
        apiToken: o.apiToken,
        uploadLimit: o.uploadLimit,
        maxFileBytes: o.maxFileBytes,
        fileCacheBytes: o.fileCacheBytes,
      });
      const peer = await starting.catch((err: unknown) => {
        if (early.signal.aborted) process.exit(0);
        throw err;
      });
      for (const s of STOP_SIGNALS) process.off(s, earlyStop);
      const trigger = onSignals(() => peer.close());
      // A signal just as the start ended: stop now, as it asked.
      if (early.signal.aborted) return trigger();
      // A server key that is not trusted is said once (the link keeps retrying quietly).
      let said = '';
      const sayKeyError = (reason?: HchatError) => {
        if (reason?.code !== 'E_SERVER_KEY_MISMATCH' || reason.message === said) return;
        said = reason.message;
        console.error(`error: ${reason.code}: ${reason.message}`);
      };
      sayKeyError(peer.node.serverKeyError);
      peer.node.link.on('down', sayKeyError);
      // So is a server that cannot be reached (once per address and reason; it keeps trying).
      const sayUnreachable = (f?: { addr: string; reason: string }) => {
        if (f)
          console.error(
            `error: E_OFFLINE: the server at ${f.addr} cannot be reached (${f.reason}); retrying`,
          );
      };
      sayUnreachable(peer.node.link.lastFailure);
      peer.node.link.on('unreachable', sayUnreachable);
      console.log(`ready ui=${peer.uiUrl} p2p=${peer.p2p} udp=${peer.udp}`);
    },
  );

program
  .command('demo')
  .description(
    'a server and three peers (alice, bob, carol) on temporary data, ready to chat; stops (and deletes its data) on a signal or when the process that started it ends',
  )
  .action(async () => {
    // A signal (or the parent's end) while the demo starts stops it as soon as it has started.
    const parent = process.ppid;
    let early = false;
    const earlyStop = () => (early = true);
    for (const s of STOP_SIGNALS) process.on(s, earlyStop);
    const { runDemo } = await import('./demo.js');
    const stop = await runDemo((line) => console.log(line));
    for (const s of STOP_SIGNALS) process.off(s, earlyStop);
    const trigger = onSignals(stop);
    stopWithParent(trigger, parent);
    if (early) trigger();
  });

program
  .command('bot')
  .description(
    'run an autoresponder bot on the REST API v1 (docs/REST.md): it answers mentions, keywords and regexes with templates, from a config file',
  )
  .addOption(
    opt(
      '--config <file.json>',
      'the bot’s rules (format below)',
      'HCHAT_BOT_CONFIG',
    ).makeOptionMandatory(),
  )
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
  .action(async (o: { config: string; url?: string; token?: string }, cmd: Command) => {
    const fail = (why: string): never => cmd.error(`error: ${why}`);
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
