// What the benchmarks share to measure: percentiles, and when each object of a collection first
// reached a stage, by this process's clock, from a watch.
import type { KubeClient, KubeObject, ResourceRef } from '../src/k8s/client.js';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Nearest-rank percentile of an ascending list: the value at index ⌊p/100 · n⌋ (the last one at p100), no interpolation; 0 for an empty list. */
export const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Records when each mark first holds: `marks` names the marks an object has now (say `seen:NAME` and,
 * once it runs, `running:NAME`), and the first time a mark is named is kept. Watches until `signal`.
 */
export function firstTimes(client: KubeClient, ref: ResourceRef, marks: (o: KubeObject) => string[], signal: AbortSignal): Map<string, number> {
  const at = new Map<string, number>();
  void (async () => {
    while (!signal.aborted) {
      await client.watch(ref, { signal, timeoutSeconds: 600 }, (e) => {
        if (e.type === 'BOOKMARK') return;
        const now = performance.now();
        for (const m of marks(e.object)) if (!at.has(m)) at.set(m, now);
      }).catch(() => sleep(200)); // aborted, or the watch broke: watch again unless aborted
    }
  })();
  return at;
}
