/**
 * The SDK's side of the REST API gateway (docs/REST.md "Gateway"): one WebSocket that stays
 * open, reconnecting with a growing pause (250 ms doubling to 10 s) and resuming its session
 * from the last event it read, so that a cut costs nothing. What it hears goes to `on`: `ready`
 * (a new session; after `invalid_session` events may have been missed, and the caller catches
 * up by its cursors), and each `event`.
 */
import WebSocket from 'ws';

/** What the gateway says. */
export type GatewayFrame =
  | { t: 'ready'; session: string; seq: number; user: string; channels: string[] }
  | { t: 'resumed'; session: string; seq: number }
  | { t: 'invalid_session' }
  | { t: 'event'; seq: number; type: string; data: unknown }
  | { t: 'pong' }
  /** The server refused the token (401/403), or revoked it while open: nothing more comes. */
  | { t: 'fatal'; reason: string };

export class GatewayConnection {
  private socket: WebSocket | undefined;
  private session: string | undefined;
  private seq = 0;
  private stopped = false;
  private pause = 250;
  private retry: NodeJS.Timeout | undefined;

  constructor(
    private readonly url: string,
    private readonly token: string,
    private readonly on: (f: GatewayFrame) => void,
  ) {}

  start(): void {
    if (this.stopped) return;
    const q = this.session ? `?resume=${this.session}&seq=${this.seq}` : '';
    const ws = new WebSocket(this.url + q, { headers: { authorization: `Bearer ${this.token}` } });
    this.socket = ws;
    ws.on('message', (data) => {
      const f = JSON.parse(String(data)) as GatewayFrame;
      if (f.t === 'ready' || f.t === 'resumed') {
        this.session = f.session;
        this.seq = f.seq;
        this.pause = 250;
      } else if (f.t === 'event') this.seq = f.seq;
      else if (f.t === 'invalid_session') this.session = undefined;
      this.on(f);
    });
    ws.on('unexpected-response', (_req, res) => {
      if (res.statusCode === 401 || res.statusCode === 403) {
        this.stop();
        this.on({ t: 'fatal', reason: `HTTP ${res.statusCode}` });
      }
      ws.terminate();
    });
    ws.on('error', () => undefined); // 'close' follows
    ws.on('close', (code) => {
      if (this.socket !== ws || this.stopped) return;
      // A revoked or invalid token is final; anything else is retried.
      if (code === 4004) {
        this.stop();
        return this.on({ t: 'fatal', reason: 'E_TOKEN_INVALID' });
      }
      // Not unref'd: while it waits to reconnect, nothing else may keep the process alive (a
      // bot whose server restarted ended at once with exit 0, its socket gone).
      this.retry = setTimeout(() => this.start(), this.pause);
      this.pause = Math.min(this.pause * 2, 10_000);
    });
  }

  /** Cuts the current socket as a network failure would (the connection resumes). */
  cut(): void {
    this.socket?.terminate();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retry);
    this.socket?.close();
  }

  get stopping(): boolean {
    return this.stopped;
  }
}
