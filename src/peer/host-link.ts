/**
 * A member's link to a channel's host (P2P, protocol/peer-link.ts): an RpcLink that presents
 * this peer's session token and checks the host's answer. No automatic reconnection: the node
 * decides when a host is worth trying again (it follows the tracker list).
 */
import type { z } from 'zod';
import { HchatError } from '../protocol/errors.js';
import { PROTOCOL_VERSION, type TrackerEntry } from '../protocol/common.js';
import { P2P_EVENTS, P2P_OPS, PeerHelloAck } from '../protocol/peer-link.js';
import { describeIssues } from '../protocol/rpc.js';
import { hostName, type ConnectionLog } from '../shared/connlog.js';
import { RpcLink } from './rpc-link.js';

/** The host's hello answer. */
export type HostInfo = z.infer<typeof PeerHelloAck>;

/** A link to one host (one tracker entry). */
export class HostLink extends RpcLink<typeof P2P_OPS, typeof P2P_EVENTS, HostInfo> {
  constructor(
    readonly entry: TrackerEntry,
    token: string,
    log?: ConnectionLog,
  ) {
    super(
      {
        host: entry.ip,
        port: entry.port,
        name: hostName(entry.username, entry.ip, entry.port),
        log,
        reconnect: false,
        connectTimeoutMs: 3000,
        hello: () => ({ t: 'hello', v: PROTOCOL_VERSION, role: 'peer', token }),
        parseHello: (f) => {
          const ack = PeerHelloAck.safeParse(f);
          if (!ack.success)
            throw new HchatError('E_BAD_FRAME', `host hello: ${describeIssues(ack.error)}`);
          // The host must be who the tracker said: the owner of the channels it serves.
          if (
            ack.data.username.toLowerCase() !== entry.username.toLowerCase() ||
            ack.data.sessionId !== entry.sessionId
          ) {
            throw new HchatError(
              'E_SESSION_INVALID',
              `expected ${entry.username}, the host said ${ack.data.username}`,
            );
          }
          return ack.data;
        },
      },
      P2P_OPS,
      P2P_EVENTS,
    );
  }
}
