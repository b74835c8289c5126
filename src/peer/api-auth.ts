/**
 * The local API's lock: every request but the UI's static files must carry the API token, as
 * `Authorization: Bearer <token>` (scripts) or as the cookie the page gets for it (browsers).
 *
 * The page is opened at the printed `/?token=<token>`: that request answers `303 → /` with the
 * cookie, so the token leaves the address bar and history at once. The cookie is HttpOnly,
 * SameSite=Strict, named after the port (cookies are per host, not per port: each peer on
 * 127.0.0.1 has its own), and holds a MAC derived from the token, never the token itself.
 * Every comparison takes the same time whatever the guess.
 */
import crypto from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HchatError } from '../protocol/errors.js';

/** Routes of the UI's static files (no data in them), served without the token. */
const PUBLIC_ROUTES = new Set(['/', '/*']);

/** SHA-256, so that values of any length compare in constant time. */
const digest = (s: string) => crypto.createHash('sha256').update(s).digest();

/** Locks `app` with `token`; `port` is the API's port (it names the cookie). */
export function lockApi(app: FastifyInstance, token: string, port: () => number): void {
  const tokenDigest = digest(token);
  const cookieValue = crypto
    .createHmac('sha256', token)
    .update('hchat local API cookie v1')
    .digest('base64url');
  const cookieDigest = digest(cookieValue);
  const cookieName = () => `hchat_api_${port()}`;
  const same = (a: Buffer, b: Buffer) => crypto.timingSafeEqual(a, b);

  /** True when the request carries the token or the cookie. */
  const holdsKey = (req: FastifyRequest): boolean => {
    const auth = req.headers.authorization;
    const bearer = auth !== undefined && /^Bearer (.+)$/i.exec(auth)?.[1];
    const cookie = readCookie(req.headers.cookie, cookieName());
    // Both checks always run: which one failed takes no measurably different time.
    const byBearer = same(digest(bearer || ''), tokenDigest) && !!bearer;
    const byCookie = same(digest(cookie ?? ''), cookieDigest) && cookie !== undefined;
    return byBearer || byCookie;
  };

  app.addHook('onRequest', async (req, reply) => {
    const [pathname, query] = splitUrl(req.url);
    if (PUBLIC_ROUTES.has(req.routeOptions.url ?? '') && !pathname.startsWith('/api')) {
      if (pathname === '/' && query.has('token')) return exchange(reply, query.get('token')!);
      return;
    }
    if (!holdsKey(req)) throw new HchatError('E_API_TOKEN');
  });

  /** `/?token=`: the cookie when the token is right, and in any case the address without it. */
  const exchange = (reply: FastifyReply, given: string): FastifyReply => {
    if (same(digest(given), tokenDigest))
      void reply.header(
        'set-cookie',
        `${cookieName()}=${cookieValue}; HttpOnly; SameSite=Strict; Path=/`,
      );
    return reply
      .code(303)
      .header('location', '/')
      .header('cache-control', 'no-store')
      .header('referrer-policy', 'no-referrer')
      .send();
  };
}

function splitUrl(url: string): [string, URLSearchParams] {
  const i = url.indexOf('?');
  return i < 0
    ? [url, new URLSearchParams()]
    : [url.slice(0, i), new URLSearchParams(url.slice(i))];
}

/** The value of cookie `name` in a Cookie header, if present. */
function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}
