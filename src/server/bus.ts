/**
 * The server's event fan-out seam. A server instance publishes what happened (a stored message,
 * a tracker change) on the bus and delivers what it receives from the bus to its own
 * connections. `LocalBus` serves one instance; `NatsBus` (bus-nats.ts) lets several instances
 * that share one database see each other's events (SPEC §11). The events themselves are schemas
 * (bus-events.ts), so that what arrives from another process is checked like any input.
 */
import type { BusEvent } from './bus-events.js';

export type { BusEvent } from './bus-events.js';

/** Hears bus events; `from` is the other instance an event came from (absent: this one). */
export type BusHandler = (event: BusEvent, from?: string) => void;

/** Publish/subscribe between server instances. */
export interface EventBus {
  /** Delivers to this instance's subscribers at once, and to the other instances' if any. */
  publish(event: BusEvent): void;
  /**
   * Returns a function that unsubscribes. `from` names the instance an event came from, when it
   * is another (on a shared bus); events of this instance come without it.
   */
  subscribe(handler: BusHandler): () => void;
  /**
   * Whether events reach the other instances now. While false, what they publish may not reach
   * this one either (and this one's may not reach them): the store stays the truth.
   */
  ready(): boolean;
  /**
   * Runs `handler` each time the bus comes back after an outage (this instance hears the others
   * again), so that it can catch up from the store on what it may have missed meanwhile.
   * Returns a function that removes it.
   */
  onReconnect(handler: () => void): () => void;
  close(): Promise<void>;
}

/** In-process bus: delivers synchronously to this process's subscribers. */
export class LocalBus implements EventBus {
  private readonly handlers = new Set<BusHandler>();

  publish(event: BusEvent): void {
    for (const h of this.handlers) h(event);
  }

  subscribe(handler: BusHandler): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  /** Always: there is no other instance to reach. */
  ready(): boolean {
    return true;
  }

  /** Never fires: an in-process bus has no outage. */
  onReconnect(_handler: () => void): () => void {
    return () => {};
  }

  async close(): Promise<void> {
    this.handlers.clear();
  }
}
