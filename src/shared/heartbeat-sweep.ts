/**
 * The timer behind every heartbeat check (PROTOCOL.md §3.2: a link silent past `timeoutMs` is
 * dropped). A check counts the time since the other end's last byte was read; when this
 * process's own event loop was held (a long task, a collector pause, a suspended laptop, an
 * overloaded machine), what the other end sent meanwhile is still unread in the kernel's
 * buffers, and the check would take our stall for its silence. So a tick that comes late runs
 * its check only after the loop's next poll phase (setImmediate runs right after it), which reads
 * those bytes first. Found in the realistic mix (bench/mix.ts): member processes late by seconds
 * dropped thousands of healthy host links, and reconnecting them made them later still.
 */
export class HeartbeatSweep {
  private readonly timer: NodeJS.Timeout;
  private deferred: NodeJS.Immediate | undefined;
  private lastTick = performance.now();

  constructor(intervalMs: number, check: () => void) {
    this.timer = setInterval(() => {
      const now = performance.now();
      const late = now - this.lastTick > intervalMs * 1.5;
      this.lastTick = now;
      if (!late) return check();
      if (this.deferred) return;
      this.deferred = setImmediate(() => {
        this.deferred = undefined;
        check();
      });
    }, intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    if (this.deferred) clearImmediate(this.deferred);
    this.deferred = undefined;
  }
}
