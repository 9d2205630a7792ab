/** A stream or socket that outlives its request handler (a watch, logs -f, an exec session), as its owner closes it. */
export interface Closable {
  /** Ends it cleanly: a watch after its last whole event, a spliced socket with a FIN after what it has sent. */
  close(): void;
  /** Ends it at once. */
  destroy(): void;
}

/**
 * Where a leaving gateway finds the streams it must end: each long-running answer and each upgraded socket
 * is registered here by its owner for as long as it is open. `serving` → `draining` (readiness fails and
 * answers ask clients to reconnect, but everything is still served, so the load balancer can drop this
 * replica first) → `closing` (every open stream is closed, and one opened after is closed on sight).
 */
export class Drain {
  private readonly open = new Set<Closable>();
  private phase: 'serving' | 'draining' | 'closing' = 'serving';
  private emptied: (() => void) | undefined;

  /** Readiness fails from the first step of leaving on. */
  get leaving(): boolean {
    return this.phase !== 'serving';
  }

  /** Step one: still serving, but no longer ready. */
  drain(): void {
    if (this.phase === 'serving') this.phase = 'draining';
  }

  /**
   * Registers a stream until the returned function is called (when it has ended, however that happened).
   * Once closing, the stream is closed at once: its client goes to another replica.
   */
  own(stream: Closable): () => void {
    this.open.add(stream);
    if (this.phase === 'closing') stream.close();
    return () => {
      this.open.delete(stream);
      if (this.open.size === 0) this.emptied?.();
    };
  }

  /** How many streams are open. */
  get size(): number {
    return this.open.size;
  }

  /**
   * Closes every open stream cleanly and waits for them to end; those still open after `graceMs` are
   * destroyed. Resolves once none is left open.
   */
  async closeAll(graceMs: number): Promise<void> {
    this.phase = 'closing';
    for (const s of [...this.open]) s.close();
    if (this.open.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.emptied = resolve;
        timer = setTimeout(resolve, graceMs);
      });
      clearTimeout(timer);
      this.emptied = undefined;
    }
    this.destroyAll();
  }

  /** Ends every open stream at once (a gateway stopped without a grace period, or one whose grace ran out). */
  destroyAll(): void {
    this.phase = 'closing';
    for (const s of [...this.open]) s.destroy();
    this.open.clear();
  }
}
