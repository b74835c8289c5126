/**
 * A task that runs once at a time: a call while it runs returns at once and asks for one more
 * round after the current one, so what arrived meanwhile is handled without two rounds ever
 * overlapping. Outboxes, mailbox pulls and backups use it.
 */
export class OneAtATime {
  private running = false;
  private again = false;

  /** `round` does one pass; `stop` ends the rounds early (the owner closed). */
  constructor(
    private readonly round: () => Promise<void>,
    private readonly stop: () => boolean = () => false,
  ) {}

  async run(): Promise<void> {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    try {
      do {
        this.again = false;
        try {
          await this.round();
        } catch (err) {
          // A round asked for meanwhile still runs; otherwise the caller hears of the failure.
          if (!this.again || this.stop()) throw err;
        }
      } while (this.again && !this.stop());
    } finally {
      this.running = false;
    }
  }
}
