import { describe, expect, it, vi } from 'vitest';
import { backoff, WorkQueue } from '../../src/sync/queue.js';

describe('the work queue', () => {
  it('backs off from the base, doubling, up to the most', () => {
    expect([1, 2, 3, 4, 5, 6, 7].map((n) => backoff(n, 1000, 30_000))).toEqual([1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
  });

  it('runs a key queued while it runs once more after it, not twice at once', async () => {
    const runs: string[] = [];
    let release!: () => void;
    const q = new WorkQueue(async (key) => {
      runs.push(key);
      if (runs.length === 1) await new Promise<void>((r) => (release = r));
    }, () => 1000);
    q.add('slow');
    q.start();
    await vi.waitFor(() => expect(runs).toEqual(['slow']));
    q.add('slow');
    q.add('slow');
    release();
    await vi.waitFor(() => expect(runs).toEqual(['slow', 'slow']));
    await q.stop();
  });

  it('retries a failing key with one pending retry at most, backing off by its failures in a row', async () => {
    vi.useFakeTimers();
    try {
      const runs: number[] = [];
      const q = new WorkQueue(async () => {
        runs.push(Date.now());
        throw new Error('refused');
      }, (_key, _err, failures) => 1000 * failures);
      q.start();
      q.add('bad');
      await vi.advanceTimersByTimeAsync(0);
      // Queued again meanwhile (a resync): it runs, but its failure sets no second timer.
      q.add('bad');
      await vi.advanceTimersByTimeAsync(0);
      expect(runs.length).toBe(2);
      await vi.advanceTimersByTimeAsync(1000);
      expect(runs.length).toBe(3);
      await vi.advanceTimersByTimeAsync(2999);
      expect(runs.length).toBe(3);
      await vi.advanceTimersByTimeAsync(1);
      expect(runs.length).toBe(4);
      await q.stop();
    } finally {
      vi.useRealTimers();
    }
  });
});
