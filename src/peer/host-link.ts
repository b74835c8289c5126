/**
 * A member's link to a channel's host, or a viewer's to a streamer (P2P, protocol/peer-link.ts):
 * an RpcLink over TLS 1.3 that runs the proof-of-possession handshake (shared/handshake.ts),
 * bound to that TLS connection. The member shows its key certificate, checks that the answering peer holds the certificate of exactly the
 * tracker entry it dialled (user, session, and a user's, not a visitor's), verifies its
 * transcript signature, and only then signs its own part. No secret ever crosses this link.
 * No automatic reconnection: the node decides when a host is worth trying again (it follows the
 * tracker list).
 */
import { COMPACT_VERSION } from '../protocol/compact.js';
import type crypto from 'node:crypto';
import type net from 'node:net';
import type { z } from 'zod';
import { HchatError } from '../protocol/errors.js';
import { checkHelloVersion } from '../protocol/hello-version.js';
import { PROTOCOL_VERSION, type TrackerEntry } from '../protocol/common.js';
import { DEFAULT_MAX_FRAME } from '../protocol/frame.js';
import { P2P_EVENTS, P2P_OPS, PeerHelloAck } from '../protocol/peer-link.js';
import { describeIssues } from '../protocol/rpc.js';
import { hostName, type ConnectionLog } from '../shared/connlog.js';
import {
  checkLinkCert,
  dialTranscript,
  newNonce,
  signTranscript,
  transcript,
  verifyTranscript,
  type LinkCredentials,
} from '../shared/handshake.js';
import { channelBinding } from '../shared/tls.js';
import { RpcLink } from './rpc-link.js';

/** The host's hello answer. */
export type HostInfo = z.infer<typeof PeerHelloAck>;

/** A link to one host (one tracker entry). */
export class HostLink extends RpcLink<typeof P2P_OPS, typeof P2P_EVENTS, HostInfo> {
  constructor(
    readonly entry: TrackerEntry,
    creds: LinkCredentials,
    serverKey: () => crypto.KeyObject | undefined,
    log?: ConnectionLog,
    /** Makes the TCP connection (direct or punched, punch.ts); else entry ip:port is dialled. */
    dial?: () => Promise<{ socket: net.Socket; via: string }>,
  ) {
    const ownSession = creds.sessionId;
    let nonce = '';
    let binding: Buffer = Buffer.alloc(0);
    super(
      {
        host: entry.ip,
        port: entry.port,
        name: hostName(entry.username, entry.ip, entry.port),
        log,
        reconnect: false,
        // TCP, TLS and the host's hello; the host may first take up to 3 s to check our
        // session with the server (PROTOCOL §4.1), and gives the whole handshake 5 s.
        connectTimeoutMs: 5000,
        dial,
        // Anyone may show any TLS key here: the signed transcript binds this very connection.
        secure: (socket) => {
          binding = channelBinding(socket);
        },
        hello: () => {
          nonce = newNonce();
          // Signed for the session of the entry dialled, on this connection: the host shows it
          // to the server to ask whether our session is live (PROTOCOL §4.1).
          const dial = dialTranscript({
            peerNonce: nonce,
            peerSession: ownSession,
            hostSession: entry.sessionId,
            binding,
          });
          return {
            t: 'hello',
            v: PROTOCOL_VERSION,
            role: 'peer',
            cert: creds.cert,
            nonce,
            dial: signTranscript(creds.keys, dial),
            maxFrame: DEFAULT_MAX_FRAME,
            compact: COMPACT_VERSION,
          };
        },
        parseHello: (f) => {
          checkHelloVersion(f, 'peer');
          const ack = PeerHelloAck.safeParse(f);
          if (!ack.success)
            throw new HchatError('E_BAD_FRAME', `host hello: ${describeIssues(ack.error)}`);
          const claims = checkLinkCert(ack.data.cert, serverKey());
          // The host must be who the tracker said: that user's session, certified in the role
          // the entry has (a user's for every channel host: the server lists visitors as hosting
          // nothing; a visitor's only for a visitor relaying a livestream).
          if (
            claims.r !== entry.role ||
            claims.u.toLowerCase() !== entry.username.toLowerCase() ||
            claims.sid !== entry.sessionId
          ) {
            throw new HchatError(
              'E_SESSION_INVALID',
              `expected ${entry.username}'s session ${entry.sessionId}, the host showed ${claims.r} ${claims.u}'s ${claims.sid}`,
            );
          }
          verifyTranscript(
            claims,
            transcript('host', {
              peerNonce: nonce,
              hostNonce: ack.data.nonce,
              peerSession: ownSession,
              hostSession: claims.sid,
              binding,
            }),
            ack.data.sig,
          );
          return ack.data;
        },
        helloReply: (ack) => ({
          t: 'auth',
          sig: signTranscript(
            creds.keys,
            transcript('peer', {
              peerNonce: nonce,
              hostNonce: ack.nonce,
              peerSession: ownSession,
              hostSession: entry.sessionId,
              binding,
            }),
          ),
        }),
      },
      P2P_OPS,
      P2P_EVENTS,
    );
    // The host proved the tracker entry's session over this very connection (PROTOCOL §4.1).
    this.on('up', () =>
      log?.write('peer_connect', {
        peer: this.name,
        user: entry.username,
        session: entry.sessionId,
      }),
    );
  }
}
