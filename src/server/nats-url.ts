/**
 * The `--bus` URL: which NATS servers an instance's bus (bus-nats.ts) connects to, and how. Apart
 * from the bus, so that checking a flag does not load the NATS client.
 */

/** Where the bus connects, from a `--bus` URL (parseNatsUrl). */
export interface NatsTarget {
  /** `host:port` of each server. */
  servers: string[];
  tls: boolean;
  user?: string;
  pass?: string;
  token?: string;
  /** The URL without its credentials, for messages and logs. */
  display: string;
}

/**
 * Parses `nats://[user:pass@|token@]host[:port][,nats://…]` (or `tls://…`, which requires TLS).
 * Every server of the list shares the scheme and the credentials. Throws an Error saying what is
 * expected; its message never repeats a credential.
 */
export function parseNatsUrl(url: string): NatsTarget {
  const expected =
    'expected nats://HOST:PORT or tls://HOST:PORT, optionally with USER:PASS@ or TOKEN@, several separated by commas';
  const parts = url.split(',').map((s) => s.trim());
  const servers: string[] = [];
  let first: Omit<NatsTarget, 'servers' | 'display'> | undefined;
  for (const part of parts) {
    const m =
      /^(nats|tls):\/\/(?:([^@/?#]*)@)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?\/?$/.exec(
        part,
      );
    const port = m?.[4] === undefined ? 4222 : Number(m[4]);
    if (!m || port < 1 || port > 65535) throw new Error(expected);
    let user: string | undefined;
    let pass: string | undefined;
    let token: string | undefined;
    if (m[2] !== undefined) {
      const colon = m[2].indexOf(':');
      try {
        if (colon < 0) token = decodeURIComponent(m[2]);
        else {
          user = decodeURIComponent(m[2].slice(0, colon));
          pass = decodeURIComponent(m[2].slice(colon + 1));
        }
      } catch {
        throw new Error(`${expected} (credentials percent-encoded)`);
      }
      if (token === '' || user === '') throw new Error(expected);
    }
    const here = { tls: m[1] === 'tls', user, pass, token };
    if (!first) first = here;
    else if (
      first.tls !== here.tls ||
      first.user !== user ||
      first.pass !== pass ||
      first.token !== token
    )
      throw new Error('every server of the list needs the same scheme and credentials');
    servers.push(`${m[3]}:${port}`);
  }
  const scheme = first!.tls ? 'tls' : 'nats';
  return {
    ...first!,
    servers,
    display: servers.map((s) => `${scheme}://${s}`).join(','),
  };
}
