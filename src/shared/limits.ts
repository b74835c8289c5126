/**
 * Every limit that bounds what one party can make another spend, with its default, in one place
 * (docs/SECURITY.md lists them). Processes take overrides through their options; tests and the
 * bench raise some of them.
 */

/** Message and clock limits, the same on every replica. */
export const MESSAGE_LIMITS = {
  /**
   * ε of the hybrid logical clock: a message stamped more than this far ahead of a replica's own
   * wall clock is refused (E_CLOCK_SKEW) and its reading never observed (CockroachDB's
   * `--max-offset` plays the same part).
   */
  maxClockSkewMs: 60_000,
  /** How long a key certificate is valid; renewed at each `resume`. */
  certTtlMs: 30 * 24 * 3600 * 1000,
} as const;

/** Frames and pages on every framed link. */
export const FRAME_LIMITS = {
  /** Room kept for the envelope around a page of items (`res`, ids, keys). */
  envelopeBytes: 4096,
  /** Frame cap on a P2P link before the handshake has proved who is at the other end. */
  preAuthMaxFrame: 16 * 1024,
  /** Time a P2P peer has to complete the handshake (hello and auth). */
  handshakeMs: 5000,
  /** Requests of one connection worked on at once; its next frames wait past it. */
  maxInFlight: 16,
} as const;

/** Per-account caps at the server. */
export const ACCOUNT_LIMITS = {
  /** Channels one user may own. */
  channelsPerAccount: 200,
  /** Live sessions per account: logging in past it revokes the oldest. */
  sessionsPerAccount: 10,
  /** Channels one user may join (`my_channels` lists them a frame-sized page at a time). */
  membershipsPerAccount: 1000,
} as const;

/** Post rates, per user, at the server and at a host. */
export const RATE_LIMITS = {
  /** Sustained posts per second per user. */
  postsPerSecond: 50,
  /** Posts a user may send at once before the sustained rate applies. */
  postBurst: 500,
  /** Presence changes (`submit_info`, `set_status`) per session per second, sustained. */
  presencePerSecond: 2,
  /** Presence changes a session may make at once above that rate. */
  presenceBurst: 20,
} as const;
/**
 * Typing indicators (docs/PROTOCOL.md §3.3 and §4.2 `typing`): ephemeral, never stored. The
 * receiving replica (server or host) passes on at most one per user per channel per
 * `intervalMs` and drops the others quietly.
 */
export const TYPING_LIMITS = {
  /** One `typing` per user per channel per this interval is passed on; the rest are dropped. */
  intervalMs: 2_000,
  /** A typing state ends this long after it was passed on, unless a newer one refreshes it. */
  ttlMs: 6_000,
  /** The web UI sends `typing` at most this often while its user types. */
  sendEveryMs: 3_000,
  /** (user, channel) pairs a receiver remembers at once (full ones are forgotten first). */
  maxTracked: 100_000,
} as const;

/** How source addresses are grouped into one budget (one home or one hosting customer). */
export const ADDRESS_LIMITS = {
  /** IPv4 addresses sharing this many leading bits share one budget (a /24). */
  ipv4PrefixBits: 24,
  /** IPv6 addresses sharing this many leading bits share one budget (a /64). */
  ipv6PrefixBits: 64,
} as const;

/** Login throttling at the server (Synapse's `rc_login` plays the same part). */
export const LOGIN_LIMITS = {
  /** Failures of one account from one address prefix before that pair is locked. */
  failuresPerAccountAddress: 5,
  /** Failures from one address prefix, across all accounts, before that prefix is locked. */
  failuresPerAddress: 30,
  /**
   * Failures against one account from address prefixes that never logged in as it, before it is
   * locked for every such prefix (never for the prefixes it logged in from).
   */
  failuresPerAccountUnknownAddresses: 50,
  /** First lock once a limit is reached; each further failure doubles it. */
  backoffBaseMs: 60_000,
  /** Longest lock. */
  backoffMaxMs: 60 * 60_000,
  /** A key with no failure for this long (and no lock) is forgotten. */
  forgetAfterMs: 60 * 60_000,
  /** Password checks in progress at once per account, per address prefix and per pair. */
  inFlightPerKey: 2,
  /** Logins waiting for one of those to end, per budget; more are refused (E_RATE_LIMITED). */
  queuedPerKey: 16,
  /** Address prefixes remembered per account as ones it logged in from (the newest kept). */
  knownPrefixesPerAccount: 8,
  /**
   * A login from a known prefix records it again only when its record is older than this, so
   * that logins do not write to the store each time.
   */
  knownRefreshMs: 24 * 60 * 60_000,
} as const;

/** The store's rows of shared limits (login budgets, registrations): how they are swept. */
export const LIMIT_SWEEP = {
  /** Each server instance deletes expired rows this often. */
  everyMs: 60_000,
  /** Rows of each kind deleted at most per sweep (a bounded statement). */
  maxRows: 1000,
} as const;

/** Password hashing (scrypt) at the server: one small priority queue, logins first. */
export const SCRYPT_LIMITS = {
  /** scrypt computations running at once (each takes ~16 MiB and one thread-pool thread). */
  concurrency: 2,
  /** Logins waiting for a hash before new ones are refused (server busy). */
  maxQueuedLogins: 256,
  /** Registrations waiting for a hash before new ones are refused (server busy). */
  maxQueuedRegistrations: 32,
} as const;

/** Account creation and visitor sessions at the server, per address prefix. */
export const REGISTRATION_LIMITS = {
  /** Registrations (attempts that reach the password hash) per address prefix per window. */
  registrationsPerAddress: 10,
  /** The window of `registrationsPerAddress`. */
  registrationWindowMs: 60 * 60_000,
  /** Visitor sessions live at once per address prefix. */
  visitorsPerAddress: 20,
  /**
   * A visitor session whose connection closed stays resumable (and counted) this long, then
   * ends: visitor sessions do not outlive their peer, nor pile up on disk.
   */
  visitorGraceMs: 60_000,
  /**
   * A visitor's name is held in the store for this long, renewed by its instance every third of
   * it while the visitor is present: an instance that dies frees its visitors' names within it,
   * and the other instances then take over those visitors' graces (account-service.ts).
   */
  visitorNameLeaseMs: 30_000,
} as const;

/** The server's door: connections that have no session yet. */
export const SERVER_DOOR_LIMITS = {
  /** Time from TCP accept to the peer's hello (E_HELLO_REQUIRED after it). */
  helloTimeoutMs: 5000,
  /** Frame cap until the connection has a session (login, visitor, resume). */
  preAuthMaxFrame: 16 * 1024,
  /** Connections without a session per address prefix. */
  unauthenticatedPerAddress: 64,
  /** Connections without a session in total. */
  unauthenticatedTotal: 1024,
} as const;

/**
 * The server's HTTP port (health, metrics, REST API, bot gateway): what connections may hold.
 * Node's HTTP server keeps a connection that sends nothing, or half a request, open for ever, so
 * each is capped per address prefix and in total, must finish its first request's headers in
 * time, and is closed after a while with no byte either way (an upgraded WebSocket has its own
 * heartbeats instead).
 */
export const HTTP_DOOR_LIMITS = {
  /**
   * Connections open at once from one address prefix (ADDRESS_LIMITS); past it, closed at once.
   * By default an eighth of the process's file descriptors (server/http-door.ts), within 64–4,096;
   * this where that cannot be read.
   */
  perAddress: 256,
  /** Connections open at once in all: by default half the descriptors, within 256–32,768. */
  total: 4096,
  /** From the TCP accept to the end of the first request's headers. */
  firstRequestMs: 10_000,
  /** With no byte read or written for this long, a connection is closed. */
  idleMs: 30_000,
} as const;

/**
 * A peer's P2P port (docs/PROTOCOL.md §4.1): connections whose handshake is not complete, counted
 * from their first TCP byte (TLS included) until `auth` is checked or they close. Past either cap
 * a new connection is closed at once, without a word (its TLS has not even started).
 */
export const P2P_DOOR_LIMITS = {
  /** Connections without a completed handshake per address prefix (ADDRESS_LIMITS). */
  unauthenticatedPerAddress: 64,
  /** Connections without a completed handshake in total. */
  unauthenticatedTotal: 256,
} as const;

/**
 * The connection log's shares (docs/PROTOCOL.md §6). Records that a stranger can cause (a request
 * refused before a login, a connection opened or closed without a session or a completed
 * handshake, a failed TLS handshake, a refused relay connection) are written at most
 * `outsiderRecordsPerGroup` times per address group (ADDRESS_LIMITS) and `outsiderRecordsTotal`
 * in all, per window; a session's refused requests count the same way against its account.
 * Records of reads answered to a session (`sync`, `fetch`, `search`, `serve`, `dm_fetch`) have a
 * share of their own, per reader: its account, or the visitors of an address group. Records of
 * direct messages (an envelope sent, stored, refused, dropped or handed over; a device's keys, an
 * acknowledgement) have another, per account that caused them: an envelope's sender, a session's
 * user. The rest are counted and said in one `suppressed` record per group when the window ends.
 * Otherwise a party could rotate every earlier record out of the log (it keeps one old file), and
 * with them the records of where stored data came from; those (posts, forwards, pushes, pages
 * received) are always written.
 */
export const LOG_LIMITS = {
  /** Records without a session written per address group per window. */
  outsiderRecordsPerGroup: 60,
  /** Records without a session written per window from every group together. */
  outsiderRecordsTotal: 600,
  /** The window: it starts at the first such record and lasts this long. */
  outsiderWindowMs: 60_000,
  /** Records of reads answered to one reader (account, or visitors of an address group). */
  readRecordsPerGroup: 120,
  /** Records of reads written per window for every reader together. */
  readRecordsTotal: 1_200,
  /** The readers' window: it starts at the first read record and lasts this long. */
  readWindowMs: 60_000,
  /** Records of direct messages caused by one account (an envelope's sender), per window. */
  dmRecordsPerAccount: 120,
  /** Records of direct messages written per window for every account together. */
  dmRecordsTotal: 1_200,
  /** The direct messages' window: it starts at the first such record and lasts this long. */
  dmWindowMs: 60_000,
} as const;

/** `defaults` with the overrides that are set (an `undefined` override keeps the default). */
export function withDefaults<T extends Record<string, number>>(
  defaults: Readonly<T>,
  overrides: Partial<Record<keyof T, number | undefined>> = {},
): T {
  const out = { ...defaults } as T;
  for (const [k, v] of Object.entries(overrides))
    if (v !== undefined && k in defaults) (out as Record<string, number>)[k] = v;
  return out;
}
/** The livestream's UDP side (RTP/RTCP, docs/PROTOCOL.md §5.4) and its control ops (§5.2, §5.3). */
export const STREAM_LIMITS = {
  /** FCI entries in one generic NACK at most (our viewers send at most 200); more: refused. */
  maxNackFci: 200,
  /**
   * A packet retransmitted to a child is not sent to it again on a NACK within this time: about
   * a round trip, and under the 40 ms between an honest viewer's NACK retries, so that a lost
   * repair is asked for and sent again in time (100 ms cost honest viewers frames at 2 % loss).
   */
  nackDedupMs: 30,
  /**
   * Retransmit budget of each child: every new media byte sent to it adds this many bytes of
   * credit (libwebrtc likewise caps retransmissions by the send bitrate).
   */
  retransmitBudgetRatio: 0.5,
  /** Retransmit credit a child can save up, in bytes. */
  retransmitBurstBytes: 64_000,
  /** A consented child is checked again this often (RFC 7675 consent freshness). */
  consentCheckMs: 2_000,
  /** Consent expires this long after the last answer: media to that address stops. */
  consentExpiryMs: 6_000,
  /** First retry of a check that got no answer yet; doubled up to `consentCheckMs`. */
  consentFirstRetryMs: 50,
  /** Random bytes of a consent check's nonce. */
  consentNonceBytes: 12,
  /** Addresses one relay or streamer checks at most per stream (children named to it). */
  maxChildren: 64,
  /** `stalled` at most once per this interval per viewer session (else E_RATE_LIMITED). */
  stallReportIntervalMs: 1_500,
  /** Distinct children that must report a parent within the settle window to blame it. */
  stallMinReporters: 2,
  /** How long stall reports are collected before the streamer acts on them. */
  stallSettleMs: 300,
} as const;

/** The peer's local API (src/peer/api.ts, SPEC §10). */
export const LOCAL_API_LIMITS = {
  /** Event streams (`GET /api/events`) open at once; one more is refused with 503. */
  maxEventStreams: 32,
  /**
   * Bytes an event stream may have waiting in the process towards its reader. Events are taken
   * from the shared window as the reader drains, so only this much is ever buffered per reader.
   */
  eventStreamHighWater: 64 * 1024,
  /** Random bytes of a generated API token (base64url in the `api-token` file). */
  apiTokenBytes: 32,
  /** Connections another OS user holds open at once (each answered 403); past it, closed at once. */
  foreignConnections: 8,
  /** How long such a connection is kept at most, answered or not. */
  foreignConnectionMs: 2000,
} as const;

/** Databases (src/store/sqlite.ts). */
export const STORE_LIMITS = {
  /**
   * Largest database file that gets a full `PRAGMA quick_check` at start (bigger files only
   * have their schema read: checking every page would delay the start).
   */
  quickCheckMaxBytes: 64 * 1024 * 1024,
} as const;

/** The tracker list at the server (docs/PROTOCOL.md §3.3 `submit_info`, `get_list`). */
export const TRACKER_LIMITS = {
  /** Tracker entries one account may have at once (as many as its live sessions). */
  entriesPerAccount: ACCOUNT_LIMITS.sessionsPerAccount,
  /** Tracker entries from one address prefix at once (one home, one hosting customer). */
  entriesPerAddress: 256,
  /** Entries in one `get_list` page at most (a page is also cut to the receiver's frame). */
  pageEntries: 2000,
  /** Channels in one `directory` page at most (a page is also cut to the receiver's frame). */
  pageChannels: 2000,
} as const;

/** Full-text search (src/shared/search-text.ts, docs/PROTOCOL.md §3.3 `search`). */
export const SEARCH_LIMITS = {
  /** Characters of a query at most (the API and the `search` op refuse longer ones). */
  maxQueryChars: 200,
  /** Words of a query used at most (the rest are ignored); each is a prefix term. */
  maxWords: 8,
  /** Characters of one word used at most. */
  maxWordChars: 64,
  /** Results of one search at most, and by default. */
  maxResults: 50,
  defaultResults: 20,
  /** Channels one `search` op may name. */
  maxChannels: 1000,
  /** Characters of a snippet around the first match (the whole text when it is shorter). */
  snippetChars: 160,
  /** `search` ops per user per second at the server, and the burst. */
  perSecond: 5,
  burst: 20,
} as const;

/** Files (issue 14; PROTOCOL.md §9): sizes, chunks, caches and quotas. */
export const FILE_LIMITS = {
  /** Every chunk but a file's last is exactly this long. */
  chunkBytes: 256 * 1024,
  /** Largest file (servers and peers take an override: `maxFileBytes`). */
  maxFileBytes: 25 * 1024 * 1024,
  /** Files one message carries. */
  filesPerMessage: 10,
  /** Characters of a file name. */
  maxNameChars: 255,
  /** Characters of an image's preview (a data URL). */
  maxPreviewChars: 2048,
  /** Bytes of files one user may have backed up at the server (override: `fileQuotaBytes`). */
  quotaBytes: 1024 * 1024 * 1024,
  /** How long a file grant (`file_sources`) opens a channel's files at seeders. */
  grantTtlMs: 10 * 60 * 1000,
  /** Bytes of other channels' files a peer keeps before evicting the least recently used. */
  cacheBytes: 512 * 1024 * 1024,
  /** Bytes of an avatar's picture. */
  maxAvatarBytes: 256 * 1024,
  /**
   * Pixels of an avatar's picture, wide and high, as its header declares them (the UI sends at
   * most 256×256): a small file declaring more would make every viewer decode a huge bitmap.
   */
  maxAvatarSide: 1024,
  /**
   * Avatar changes a user may make at once (`avatar_set`), then one per `avatarEveryMs`: each
   * change is told to every co-member, whose pages fetch the new picture (up to 256 KiB) from the
   * server, so a change costs the server far more than the request did.
   */
  avatarBurst: 10,
  avatarEveryMs: 30_000,
  /** Chunk requests in flight per source while fetching. */
  inFlightPerSource: 4,
} as const;

/** Direct messages (issue 15; PROTOCOL.md §10). */
export const DM_LIMITS = {
  /** Users in one conversation, the sender included (a group DM). */
  maxMembers: 10,
  /** Devices one account may have published; publishing one more drops the longest unseen. */
  maxDevicesPerUser: 10,
  /** Devices one `dm_bundles` asks for (10 users of up to 10 devices would need more: ask twice). */
  maxDevicesPerAsk: 20,
  /** Envelopes in one `dm_send` or `dm_deliver`. */
  maxBatch: 50,
  /** One-time prekeys in one `dm_publish`. */
  maxPrekeysPerPublish: 100,
  /** One-time prekeys the server keeps per device (older ones are dropped first). */
  maxPrekeysHeld: 200,
  /** A device tops its one-time prekeys up when the server holds fewer than this. */
  prekeyLowWater: 20,
  /** Characters of an envelope's ciphertext (base64url): the largest valid payload (4,000 characters of 6-byte JSON escapes, 10 members, 50 mentions) fits. */
  maxCipherChars: 48 * 1024,
  /** Envelopes one device's mailbox holds; further ones are refused (E_QUOTA_EXCEEDED). */
  maxMailbox: 10_000,
  /** Message keys a ratchet session keeps for messages that have not arrived yet. */
  maxSkippedKeys: 2000,
  /** Messages a single chain may skip ahead (more is refused as an attack). */
  maxSkipPerChain: 1000,
  /** Days a signed prekey is used before a new one replaces it. */
  signedPrekeyDays: 7,
  /** Envelopes one user may hand a device over P2P per second, sustained (`E_RATE_LIMITED`). */
  p2pEnvelopesPerSecond: 100,
  /** … and at once above that rate. */
  p2pEnvelopeBurst: 500,
} as const;

/**
 * What the server allows around direct messages (PROTOCOL.md §10.1, §10.2): budgets per user or
 * session on the operations that cost a device something (its one-time prekeys, its mailbox).
 */
export const DM_SERVER_LIMITS = {
  /** Devices a user may name in `dm_bundles` per second, sustained (each may cost a prekey). */
  bundlesPerSecond: 1,
  /** Devices a user may name in `dm_bundles` at once above that rate (a new group of 10 × 10). */
  bundleBurst: 120,
  /**
   * One-time prekeys one user may take from one device per hour, sustained: past it a bundle
   * comes without one (X3DH runs without it), so no account drains a device.
   */
  prekeysPerPairPerHour: 6,
  /** One-time prekeys one user may take from one device at once above that rate. */
  prekeysPerPairBurst: 3,
  /** Envelopes a session may leave in mailboxes per second, sustained (`dm_send`). */
  envelopesPerSecond: 100,
  /** Envelopes a session may send at once above that rate (a few messages to a full group). */
  envelopeBurst: 1000,
  /** Users a session may name in `dm_devices` per second, sustained. */
  lookupsPerSecond: 20,
  /** Users a session may name in `dm_devices` at once above that rate. */
  lookupBurst: 200,
  /** Envelopes one `dm_fetch` reads before the page is cut to the receiver's frame. */
  fetchPage: 200,
  /** Users one user may block. */
  maxBlocks: 1000,
} as const;

/** The NATS event bus between server instances (src/server/bus-nats.ts). */
export const BUS_LIMITS = {
  /**
   * Largest encoded event published or read (NATS's own default `max_payload`; a server set
   * lower wins). A larger event is delivered on its own instance only and counted as dropped:
   * the store has what it says, and the other instances' catch-up reads it there.
   */
  maxEventBytes: 1024 * 1024,
  /** Wait between two attempts to reach NATS again (plus up to `reconnectJitterMs`); for ever. */
  reconnectWaitMs: 1000,
  reconnectJitterMs: 500,
  /** Client pings to NATS, and how many may go unanswered before the link counts as down. */
  pingIntervalMs: 10_000,
  maxPingsOut: 2,
  /** Time `close()` waits for the drain (pending events sent) before it just closes. */
  drainMs: 5000,
  /** At most one log line per reason for dropped events in this period (the counts go on). */
  dropLogIntervalMs: 10_000,
} as const;

/** The public REST API v1, its tokens and bots (issue 17; docs/REST.md). */
export const API_LIMITS = {
  /** Bots one user may own. */
  maxBotsPerOwner: 10,
  /** Tokens one user may have at once (revoked and expired ones do not count). */
  maxTokensPerOwner: 50,
  /** Channels a token may be limited to. */
  maxTokenChannels: 100,
  /** Longest lifetime a token may be given, in days (none given: it does not expire). */
  maxTokenDays: 365,
  /** Requests each token may make: `rate` a second, in bursts of up to `burst`. */
  tokenRate: 20,
  tokenBurst: 100,
  /** Largest request body the REST API reads. */
  maxBodyBytes: 64 * 1024,
  /** The largest answer a REST call is cut to (a page is cut to fit, as on the wire). */
  maxAnswerBytes: 1024 * 1024,
  /** Lifetime of a bot key certificate (and never past its token's expiry). */
  certMs: 30 * 24 * 3600 * 1000,
  /**
   * Bytes of events the gateway sessions of one account keep for resume, together (an event
   * several of them keep counts once): past it its oldest detached sessions are dropped, then
   * its live ones keep fewer events.
   */
  gatewayAccountBytes: 16 * 1024 * 1024,
  /** The same, for every gateway session of one instance (any account's oldest detached first). */
  gatewayInstanceBytes: 256 * 1024 * 1024,
  /**
   * Failed bearer tokens (missing, malformed, unknown, wrong, revoked, expired) one address group
   * (ADDRESS_LIMITS) may send at once, per server instance: past it the group's requests are
   * answered 429 `E_TOO_MANY_BAD_TOKENS` without reading the store.
   */
  badTokenBurst: 30,
  /** Then one more failed token per this interval, per address group. */
  badTokenEveryMs: 2000,
  /**
   * Longest wait failures can build up: checks that ran at once, all failing, count each (the
   * wait grows by `badTokenEveryMs` per failure past the budget) up to this.
   */
  badTokenMaxWaitMs: 60 * 60_000,
  /** Address groups whose failures one instance remembers at once (the oldest forgotten first). */
  badTokenGroups: 100_000,
} as const;

/**
 * `hchat bot`, the autoresponder (src/bot/). Its config is trusted (its author runs the bot);
 * the messages it reads are not: these bound what a message can make it do.
 */
export const BOT_LIMITS = {
  /** Longest regex a rule may have (a pattern is compiled once, at start). */
  maxPatternChars: 200,
  /** A rule's regex runs on at most this many characters of a message's text. */
  regexInputChars: 4000,
  /** Rules in one config. */
  maxRules: 100,
  /** Channels a config may join at start. */
  maxChannels: 100,
  /** The away message answers at most once in this time per channel. */
  awayCooldownMs: 10 * 60 * 1000,
  /** Wait after a failed poll (the server away, a 429 without Retry-After), doubling to the max. */
  retryMinMs: 1000,
  retryMaxMs: 30_000,
  /** Tries of one reply or reaction refused with 429, each after the wait the server names. */
  limitedTries: 10,
} as const;

/** Relayed links (pending or paired) one session may have asked for at once. */
const RELAY_LINKS_PER_SESSION = 16;

/** NAT traversal (docs/PROTOCOL.md §3.8, issue 18). */
export const NAT_LIMITS = {
  /** Candidates in one tracker entry at most (host and server-reflexive, TCP and UDP). */
  candidatesPerEntry: 8,
  /** STUN Binding answers per second to one address group, sustained (the server's UDP port). */
  stunPerSecond: 10,
  /** STUN Binding answers one address group may get at once above that rate. */
  stunBurst: 20,
  /** How long a peer waits for the server's STUN answer, each try (it tries twice). */
  stunWaitMs: 300,
  /** `punch` requests per second per session, sustained. */
  punchPerSecond: 2,
  /** `punch` requests a session may make at once above that rate. */
  punchBurst: 10,
  /** How long the punched session may answer a punch (even an entry it may not see). */
  punchAnswerMs: 10_000,
  /** How long both sides keep dialling each other before a punch has failed. */
  punchDeadlineMs: 5_000,
  /** Rounds of a punch whose attempts were refused (RST) before the relay; one if none was. */
  punchRounds: 2,
  /** A failed punch to a host waits 2, 4, 8 … s before the next, at most this long. */
  punchBackoffMaxMs: 60_000,
  /** `relay` requests per second per session, sustained. */
  relayPerSecond: 2,
  /** `relay` requests a session may make at once above that rate. */
  relayBurst: 10,
  /** How long a relay waits for both sides of a `relay` to connect before it drops it. */
  relayPairMs: 10_000,
  /** How long a connection to the relay port may take to send its 37-byte header. */
  relayHeaderMs: 5_000,
  /** A relayed link with no byte either way this long is closed (P2P links ping every 2 s). */
  relayIdleMs: 60_000,
  /** Relayed links (pending or paired) one session may have asked for at once. */
  relayLinksPerSession: RELAY_LINKS_PER_SESSION,
  /**
   * Relayed links (pending or paired) the sessions of one account may have asked for at once,
   * those of its ended sessions included (a link outlives its session): what its live sessions
   * may hold, sessionsPerAccount × relayLinksPerSession.
   */
  relayLinksPerAccount: ACCOUNT_LIMITS.sessionsPerAccount * RELAY_LINKS_PER_SESSION,
  /**
   * The same for the visitor sessions of one address group (who have no account): what its live
   * visitors may hold, visitorsPerAddress × relayLinksPerSession.
   */
  relayLinksPerAddress: REGISTRATION_LIMITS.visitorsPerAddress * RELAY_LINKS_PER_SESSION,
  /** Relayed links (pending or paired) one server instance carries at once. */
  relayLinksTotal: 4096,
} as const;
