/**
 * A hello's version, checked before anything else in it (PROTOCOL.md §3.2, §4.1): another
 * version's hello may have other members, so only `v` is read first, and anything but this
 * protocol's version (another number, a string, no `v` at all) is `E_VERSION_MISMATCH`.
 */
import { PROTOCOL_VERSION } from './common.js';
import { HchatError } from './errors.js';

/** Throws `E_VERSION_MISMATCH` unless `hello.v` is this protocol's version; `self` checks it. */
export function checkHelloVersion(hello: Record<string, unknown>, self: 'server' | 'peer'): void {
  const v = hello.v;
  if (v === PROTOCOL_VERSION) return;
  const said =
    v === undefined
      ? 'hello without a protocol version'
      : `protocol version ${JSON.stringify(v).slice(0, 20)} not supported`;
  throw new HchatError('E_VERSION_MISMATCH', `${said}; this ${self} speaks ${PROTOCOL_VERSION}`);
}

/** What a hello after the first is, on either link (§3.2, §4.1): fatal. */
export function helloSentTwice(): HchatError {
  return new HchatError('E_BAD_FRAME', 'hello sent twice');
}
