/**
 * When connections to one address start, to the microsecond: tcpdump in a network namespace
 * prints each SYN (not SYN-ACK) to `ip:port` with its kernel timestamp (the wall clock, as
 * Date.now()). bench/nat.ts dates a direct P2P dial by it, which the dialling peer's connection
 * log does not record: the SYN leaves within the dial's first tick.
 */
import { spawn, type ChildProcess } from 'node:child_process';

export interface SynTimes {
  /** The SYNs seen so far, in ms since the epoch (fractional). */
  times: number[];
  proc: ChildProcess;
}

/**
 * Starts the capture on `iface` of namespace `ns`; resolves once tcpdump listens. `own` gets the
 * process at once, so that it is ended even if it never listens.
 */
export function watchSyns(
  ns: string,
  iface: string,
  ip: string,
  port: number,
  own: (p: ChildProcess) => void,
): Promise<SynTimes> {
  const filter = `tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn and dst host ${ip} and dst port ${port}`;
  // `ip netns exec` execs tcpdump in place: killing this pid ends the capture.
  const proc = spawn(
    'ip',
    ['netns', 'exec', ns, 'tcpdump', '-i', iface, '-n', '-tt', '-l', '--immediate-mode', filter],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  own(proc);
  const times: number[] = [];
  let out = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    let nl: number;
    while ((nl = out.indexOf('\n')) >= 0) {
      const m = /^(\d+\.\d+) /.exec(out.slice(0, nl));
      out = out.slice(nl + 1);
      if (m) times.push(Number(m[1]) * 1000);
    }
  });
  let err = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tcpdump did not start: ${err}`)), 10_000);
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
      err += d;
      if (!err.includes('listening on')) return;
      clearTimeout(timer);
      resolve({ times, proc });
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`tcpdump exited with ${code}: ${err}`));
    });
  });
}
