/**
 * Where to send a peer's media, from where this peer stands (docs/PROTOCOL.md §5.6): a viewer,
 * its parent and a relay's children announce their UDP candidates (§3.8) in `watch`,
 * `StreamParent` and `StreamChild`, and each side picks the address the other's datagrams will
 * come from as it sees them, so that both ends of a hop agree on it (the hop's keys, consent and
 * feedback are all looked up by that address):
 *
 *   - the other's server-reflexive UDP address, when it is behind a NAT other than ours: its
 *     NAT maps its media port to that public address for every destination (a NAT that keeps
 *     ports, as STUN showed), and the first datagrams each side sends open its own NAT for the
 *     other's (UDP hole punching: the viewer's PLI and reports, the parent's consent checks);
 *   - its host address when it is behind the same NAT as we are (one home: the LAN works, and
 *     a router need not loop back to itself);
 *   - otherwise what the protocol said before candidates: the address as given.
 *
 * Claimed addresses are safe to use: media goes to an address only once it answered a consent
 * check sent there (stream/consent.ts), so a false one gets only the small checks.
 */
import type { Candidate } from '../protocol/common.js';
import type { Remote } from '../stream/media-socket.js';

/** At most this many candidates travel with a viewer or parent. */
export const MEDIA_CANDIDATES = 4; // MediaCandidates in protocol/stream-ops.ts

/**
 * The candidates of a peer's announced ones that media messages carry: its UDP ones, and its
 * TCP server-reflexive one (a NAT that answered no STUN: UDP blocked, see needsTunnel).
 */
export function mediaCandidates(cs: readonly Candidate[]): Candidate[] {
  return cs.filter((c) => c.proto === 'udp' || c.type === 'srflx').slice(0, MEDIA_CANDIDATES);
}

/**
 * Whether a hop between us and a peer with these candidates must go through the server's relay
 * as a media tunnel (§5.6): not inside one home; otherwise when either side's NAT draws a new
 * UDP port per destination (its srflx port is not its base: no address to aim at), or stands in
 * front of a peer whose STUN went unanswered (UDP blocked).
 */
export function needsTunnel(own: readonly Candidate[], theirs: readonly Candidate[] = []): boolean {
  const ours = publicIp(own);
  if (ours !== undefined && ours === publicIp(theirs)) return false;
  return unreachableUdp(own) || unreachableUdp(theirs);
}

/**
 * Whether a hop between us and a peer with these candidates crosses a NAT (one side behind one,
 * and not both behind the same): where a silent UDP hop may be a firewall, and a tunnel may help.
 */
export function acrossNats(own: readonly Candidate[], theirs: readonly Candidate[] = []): boolean {
  const ours = publicIp(own);
  const their = publicIp(theirs);
  return (ours !== undefined || their !== undefined) && ours !== their;
}

function unreachableUdp(cs: readonly Candidate[]): boolean {
  const udp = cs.find((c) => c.type === 'srflx' && c.proto === 'udp');
  if (udp) return udp.base !== undefined && udp.base !== udp.port;
  return cs.some((c) => c.type === 'srflx' && c.proto === 'tcp');
}

/** This peer's public address, as its server-reflexive candidates show it (UDP first). */
export function publicIp(own: readonly Candidate[]): string | undefined {
  const srflx = own.filter((c) => c.type === 'srflx');
  return (srflx.find((c) => c.proto === 'udp') ?? srflx[0])?.ip;
}

/** The address to exchange media with a peer whose `given` address and candidates these are. */
export function mediaAddress(
  given: Remote,
  candidates: readonly Candidate[] | undefined,
  ourPublicIp: string | undefined,
): Remote {
  const udp = (candidates ?? []).filter((c) => c.proto === 'udp');
  const srflx = udp.find((c) => c.type === 'srflx');
  const host = udp.find((c) => c.type === 'host');
  if (srflx && srflx.ip !== ourPublicIp) return { ip: srflx.ip, port: srflx.port };
  if (srflx && host) return { ip: host.ip, port: host.port };
  return { ip: given.ip, port: given.port };
}
