/** How long a key waits before it is retried after `failures` failures in a row: doubling from `base` up to `max`. */
export const backoff = (failures: number, base: number, max: number): number => Math.min(max, base * 2 ** Math.max(0, failures - 1));

/**
 * A level-triggered work queue: keys say "look at this again". A few keys are worked at once; a key
 * queued again while it runs is run again after it. A failed key is retried after the delay
 * `retryAfter` chooses from the error and how often the key failed in a row; a key has one pending
 * retry at most, however often it fails or is queued meanwhile.
 */
export class WorkQueue {
  private readonly queued = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly retries = new Map<string, NodeJS.Timeout>();
  private draining?: Promise<void>;
  private started = false;
  private stopped = false;

  constructor(
    private readonly work: (key: string) => Promise<void>,
    private readonly retryAfter: (key: string, err: Error, failures: number) => number,
    private readonly concurrency = 16,
  ) {}

  add(key: string): void {
    if (this.stopped) return;
    this.queued.add(key);
    this.kick();
  }

  /** Adds `key` after `ms`, unless a retry of it is pending already. */
  later(key: string, ms: number): void {
    if (this.stopped || this.retries.has(key)) return;
    this.retries.set(key, setTimeout(() => {
      this.retries.delete(key);
      this.add(key);
    }, ms).unref());
  }

  /** Starts working what was queued meanwhile. */
  start(): void {
    this.started = true;
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.retries.values()) clearTimeout(timer);
    this.retries.clear();
    await this.draining;
  }

  private kick(): void {
    if (!this.started || this.stopped || this.draining) return;
    this.draining = this.drain().finally(() => {
      this.draining = undefined;
      // Added after the last look, before this ran.
      if (this.queued.size) this.kick();
    });
  }

  private async drain(): Promise<void> {
    const running = new Map<string, Promise<void>>();
    while ((this.queued.size || running.size) && !this.stopped) {
      for (const key of this.queued) {
        if (running.size >= this.concurrency) break;
        if (running.has(key)) continue;
        this.queued.delete(key);
        running.set(key, this.work(key)
          .then(() => void this.failures.delete(key))
          .catch((err: Error) => {
            const failures = (this.failures.get(key) ?? 0) + 1;
            this.failures.set(key, failures);
            this.later(key, this.retryAfter(key, err, failures));
          })
          .finally(() => running.delete(key)));
      }
      if (running.size) await Promise.race(running.values());
    }
  }
}
