/**
 * The local API's lock: every request but the UI's static files must carry the API token, as
 * `Authorization: Bearer <token>` (scripts, and the page's own fetches), or, on a GET only, a
 * URL key made from it (`?key=`, below), for what a browser loads by address.
 *
 * No cookie opens anything. Browsers do not keep cookies apart by port, so a cookie set by this
 * peer would be sent to every other server on 127.0.0.1 the user's browser visits (another OS
 * user's, say), which could replay it from outside any browser. The page is opened at the printed
 * `/?token=<token>`; it is served as is (no-store, no referrer), and the page's script moves the
 * token into the tab's sessionStorage (kept per origin: scheme, host and port) and takes it out
 * of the address bar and history (history.replaceState) before anything else (web/src/api.ts).
 *
 * The URL key is for the addresses a browser loads by itself, where no header can be set: event
 * streams (EventSource), the live WebSockets, `<img>` of files and avatars. It is
 * `<expiry>.<mac>`: the expiry in seconds since 1970, at most URL_KEY_LIFE ahead, and
 * HMAC-SHA256(token, "hchat url key v1 " + expiry) in base64url, which the page computes itself
 * (WebCrypto). It opens GET requests only (and so WebSocket upgrades), until its expiry, and
 * travels only in addresses of this origin (the page and the API answer with no referrer).
 * Every comparison takes the same time whatever the guess.
 */
import crypto from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HchatError } from '../protocol/errors.js';

/** Routes of the UI's static files (no data in them), served without the token. */
const PUBLIC_ROUTES = new Set(['/', '/*']);

/** How far ahead a URL key's expiry may be, in seconds (the page makes a new one each hour). */
export const URL_KEY_LIFE = 12 * 3600;

/** SHA-256, so that values of any length compare in constant time. */
const digest = (s: string) => crypto.createHash('sha256').update(s).digest();

/** The URL key of `token` that expires at `expiry` (seconds since 1970). */
export function urlKey(token: string, expiry: number): string {
  const mac = crypto
    .createHmac('sha256', token)
    .update(`hchat url key v1 ${expiry}`)
    .digest('base64url');
  return `${expiry}.${mac}`;
}

/** Locks `app` with `token`. */
export function lockApi(app: FastifyInstance, token: string): void {
  const tokenDigest = digest(token);
  const same = (a: Buffer, b: Buffer) => crypto.timingSafeEqual(a, b);

  /** True when `given` is a URL key of the token that has not expired. */
  const validKey = (given: string): boolean => {
    const m = /^(\d{1,12})\.[A-Za-z0-9_-]{43}$/.exec(given);
    const expiry = m ? Number(m[1]) : 0;
    const now = Date.now() / 1000;
    const inTime = expiry > now && expiry <= now + URL_KEY_LIFE + 60;
    return same(digest(given), digest(urlKey(token, expiry))) && inTime;
  };

  /** True when the request carries the token, or (a GET) a URL key. */
  const holdsKey = (req: FastifyRequest, query: URLSearchParams): boolean => {
    const auth = req.headers.authorization;
    const bearer = auth !== undefined && /^Bearer (.+)$/i.exec(auth)?.[1];
    const byBearer = same(digest(bearer || ''), tokenDigest) && !!bearer;
    const key = query.get('key');
    const byKey = (req.method === 'GET' || req.method === 'HEAD') && key !== null && validKey(key);
    return byBearer || byKey;
  };

  app.addHook('onRequest', async (req, reply) => {
    const [pathname, query] = splitUrl(req.url);
    if (PUBLIC_ROUTES.has(req.routeOptions.url ?? '') && !pathname.startsWith('/api')) {
      return;
    }
    if (!holdsKey(req, query)) throw new HchatError('E_API_TOKEN');
    // The key is the lock's, not the route's.
    if (req.query && typeof req.query === 'object') delete (req.query as { key?: string }).key;
    void reply.header('referrer-policy', 'no-referrer');
  });
  // The page opened with its token: kept out of caches, and out of any Referer (set last: the
  // static files' own cache header would win otherwise).
  app.addHook('onSend', async (req, reply, payload) => {
    if (splitUrl(req.url)[1].has('token'))
      void reply.header('cache-control', 'no-store').header('referrer-policy', 'no-referrer');
    return payload;
  });
}

function splitUrl(url: string): [string, URLSearchParams] {
  const i = url.indexOf('?');
  return i < 0
    ? [url, new URLSearchParams()]
    : [url.slice(0, i), new URLSearchParams(url.slice(i))];
}
