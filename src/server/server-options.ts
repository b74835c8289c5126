/**
 * A server process's settings (validated by the CLI before they get here), and what the account
 * limits among them ask of the AccountService.
 */
import type { Logger } from 'pino';
import type { ServerStore } from '../store/server-store.js';
import { ADDRESS_LIMITS } from '../shared/limits.js';
import type { EventBus } from './bus.js';
import { AccountService } from './account-service.js';
import type { LoginGuardLimits } from './login-guard.js';
import type { ScryptQueueLimits } from './scrypt-queue.js';
import type { ReadinessCheck } from './ops-http.js';
import type { HttpDoorLimits } from './http-door.js';

/** Settings of a server process (validated by the CLI before they get here). */
export interface ServerOptions {
  host: string;
  port: number;
  httpPort: number;
  dataDir: string;
  /**
   * The operator's TLS certificate and key (PEM files, from a CA). Without them the server
   * makes a self-signed pair in its data folder on first start; peers pin its fingerprint.
   */
  tls?: { certFile: string; keyFile: string };
  /**
   * The deployment's signing key (Ed25519, PKCS#8 PEM), the same file for every instance; without
   * it the instance makes its own, `<data>/server-key.pem`, on first start.
   */
  signingKeyFile?: string;
  /** How often this instance tells the others it is alive; 4 × silent is dead (default 2000). */
  instanceAliveMs?: number;
  /** Users presence keeps loaded besides those connected here (presence.ts USER_CACHE_MAX). */
  presenceUsersCached?: number;
  /** How long a drain (SIGTERM) waits for peers to move before closing (default 10 s). */
  drainMs?: number;
  /**
   * bench/ only: the framed port without TLS, so that `npm run bench` can show what TLS costs
   * in the same run. No flag or environment variable of `hchat` reaches it.
   */
  benchPlaintext?: boolean;
  /** Largest file the server backs up (FILE_LIMITS.maxFileBytes). */
  maxFileBytes?: number;
  /** Bytes of files each user may have backed up here (FILE_LIMITS.quotaBytes). */
  fileQuotaBytes?: number;
  /**
   * UDP port of the STUN responder (docs/PROTOCOL.md §3.8), on `host`: 0 for any free port
   * (the default), false for none (`reflect` then names no UDP port).
   */
  stunPort?: number | false;
  /**
   * TCP port of the relay for P2P links (docs/PROTOCOL.md §3.10), on `host`: 0 for any free
   * port (the default), false for none (`relay` is then answered E_UNKNOWN_TYPE, as by an older server).
   */
  relayPort?: number | false;
  /** The HTTP port's connection caps and deadlines (shared/limits.ts HTTP_DOOR_LIMITS; tests). */
  httpDoor?: Partial<HttpDoorLimits>;
  /** How often peers must send a frame. */
  heartbeatMs?: number;
  /** A connection silent this long is dropped and its tracker entry removed. */
  timeoutMs?: number;
  maxFrame?: number;
  /** An opened store (tests); else the one `storeUrl` names (store/open-server-store.ts). */
  store?: ServerStore;
  /** `--store`: a postgres:// URL, or undefined for SQLite in the data folder. */
  storeUrl?: string;
  bus?: EventBus;
  /** Failed logins of one account from one address prefix before it locks (5). */
  loginMaxFailures?: number;
  /** First lock of a login budget, doubled by each further failure (60 s). */
  loginWindowMs?: number;
  /** Every login throttle setting (shared/limits.ts LOGIN_LIMITS); wins over the two above. */
  login?: Partial<LoginGuardLimits>;
  /** Password hashing queue (shared/limits.ts SCRYPT_LIMITS). */
  scrypt?: Partial<ScryptQueueLimits>;
  /** Registrations per address prefix per hour (10). */
  maxRegistrationsPerAddress?: number;
  /** Live visitor sessions per address prefix (20). */
  maxVisitorsPerAddress?: number;
  /** How long a visitor session whose connection closed stays resumable, in ms (60 s). */
  visitorGraceMs?: number;
  /** How long a visitor's name stays its instance's without renewal, in ms (30 s). */
  visitorNameLeaseMs?: number;
  /** Connections without a session per address prefix (64). */
  maxUnauthenticatedPerAddress?: number;
  /** Connections without a session in total (1024). */
  maxUnauthenticated?: number;
  /** Time a new connection has to send its hello (5 s). */
  helloTimeoutMs?: number;
  /** Leading bits of an IPv4 / IPv6 address that make one address budget (24 / 64). */
  ipv4PrefixBits?: number;
  ipv6PrefixBits?: number;
  /**
   * Threads that check posts' signatures off the event loop (default 0: on it). On the 2-core
   * machines here the bench showed no gain (bench/README.md); it is for bigger machines.
   */
  verifyThreads?: number;
  /** ε: messages stamped further ahead of this server's clock are refused (E_CLOCK_SKEW). */
  maxClockSkewMs?: number;
  /** Lifetime of key certificates (renewed at each resume). */
  certTtlMs?: number;
  /** Live sessions per account; a login past it revokes the oldest. */
  sessionsPerAccount?: number;
  /** Channels one user may own. */
  channelsPerAccount?: number;
  /** Channels one user may join. */
  membershipsPerAccount?: number;
  /** Posts per second per user, sustained, and the burst allowed above it. */
  postsPerSecond?: number;
  postBurst?: number;
  /** REST API requests per second per token, and the burst above it (API_LIMITS: 20, 100). */
  apiRate?: number;
  apiBurst?: number;
  /** Bytes the REST gateway keeps for resume per account and per instance (API_LIMITS). */
  gatewayAccountBytes?: number;
  gatewayInstanceBytes?: number;
  /** Failed REST API tokens one address group may send at once (API_LIMITS.badTokenBurst: 30). */
  apiBadTokenBurst?: number;
  /** Envelopes one device's mailbox holds (shared/limits.ts DM_LIMITS.maxMailbox). */
  dmMailbox?: number;
  /** Tracker entries per account at once (shared/limits.ts TRACKER_LIMITS: 10). */
  maxTrackerEntriesPerAccount?: number;
  /** Tracker entries per address prefix at once (256). */
  maxTrackerEntriesPerAddress?: number;
  /** Relayed links of one account's sessions at once, ended sessions' included (160). */
  maxRelayLinksPerAccount?: number;
  /** Relayed links of the visitor sessions of one address prefix at once (320). */
  maxRelayLinksPerAddress?: number;
  /** The operational log (ops-log.ts); silent when absent. */
  opsLog?: Logger;
  /** Readiness checks beyond the store's and the bus's (`GET /ready`). */
  readiness?: ReadinessCheck[];
}

/** The account limits a server's options ask for. */
export function newAccountService(
  store: ServerStore,
  o: ServerOptions,
  usernames: readonly string[],
): AccountService {
  return new AccountService(
    store,
    {
      prefixBits: {
        ipv4PrefixBits: o.ipv4PrefixBits ?? ADDRESS_LIMITS.ipv4PrefixBits,
        ipv6PrefixBits: o.ipv6PrefixBits ?? ADDRESS_LIMITS.ipv6PrefixBits,
      },
      login: {
        ...(o.loginMaxFailures !== undefined && { failuresPerAccountAddress: o.loginMaxFailures }),
        ...(o.loginWindowMs !== undefined && { backoffBaseMs: o.loginWindowMs }),
        ...o.login,
      },
      scrypt: o.scrypt,
      registrationsPerAddress: o.maxRegistrationsPerAddress,
      visitorsPerAddress: o.maxVisitorsPerAddress,
      visitorGraceMs: o.visitorGraceMs,
      visitorNameLeaseMs: o.visitorNameLeaseMs,
    },
    usernames,
  );
}
