/**
 * How the page proves itself to its peer's local API (src/peer/api-auth.ts). No cookie: browsers
 * send a cookie to every server on the same host, whatever its port. The page is opened at the
 * printed `/?token=<token>`; this module, loaded before anything else, moves the token into the
 * tab's sessionStorage (kept per origin: scheme, host and port, so no other server on 127.0.0.1
 * sees it) and takes it out of the address bar and history. Then:
 *
 * - requests the page makes itself carry `Authorization: Bearer <token>` (`authHeaders`);
 * - addresses the browser loads by itself (event streams, WebSockets, `<img>` of
 *   files and avatars) carry a URL key (`withKey`): `<expiry>.<HMAC-SHA256(token, …)>`, good for
 *   GET requests only and for 12 hours at most; a new one is made every hour (an event stream the
 *   browser gave up on, its key refused, is opened again with the new one: useLiveEvents.ts,
 *   TypingLine).
 */

const STORE = 'hchat_api_token';
/** How long a URL key is good for, in seconds (src/peer/api-auth.ts allows 12 hours at most). */
const KEY_LIFE = 12 * 3600;
/** How often a new URL key is made, in milliseconds. */
const KEY_RENEW = 3600 * 1000;

// Outside a page (a module of the UI imported by a Node test) there is no address to read.
const token = typeof location === 'undefined' ? '' : takeToken();
let key = '';

/** The token: from the address (once, then out of it) or from this tab's storage. */
function takeToken(): string {
  const url = new URL(location.href);
  const given = url.searchParams.get('token');
  let kept = '';
  try {
    if (given !== null) sessionStorage.setItem(STORE, given);
    // A page of another site opened this window: the browser copied its tab's storage here (the
    // HTML standard's session storage copy), our token with it, and that page holds a handle on
    // this window. The token stays behind: this window asks for the ui= address like a new tab.
    else if (openedByAnotherSite()) sessionStorage.removeItem(STORE);
    kept = sessionStorage.getItem(STORE) ?? '';
  } catch {
    // no storage (a locked-down browser): the token lives as long as the page
  }
  if (given !== null) {
    url.searchParams.delete('token');
    history.replaceState(history.state, '', url.pathname + url.search + url.hash);
  }
  return given ?? kept;
}

/** True when this window was opened by a page of another origin (its opener is unreadable). */
function openedByAnotherSite(): boolean {
  const opener = window.opener as Window | null;
  if (!opener) return false;
  try {
    return opener.location.origin !== location.origin;
  } catch {
    return true;
  }
}

/** The headers that open the API: the token, when the page has one. */
export function authHeaders(): Record<string, string> {
  return token ? { authorization: `Bearer ${token}` } : {};
}

/** `url` (of this origin) with the current URL key in its query, for what the browser loads. */
export function withKey(url: string): string {
  if (!key) return url;
  return `${url}${url.includes('?') ? '&' : '?'}key=${key}`;
}

/**
 * Calls `reopen` 3 s after the browser gave up on `es` (closed it: its URL key refused), so that
 * it is opened again with the current key; returns what cancels that when `es` is closed on purpose.
 */
export function reopenWhenGivenUp(es: EventSource, reopen: () => void): () => void {
  let retry: ReturnType<typeof setTimeout> | undefined;
  es.addEventListener('error', () => {
    if (es.readyState === EventSource.CLOSED && retry === undefined)
      retry = setTimeout(reopen, 3000);
  });
  return () => clearTimeout(retry);
}

function base64url(bytes: ArrayBuffer): string {
  let s = '';
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

async function makeKey(): Promise<void> {
  if (!token || !crypto.subtle) return;
  const expiry = Math.floor(Date.now() / 1000) + KEY_LIFE;
  const enc = new TextEncoder();
  const mac = await crypto.subtle.importKey(
    'raw',
    enc.encode(token),
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['sign'],
  );
  const sig = await crypto.subtle.sign('HMAC', mac, enc.encode(`hchat url key v1 ${expiry}`));
  key = `${expiry}.${base64url(sig)}`;
}

/** Makes the first URL key (the page renders after it), and a new one every hour. */
export async function startAuth(): Promise<void> {
  setInterval(() => void makeKey().catch(() => undefined), KEY_RENEW);
  await makeKey().catch(() => undefined);
}
