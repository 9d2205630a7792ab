import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkTiming, decide, DEFAULT_TIMING, heldRecord, lapsed, releasedRecord, requestTimeoutMs, type ElectionView, type LeaderElectionTiming } from '../../src/k8s/lease.js';

const t = DEFAULT_TIMING;
const me = 'gw-a';
const view = (v: Partial<ElectionView>): ElectionView => ({
  identity: me,
  now: 100_000,
  timing: t,
  leading: false,
  lastRenewAt: 0,
  record: undefined,
  observedAt: 0,
  ...v,
});
const held = (holder: string, extra: object = {}) => ({ holderIdentity: holder, leaseDurationSeconds: 15, renewTime: '2030-01-01T00:00:00.000000Z', ...extra });

describe('checkTiming', () => {
  it("accepts client-go's defaults and refuses what client-go's NewLeaderElector refuses", () => {
    expect(checkTiming(DEFAULT_TIMING)).toEqual({ leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 });
    expect(checkTiming({ leaseDurationMs: 6_000, renewDeadlineMs: 4_000, retryPeriodMs: 1_000 })).toBeTruthy();
    expect(() => checkTiming({ leaseDurationMs: 10_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 })).toThrow(/lease duration must be longer than the renew deadline/);
    expect(() => checkTiming({ leaseDurationMs: 15_000, renewDeadlineMs: 2_400, retryPeriodMs: 2_000 })).toThrow(/renew deadline must be longer than 1.2 × the retry period/);
    expect(() => checkTiming({ leaseDurationMs: 15_500, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 })).toThrow(/whole number of seconds/);
    expect(() => checkTiming({ leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 0 })).toThrow(/retry period must be positive/);
  });

  it('gives every request a timeout shorter than the renew deadline', () => {
    expect(requestTimeoutMs(t)).toBe(5_000);
    expect(requestTimeoutMs(t)).toBeLessThan(t.renewDeadlineMs);
  });
});

describe('decide', () => {
  it('creates a missing Lease', () => {
    expect(decide(view({}))).toEqual({ do: 'create' });
  });

  it("waits for another holder's lease to expire by the time this replica saw it change", () => {
    const record = held('gw-b');
    expect(decide(view({ record, observedAt: 95_000 }))).toEqual({ do: 'wait', holder: 'gw-b', forMs: 10_000 });
    expect(decide(view({ record, observedAt: 85_001 }))).toEqual({ do: 'wait', holder: 'gw-b', forMs: 1 });
    expect(decide(view({ record, observedAt: 85_000 }))).toEqual({ do: 'acquire' });
  });

  it("ignores the holder's renewTime, which another clock wrote", () => {
    // Long ago by the holder's clock, but this replica saw it change a moment ago: the holder is alive.
    expect(decide(view({ record: held('gw-b', { renewTime: '2001-01-01T00:00:00.000000Z' }), observedAt: 99_000 })).do).toBe('wait');
    // In the future by the holder's clock, but unchanged for longer than its duration: it is gone.
    expect(decide(view({ record: held('gw-b', { renewTime: '2099-01-01T00:00:00.000000Z' }), observedAt: 1_000 })).do).toBe('acquire');
  });

  it("measures with the holder's lease duration, and takes a released Lease at once", () => {
    expect(decide(view({ record: held('gw-b', { leaseDurationSeconds: 60 }), observedAt: 50_000 }))).toEqual({ do: 'wait', holder: 'gw-b', forMs: 10_000 });
    expect(decide(view({ record: held('', { leaseDurationSeconds: 1 }), observedAt: 99_999 }))).toEqual({ do: 'acquire' });
    expect(decide(view({ record: { leaseDurationSeconds: 1 }, observedAt: 99_999 }))).toEqual({ do: 'acquire' });
  });

  it('renews its own Lease, and takes it back after a lapse when no one else took it', () => {
    expect(decide(view({ record: held(me), leading: true, lastRenewAt: 98_000, observedAt: 98_000 }))).toEqual({ do: 'renew' });
    expect(decide(view({ record: held(me), observedAt: 99_000 }))).toEqual({ do: 'acquire' });
  });

  it('keeps leading through failed renews until the renew deadline, then steps down', () => {
    const leader = { record: held(me), leading: true, observedAt: 90_000 };
    expect(decide(view({ ...leader, lastRenewAt: 90_001 }))).toEqual({ do: 'renew' });
    expect(decide(view({ ...leader, lastRenewAt: 90_000 })).do).toBe('step-down');
    expect(lapsed(view({ ...leader, lastRenewAt: 90_001 }))).toBe(false);
    expect(lapsed(view({ ...leader, lastRenewAt: 90_000 }))).toBe(true);
    expect(lapsed(view({ record: held(me), leading: false, lastRenewAt: 0 }))).toBe(false);
  });

  it('steps down when resumed after a pause, before trying to renew, even though the Lease still names it', () => {
    // Paused for 20 s after the last renew: the Lease (as last seen) still names this replica.
    const d = decide(view({ record: held(me), leading: true, lastRenewAt: 80_000, observedAt: 80_000 }));
    expect(d).toEqual({ do: 'step-down', why: 'not renewed within the renew deadline (10000 ms)' });
  });

  it('steps down at once when another replica holds the Lease', () => {
    expect(decide(view({ record: held('gw-b'), leading: true, lastRenewAt: 99_000, observedAt: 99_500 }))).toEqual({ do: 'step-down', why: 'the lease is held by gw-b' });
    expect(decide(view({ record: held(''), leading: true, lastRenewAt: 99_000, observedAt: 99_500 }))).toEqual({ do: 'step-down', why: 'the lease is held by no one' });
  });

  it('never lets a candidate acquire before the leader it last saw renew has stepped down', () => {
    const timing = fc
      .record({ lease: fc.integer({ min: 2, max: 60 }), deadlineFraction: fc.double({ min: 0.05, max: 0.99, noNaN: true }), retry: fc.integer({ min: 1, max: 5_000 }) })
      .map(({ lease, deadlineFraction, retry }) => ({ leaseDurationMs: lease * 1000, renewDeadlineMs: Math.round(lease * 1000 * deadlineFraction), retryPeriodMs: retry }))
      .filter((x: LeaderElectionTiming) => {
        try {
          checkTiming(x);
          return true;
        } catch {
          return false; // timings checkTiming refuses are never used
        }
      });
    fc.assert(
      fc.property(timing, fc.integer({ min: 0, max: 1e9 }), fc.integer({ min: 0, max: 100_000 }), fc.integer({ min: 0, max: 200_000 }), (timing, sentAt, seenAfter, at) => {
        // The leader's renew was sent at sentAt; the candidate saw its result no earlier.
        const record = heldRecord(undefined, 'leader', new Date(0), timing);
        const now = sentAt + at;
        const candidate = decide({ identity: 'candidate', now, timing, leading: false, lastRenewAt: 0, record, observedAt: sentAt + seenAfter });
        const leader = decide({ identity: 'leader', now, timing, leading: true, lastRenewAt: sentAt, record, observedAt: sentAt });
        if (candidate.do === 'acquire') expect(leader.do).toBe('step-down');
      }),
    );
  });
});

describe('records', () => {
  const wall = new Date('2030-05-06T07:08:09.123Z');

  it('creates with no transitions, renews keeping acquireTime and transitions, and counts a takeover', () => {
    const created = heldRecord(undefined, me, wall, t);
    expect(created).toEqual({ holderIdentity: me, leaseDurationSeconds: 15, acquireTime: '2030-05-06T07:08:09.123000Z', renewTime: '2030-05-06T07:08:09.123000Z', leaseTransitions: 0 });
    const later = new Date(wall.getTime() + 2_000);
    expect(heldRecord(created, me, later, t)).toEqual({ ...created, renewTime: '2030-05-06T07:08:11.123000Z' });
    expect(heldRecord(created, 'gw-b', later, t)).toEqual({
      holderIdentity: 'gw-b',
      leaseDurationSeconds: 15,
      acquireTime: '2030-05-06T07:08:11.123000Z',
      renewTime: '2030-05-06T07:08:11.123000Z',
      leaseTransitions: 1,
    });
  });

  it("releases as client-go's ReleaseOnCancel does: no holder, a one-second lease, transitions kept", () => {
    const current = { ...heldRecord(undefined, me, wall, t), leaseTransitions: 4 };
    expect(releasedRecord(current, wall)).toEqual({
      holderIdentity: '',
      leaseDurationSeconds: 1,
      acquireTime: '2030-05-06T07:08:09.123000Z',
      renewTime: '2030-05-06T07:08:09.123000Z',
      leaseTransitions: 4,
    });
    // Whoever takes a released Lease counts a transition.
    expect(heldRecord(releasedRecord(current, wall), 'gw-b', wall, t).leaseTransitions).toBe(5);
  });
});
