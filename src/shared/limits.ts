/**
 * Every limit that bounds what one party can make another spend, with its default, in one place
 * (docs/SECURITY.md lists them). Processes take overrides through their options; tests and the
 * bench raise some of them.
 */

/** The livestream's UDP side (RTP/RTCP, docs/PROTOCOL.md §5.4) and its control ops (§5.2, §5.3). */
export const STREAM_LIMITS = {
  /** FCI entries in one generic NACK at most (our viewers send at most 200); more: refused. */
  maxNackFci: 200,
  /** A packet retransmitted to a child is not sent to it again on a NACK within this time. */
  nackDedupMs: 100,
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
