import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseShutdown } from '../../src/cli/gateway.js';
import { Drain, type Closable } from '../../src/gateway/drain.js';

afterEach(() => vi.useRealTimers());

/** A stream that records what its owner was told, and ends soon after close() when `obliging` (as sockets do: a turn later). */
function stream(drain: Drain, obliging: boolean): { calls: string[]; forget: () => void } {
  const calls: string[] = [];
  let forget = (): void => undefined;
  const s: Closable = {
    close: () => {
      calls.push('close');
      if (obliging) queueMicrotask(() => forget());
    },
    destroy: () => calls.push('destroy'),
  };
  forget = drain.own(s);
  return { calls, forget };
}

describe('Drain', () => {
  it('is ready until it drains, and closes nothing while draining', () => {
    const drain = new Drain();
    const a = stream(drain, true);
    expect(drain.leaving).toBe(false);
    drain.drain();
    expect(drain.leaving).toBe(true);
    expect(a.calls).toEqual([]);
    expect(drain.size).toBe(1);
  });

  it('closes every open stream and resolves as soon as they have ended', async () => {
    const drain = new Drain();
    const a = stream(drain, true);
    const b = stream(drain, true);
    await drain.closeAll(60_000);
    expect(a.calls).toEqual(['close']);
    expect(b.calls).toEqual(['close']);
    expect(drain.size).toBe(0);
  });

  it('destroys the streams still open when the grace period ends', async () => {
    vi.useFakeTimers();
    const drain = new Drain();
    const quick = stream(drain, true);
    const stuck = stream(drain, false);
    const done = drain.closeAll(1000);
    await vi.advanceTimersByTimeAsync(999);
    expect(stuck.calls).toEqual(['close']);
    await vi.advanceTimersByTimeAsync(1);
    await done;
    expect(stuck.calls).toEqual(['close', 'destroy']);
    expect(quick.calls).toEqual(['close']);
    expect(drain.size).toBe(0);
  });

  it('resolves when the last stream ends before the grace period', async () => {
    vi.useFakeTimers();
    const drain = new Drain();
    const slow = stream(drain, false);
    const done = drain.closeAll(10_000);
    await vi.advanceTimersByTimeAsync(100);
    slow.forget();
    await done;
    expect(slow.calls).toEqual(['close']);
  });

  it('closes a stream opened once closing has begun, at once', async () => {
    const drain = new Drain();
    await drain.closeAll(1000);
    const late = stream(drain, true);
    expect(late.calls).toEqual(['close']);
    await Promise.resolve();
    expect(drain.size).toBe(0);
  });

  it('destroys everything when stopped without a grace period', () => {
    const drain = new Drain();
    const a = stream(drain, true);
    drain.destroyAll();
    expect(a.calls).toEqual(['destroy']);
    expect(drain.leaving).toBe(true);
  });
});

describe('--shutdown-delay and --shutdown-timeout', () => {
  it('reads durations, the delay possibly none', () => {
    expect(parseShutdown({ shutdownDelay: '5s', shutdownTimeout: '15s' })).toEqual({ delayMs: 5000, timeoutMs: 15_000 });
    expect(parseShutdown({ shutdownDelay: '0s', shutdownTimeout: '1m' })).toEqual({ delayMs: 0, timeoutMs: 60_000 });
    expect(parseShutdown({ shutdownDelay: '0', shutdownTimeout: '1s' })).toEqual({ delayMs: 0, timeoutMs: 1000 });
  });

  it('refuses what is not a duration, and no time at all to stop', () => {
    expect(() => parseShutdown({ shutdownDelay: 'soon', shutdownTimeout: '15s' })).toThrow(/--shutdown-delay: "soon" is not a duration/);
    expect(() => parseShutdown({ shutdownDelay: '5s', shutdownTimeout: '0s' })).toThrow(/--shutdown-timeout must be positive/);
  });
});
