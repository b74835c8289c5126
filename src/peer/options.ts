/** The settings a peer process starts with (PeerNode.start), and the server pins they name. */

/** Settings of a peer process. */
export interface PeerOptions {
  /** Ends the start early (a signal while the server does not answer yet): `start` rejects. */
  startAbort?: AbortSignal;
  serverHost: string;
  serverPort: number;
  /** The server's TLS key fingerprint to pin; without it the key is trusted on first use. */
  serverFingerprint?: string;
  /**
   * The deployment's other server instances (`--server a,b,c`), tried in turn when the link to
   * one fails, drops or drains; each may pin its own fingerprint.
   */
  otherServers?: readonly { host: string; port: number; fingerprint?: string }[];
  /** Address the P2P and UDP sockets bind to and that the tracker advertises. */
  host: string;
  p2pPort: number;
  udpPort: number;
  dataDir: string;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Fraction of incoming UDP datagrams to drop (loss injection for tests). */
  udpLoss?: number;
  /**
   * How long a hole punch dials before it has failed and the relay takes over (default
   * `NAT_LIMITS.punchDeadlineMs`; tests of punches that must fail shorten it).
   */
  punchDeadlineMs?: number;
  /**
   * How often this host asks the server whether the visitors on its P2P links are still in
   * session (default `VISITOR_CHECK_MS`, p2p.ts; tests of sessions that end shorten it).
   */
  visitorCheckMs?: number;
  /** Viewers the streamer (and each relay) feeds directly (SPEC §8 k). */
  streamFanout?: number;
  /** ε: messages stamped further ahead of this peer's clock are refused (E_CLOCK_SKEW). */
  maxClockSkewMs?: number;
  /** Posts per second per member that this peer's hosted channels take, and the burst. */
  postsPerSecond?: number;
  postBurst?: number;
  /** Bytes per second this peer uploads files at most (`--upload-limit`; default no cap). */
  uploadLimit?: number;
  /** Largest file attached here (FILE_LIMITS.maxFileBytes). */
  maxFileBytes?: number;
  /** Bytes of other people's files kept before the least recently used go. */
  fileCacheBytes?: number;
  /**
   * How long a file fetch that gets nowhere keeps trying (default 20 s, PROTOCOL §9.4; tests of
   * fetches that must fail shorten it).
   */
  filePatienceMs?: number;
  /**
   * bench/ only: media in plain RTP between peers, to measure what SRTP costs. No flag or
   * variable of `hchat` reaches it; bench/plain-peer.ts is the only way in.
   */
  benchPlainMedia?: boolean;
}

/** The fingerprints pinned for the server's instances (`--server host:port#fingerprint,…`). */
export function serverPins(o: PeerOptions): Map<string, string> | undefined {
  const all = [
    { host: o.serverHost, port: o.serverPort, fingerprint: o.serverFingerprint },
    ...(o.otherServers ?? []),
  ];
  const pins = new Map<string, string>();
  for (const a of all) if (a.fingerprint) pins.set(`${a.host}:${a.port}`, a.fingerprint);
  return pins.size > 0 ? pins : undefined;
}
