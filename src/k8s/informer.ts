import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeClient, KubeObject, ResourceRef } from './client.js';
import { StatusError } from './status.js';

export interface InformerHandlers<T extends KubeObject> {
  /** Called for each object added or changed (also for every object after a re-list). */
  onUpsert?(obj: T): void;
  onDelete?(obj: T): void;
}

const keyOf = (o: KubeObject): string => `${o.metadata.namespace ?? ''}/${o.metadata.name}`;

/**
 * A cache of one collection, kept current by list + watch; a watch that ends is resumed, one that
 * expired (410 Gone) is replaced by a new list whose differences are reported as upserts and deletes.
 */
export class Informer<T extends KubeObject> {
  private readonly store = new Map<string, T>();
  private readonly abort = new AbortController();
  private synced!: Promise<void>;
  private running?: Promise<void>;

  constructor(
    private readonly client: KubeClient,
    private readonly ref: ResourceRef,
    private readonly handlers: InformerHandlers<T>,
    private readonly selectors: { labelSelector?: string; fieldSelector?: string } = {},
    private readonly onError: (err: Error) => void = () => {},
  ) {}

  /**
   * Starts the loop; resolves once the first list is in the cache, and rejects when stop() comes first
   * (a leader's client that refuses every request once leadership is lost never lists): whoever waits
   * for the cache must not wait forever.
   */
  start(): Promise<void> {
    let resolveSynced!: () => void;
    this.synced = new Promise((resolve, reject) => {
      resolveSynced = resolve;
      this.abort.signal.addEventListener('abort', () => reject(new Error(`stopped before ${this.ref.resource} were listed`)), { once: true });
    });
    // Handled here too: a caller that does not wait for the first list is told nothing.
    this.synced.catch(() => undefined);
    this.running = this.loop(resolveSynced);
    return this.synced;
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return this.store.get(`${namespace ?? ''}/${name}`);
  }

  list(): T[] {
    return [...this.store.values()];
  }

  private async relist(): Promise<string | undefined> {
    const list = await this.client.list<T>(this.ref, this.selectors);
    const seen = new Set<string>();
    for (const item of list.items) {
      const key = keyOf(item);
      seen.add(key);
      this.store.set(key, item);
      this.handlers.onUpsert?.(item);
    }
    for (const [key, old] of this.store) {
      if (!seen.has(key)) {
        this.store.delete(key);
        this.handlers.onDelete?.(old);
      }
    }
    return list.metadata.resourceVersion;
  }

  private async loop(synced: () => void): Promise<void> {
    const signal = this.abort.signal;
    let rv: string | undefined;
    let backoff = 200;
    while (!signal.aborted) {
      try {
        if (rv === undefined) {
          rv = await this.relist();
          synced();
        }
        await this.client.watch<T>(this.ref, { ...this.selectors, resourceVersion: rv, signal }, (e) => {
          if (e.type === 'BOOKMARK') {
            rv = e.object.metadata.resourceVersion ?? rv;
            return;
          }
          rv = e.object.metadata.resourceVersion ?? rv;
          const key = keyOf(e.object);
          if (e.type === 'DELETED') {
            this.store.delete(key);
            this.handlers.onDelete?.(e.object);
          } else {
            this.store.set(key, e.object);
            this.handlers.onUpsert?.(e.object);
          }
        });
        backoff = 200;
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof StatusError && err.code === 410) rv = undefined;
        else {
          this.onError(err as Error);
          await sleep(backoff);
          backoff = Math.min(backoff * 2, 5_000);
        }
      }
    }
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
  }
}
