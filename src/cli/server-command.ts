/**
 * `hchat server`: the central server's flags, checked together, then the server started (and, with
 * `--bus`, its NATS link first); SIGTERM drains it, other signals close it.
 */
import path from 'node:path';
import type { Command } from 'commander';
import type { NatsBus } from '../server/bus-nats.js';
import { formatRecord } from '../shared/connlog.js';
import { LOG_LEVELS, createOpsLog, type LogLevel } from '../server/ops-log.js';
import { clockSkewOption, defaultData, opt } from './env-option.js';
import { onSignals } from './signals.js';
import {
  parseCount,
  parseBus,
  parseBusNamespace,
  parseBytes,
  parseHost,
  parseMs,
  parseDrainMs,
  parseLeaseMs,
  parsePort,
  parsePortOrOff,
  parsePrefixBits,
  parseThreads,
  parseStoreUrl,
} from './options.js';

/** Adds `hchat server` to `program`; its errors are `program`'s. */
export function addServerCommand(program: Command): void {
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
        '--visitor-name-lease-ms <ms>',
        "how long a visitor's name stays its instance's without renewal (renewed every third of it): once an instance died, another takes over its visitors' graces after this (default 30000)",
        'HCHAT_VISITOR_NAME_LEASE_MS',
      ).argParser(parseLeaseMs),
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
        visitorNameLeaseMs?: number;
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
          visitorNameLeaseMs: o.visitorNameLeaseMs,
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
}
