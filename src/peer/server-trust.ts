/**
 * Which central server a peer believes (SPEC §7, docs/PROTOCOL.md §1.1): the server's TLS key is
 * pinned by its fingerprint, given up front (`--server host:port#fingerprint`,
 * `HCHAT_SERVER_FINGERPRINT`) or trusted on first use and remembered in the data folder's
 * `known_servers` file, as SSH's known_hosts does. A server whose certificate a CA vouches for
 * (the operator's `--tls-cert`, checked against Node's CA store and `NODE_EXTRA_CA_CERTS`) is
 * remembered as `ca`: from then on it must be vouched for again. Any other key at a known address
 * is refused, with the way to accept it deliberately.
 */
import fs from 'node:fs';
import type tls from 'node:tls';
import { HchatError } from '../protocol/errors.js';
import { peerFingerprint } from '../shared/tls.js';

/** How a server's key was accepted. */
export type TrustHow = 'pinned' | 'known' | 'ca' | 'first-use';

/** One `known_servers` line: an address and what it must show. */
const LINE = /^(\S+:\d{1,5}) (ca|[A-Za-z0-9_-]{43})$/;

/** A fingerprint as the CLI and environment give it. */
export const FINGERPRINT = /^[A-Za-z0-9_-]{43}$/;

export class ServerTrust {
  private readonly known = new Map<string, string>();

  /**
   * @param file the `known_servers` file (absent: nothing known yet); undefined keeps nothing
   *   on disk (first use is then trusted for this process only).
   * @param pins fingerprints given up front, by `host:port`.
   */
  constructor(
    private readonly file: string | undefined,
    private readonly pins: ReadonlyMap<string, string> = new Map(),
  ) {
    for (const [addr, fp] of pins) {
      if (!FINGERPRINT.test(fp))
        throw new HchatError(
          'E_BAD_REQUEST',
          `pinned fingerprint of ${addr} is not 43 base64url characters`,
        );
    }
    if (!file || !fs.existsSync(file)) return;
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    lines.forEach((raw, i) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      const m = LINE.exec(line);
      // A damaged file is refused: skipping a line would trust a changed key on "first" use.
      if (!m)
        throw new Error(
          `${file} line ${i + 1} is not "host:port fingerprint": ${line.slice(0, 80)}`,
        );
      this.known.set(m[1]!, m[2]!);
    });
  }

  /** Trusts exactly one key at host:port and keeps nothing on disk (tools, tests, benches). */
  static pinned(host: string, port: number, fingerprint: string): ServerTrust {
    return new ServerTrust(undefined, new Map([[`${host}:${port}`, fingerprint]]));
  }

  /** What this peer expects of `addr` (a pin, a known fingerprint, `ca`), if anything. */
  expected(addr: string): string | undefined {
    return this.pins.get(addr) ?? this.known.get(addr);
  }

  /**
   * Checks the key a server at `addr` showed on a finished TLS handshake. Returns how it was
   * accepted; throws E_SERVER_KEY_MISMATCH (the link closes) when it must not be.
   */
  check(addr: string, socket: tls.TLSSocket): { how: TrustHow; fingerprint: string } {
    const fingerprint = peerFingerprint(socket);
    if (!fingerprint)
      throw new HchatError('E_SERVER_KEY_MISMATCH', `${addr} showed no certificate`);
    const pinned = this.pins.get(addr);
    if (pinned !== undefined) {
      if (fingerprint === pinned) return { how: 'pinned', fingerprint };
      throw new HchatError(
        'E_SERVER_KEY_MISMATCH',
        `the server at ${addr} showed key ${fingerprint}, but ${pinned} is pinned: possibly a man in the middle; if the server's key really changed, pin the new one (--server ${addr}#<fingerprint>)`,
      );
    }
    const known = this.known.get(addr);
    if (known === 'ca') {
      if (socket.authorized) return { how: 'ca', fingerprint };
      throw new HchatError(
        'E_SERVER_KEY_MISMATCH',
        `the server at ${addr} had a CA-issued certificate before, now one no CA vouches for (${String(socket.authorizationError)}): possibly a man in the middle; if this is deliberate, delete the line for ${addr} from ${this.file}`,
      );
    }
    if (known !== undefined) {
      if (fingerprint === known) return { how: 'known', fingerprint };
      throw new HchatError(
        'E_SERVER_KEY_MISMATCH',
        `the server at ${addr} showed key ${fingerprint}, not ${known} as on first use: possibly a man in the middle; if the server's key really changed, delete the line for ${addr} from ${this.file} or pin the new key with --server ${addr}#${fingerprint}`,
      );
    }
    const how: TrustHow = socket.authorized ? 'ca' : 'first-use';
    this.remember(addr, how === 'ca' ? 'ca' : fingerprint);
    return { how, fingerprint };
  }

  private remember(addr: string, what: string): void {
    this.known.set(addr, what);
    if (this.file) fs.appendFileSync(this.file, `${addr} ${what}\n`, { mode: 0o600 });
  }
}
