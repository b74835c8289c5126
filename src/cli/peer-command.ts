/**
 * `hchat peer`: a peer's flags, then the peer started; a signal during the start stops it cleanly,
 * and a server key that is not trusted or a server that cannot be reached is said once.
 */
import path from 'node:path';
import type { Command } from 'commander';
import type { HchatError } from '../protocol/errors.js';
import { clockSkewOption, defaultData, opt } from './env-option.js';
import { STOP_SIGNALS, onSignals } from './signals.js';
import {
  parseApiToken,
  parseFanout,
  parseBytes,
  parseHost,
  parseServers,
  parseFingerprint,
  parseMs,
  parsePort,
  parseRate,
} from './options.js';

const MISSING_SERVER =
  "error: required option '--server <host:port[#fingerprint],…>' not specified";

/** Adds `hchat peer` to `program`. */
export function addPeerCommand(program: Command): void {
  program
    .command('peer')
    .description('run a peer: your channels, your outbox, and the local web UI and JSON API')
    .addOption(
      opt(
        '--server <host:port[#fingerprint],…>',
        "central server to register with; #fingerprint pins its TLS key (else it is trusted on first use and remembered in <data>/known_servers); several, comma-separated, are one deployment's instances: the peer moves to the next when its instance fails or drains",
        'HCHAT_SERVER',
      ).argParser(parseServers),
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
      async (
        o: {
          server?: { host: string; port: number; fingerprint?: string }[];
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
        },
        cmd: Command,
      ) => {
        // Required, checked here rather than by commander: its check comes before the one for
        // unknown options, so `--sever` was reported as a missing --server, the typo unnamed.
        if (!o.server) return cmd.error(MISSING_SERVER);
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
          if (!f) return;
          // Something answered, but not in TLS: most often the server's HTTP port (its ready
          // line's http=) given where its framed port (tcp=) was meant.
          const hint = /^(ERR_SSL|EPROTO)/.test(f.reason)
            ? ": it does not speak TLS there (is this the server's http= port? --server wants the tcp= port of its ready line)"
            : '';
          console.error(
            `error: E_OFFLINE: the server at ${f.addr} cannot be reached (${f.reason})${hint}; retrying`,
          );
        };
        sayUnreachable(peer.node.link.lastFailure);
        peer.node.link.on('unreachable', sayUnreachable);
        console.log(`ready ui=${peer.uiUrl} p2p=${peer.p2p} udp=${peer.udp}`);
      },
    );
}
