/**
 * The peer's end of the peer ↔ server link (protocol/server-link.ts): an RpcLink over TLS 1.3
 * that accepts only the server key its ServerTrust accepts, says the peer hello, checks the
 * server's, and reconnects with backoff unless told not to.
 */
import type { z } from 'zod';
import { HchatError } from '../protocol/errors.js';
import { checkHelloVersion } from '../protocol/hello-version.js';
import { PROTOCOL_VERSION } from '../protocol/common.js';
import { DEFAULT_MAX_FRAME } from '../protocol/frame.js';
import { COMPACT_VERSION } from '../protocol/compact.js';
import { EVENTS, OPS, ServerHello, describeIssues } from '../protocol/server-link.js';
import type { ConnectionLog } from '../shared/connlog.js';
import { RpcLink, type LinkAddress } from './rpc-link.js';
import type { ServerTrust } from './server-trust.js';

/** How long a server address has for TCP, TLS and its hello (PROTOCOL §3.2). */
export const SERVER_CONNECT_TIMEOUT_MS = 5000;

/** The server's hello, as the peer keeps it. */
export type ServerInfo = z.infer<typeof ServerHello>;

/** Settings of a server link. */
export interface ServerLinkOptions {
  host: string;
  port: number;
  /** The server's other instances, in the order to try them (`--server a,b,c`). */
  alternates?: readonly LinkAddress[];
  /** Whose TLS key this peer accepts at host:port (pinned, known, first use). */
  trust: ServerTrust;
  log?: ConnectionLog;
  /** Reconnect automatically (default true); off for one-shot clients and tests. */
  reconnect?: boolean;
  requestTimeoutMs?: number;
  /** How long an address has for TCP, TLS and its hello before the next is tried (PROTOCOL §3.2). */
  connectTimeoutMs?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

/** A link to the central server. Events: `up`, `down`, `event` (see RpcLink). */
export class ServerLink extends RpcLink<typeof OPS, typeof EVENTS, ServerInfo> {
  constructor(o: ServerLinkOptions) {
    super(
      {
        connectTimeoutMs: SERVER_CONNECT_TIMEOUT_MS,
        ...o,
        name: 'server',
        secure: (socket, addr) => {
          const { how, fingerprint } = o.trust.check(addr, socket);
          if (how !== 'known' && how !== 'pinned')
            o.log?.write('trust', { peer: 'server', addr, how, fingerprint });
        },
        hello: () => ({
          t: 'hello',
          v: PROTOCOL_VERSION,
          role: 'peer',
          agent: 'hchat-peer',
          maxFrame: DEFAULT_MAX_FRAME,
          compact: COMPACT_VERSION,
        }),
        parseHello: (f) => {
          checkHelloVersion(f, 'peer');
          const hello = ServerHello.safeParse(f);
          if (!hello.success) {
            throw new HchatError('E_BAD_FRAME', `server hello: ${describeIssues(hello.error)}`);
          }
          return hello.data;
        },
      },
      OPS,
      EVENTS,
    );
  }

  /** The server's hello of the current connection. */
  get server(): ServerInfo | undefined {
    return this.remoteHello;
  }
}
