import { describe, expect, it } from 'vitest';
import { ANNOTATIONS, newTenant, type Tenant } from '../../src/tenants/resources.js';
import { activityDue, activityInterval, idleSince, inactivityMs, notConnectable, sleepDecision, wakeAction, wakeProgress, WAKING_REASON } from '../../src/tenants/sleep.js';
import { parseValues, ValuesError } from '../../src/tenants/values.js';

const T0 = Date.parse('2026-12-01T08:00:00Z');
const iso = (ms: number): string => new Date(ms).toISOString();

function tenant(o: { asleep?: boolean; phase?: NonNullable<Tenant['status']>['phase']; reason?: string; generation?: number; observed?: number; lastActive?: number; readySince?: number; message?: string } = {}): Tenant {
  return {
    apiVersion: 'kplex.dev/v1alpha1',
    kind: 'Tenant',
    metadata: {
      name: 'team-a',
      uid: 'u1',
      generation: o.generation ?? 1,
      creationTimestamp: iso(T0 - 3_600_000),
      annotations: o.lastActive === undefined ? {} : { [ANNOTATIONS.lastActive]: iso(o.lastActive) },
    },
    spec: { values: parseValues({}), ...(o.asleep === undefined ? {} : { asleep: o.asleep }) },
    status: o.phase && {
      phase: o.phase,
      observedGeneration: o.observed ?? o.generation ?? 1,
      conditions: [{ type: 'Ready', status: o.phase === 'Ready' ? 'True' : 'False', reason: o.reason ?? 'X', message: o.message ?? '', lastTransitionTime: iso(o.readySince ?? T0 - 3_600_000) }],
    },
  };
}

describe('sleep values', () => {
  it('is off by default, keeping workloads', () => {
    const v = parseValues({});
    expect(v.sleep).toEqual({ workloads: 'keep' });
    expect(inactivityMs(v)).toBeUndefined();
  });
  it.each([['90s', 90_000], ['30m', 1_800_000], ['2h', 7_200_000], ['1d', 86_400_000]])('reads afterInactivity %s', (text, ms) => {
    expect(inactivityMs(parseValues({ sleep: { afterInactivity: text } }))).toBe(ms);
  });
  it.each(['30', '30min', '-5m', '0s', '1.5h', ' 30m', ''])('refuses afterInactivity "%s" with a clear error', (text) => {
    expect(() => parseValues({ sleep: { afterInactivity: text } })).toThrow(ValuesError);
    expect(() => parseValues({ sleep: { afterInactivity: text } })).toThrow(/sleep\.afterInactivity: not a duration like 90s, 30m, 2h or 1d/);
  });
  it('refuses unknown workloads and unknown keys', () => {
    expect(() => parseValues({ sleep: { workloads: 'pause' } })).toThrow(/sleep\.workloads/);
    expect(() => parseValues({ sleep: { after: '5m' } })).toThrow(/sleep: Unrecognized key/);
  });
});

describe('when an awake tenant sleeps', () => {
  it('never without afterInactivity', () => {
    expect(sleepDecision(T0, undefined, 0)).toEqual({ act: 'stay awake' });
  });
  it('once idle for afterInactivity, else looked at again when it would be due', () => {
    expect(sleepDecision(T0, 60_000, T0 - 60_000)).toEqual({ act: 'sleep' });
    expect(sleepDecision(T0, 60_000, T0 - 45_000)).toEqual({ act: 'look again', inMs: 15_000 });
  });
  it('counts idleness from the last request, or from becoming Ready when that was later (a tenant just woken)', () => {
    expect(idleSince(tenant({ phase: 'Ready', lastActive: T0 - 10_000, readySince: T0 - 50_000 }))).toBe(T0 - 10_000);
    expect(idleSince(tenant({ phase: 'Ready', lastActive: T0 - 50_000, readySince: T0 - 10_000 }))).toBe(T0 - 10_000);
    expect(idleSince(tenant({ phase: 'Ready' }))).toBe(T0 - 3_600_000);
  });
  it('ignores an activity annotation that is no time', () => {
    const t = tenant({ phase: 'Ready', readySince: T0 - 20_000 });
    t.metadata.annotations = { [ANNOTATIONS.lastActive]: 'yesterday' };
    expect(idleSince(t)).toBe(T0 - 20_000);
  });
});

describe('how often gateways record activity', () => {
  it('a quarter of afterInactivity, between 1 s and 1 min', () => {
    expect(activityInterval(5_000)).toBe(1_250);
    expect(activityInterval(2_000)).toBe(1_000);
    expect(activityInterval(1_800_000)).toBe(60_000);
  });
  it('the first time, then once per interval', () => {
    expect(activityDue(T0, undefined, 60_000)).toBe(true);
    expect(activityDue(T0, T0 - 59_999, 60_000)).toBe(false);
    expect(activityDue(T0, T0 - 60_000, 60_000)).toBe(true);
  });
});

describe('what the gateway does with an authenticated request', () => {
  it.each([
    ['an awake tenant with a route', tenant({ phase: 'Ready' }), true, 'pass'],
    ['a tenant asked to sleep (not stopped yet)', tenant({ phase: 'Ready', asleep: true }), true, 'wake'],
    ['a sleeping tenant', tenant({ phase: 'Sleeping', asleep: true }), false, 'wake'],
    ['a tenant woken but still Sleeping', tenant({ phase: 'Sleeping' }), false, 'wait'],
    ['a tenant waking', tenant({ phase: 'Pending', reason: WAKING_REASON }), false, 'wait'],
    ['a tenant being created', tenant({ phase: 'Pending', reason: 'Starting' }), false, 'unavailable'],
    ['a failed tenant', tenant({ phase: 'Failed' }), false, 'unavailable'],
    ['a tenant the watch has not brought yet, with a route', undefined, true, 'pass'],
    ['a tenant the watch has not brought yet, without one', undefined, false, 'unavailable'],
  ] as const)('%s: %s', (_what, t, routed, action) => {
    expect(wakeAction(t, routed)).toBe(action);
  });
});

describe('how a wake stands', () => {
  it('waits while the cache is from before the wake', () => {
    expect(wakeProgress(tenant({ phase: 'Ready', asleep: true, generation: 2 }), true, 3)).toEqual({ state: 'waiting' });
  });
  it('waits until the controller has seen the wake and reports Ready, and there is a route', () => {
    expect(wakeProgress(tenant({ phase: 'Sleeping', generation: 3, observed: 2 }), false, 3)).toEqual({ state: 'waiting' });
    expect(wakeProgress(tenant({ phase: 'Pending', reason: WAKING_REASON, generation: 3 }), false, 3)).toEqual({ state: 'waiting' });
    expect(wakeProgress(tenant({ phase: 'Ready', generation: 3 }), false, 3)).toEqual({ state: 'waiting' });
    expect(wakeProgress(tenant({ phase: 'Ready', generation: 3 }), true, 3)).toEqual({ state: 'ready' });
  });
  it('fails when the tenant fails, goes back to sleep, or is deleted', () => {
    expect(wakeProgress(tenant({ phase: 'Failed', generation: 3, message: 'etcd is down' }), false, 3)).toEqual({ state: 'failed', why: 'etcd is down' });
    expect(wakeProgress(tenant({ phase: 'Ready', asleep: true, generation: 4 }), true, 3)).toEqual({ state: 'failed', why: 'it was put to sleep again' });
    expect(wakeProgress(undefined, false, 3)).toEqual({ state: 'failed', why: 'it was deleted' });
  });
});

describe('the Tenant kplex create writes', () => {
  const values = parseValues({});

  it('asks for a running control plane by default, with no asleep field at all', () => {
    const t = newTenant('team-a', values);
    expect(t).toEqual({ apiVersion: 'kplex.dev/v1alpha1', kind: 'Tenant', metadata: { name: 'team-a' }, spec: { values } });
  });

  it('with --asleep, is stored asleep: the gateway wakes it on its first request', () => {
    const t = newTenant('team-a', values, { asleep: true });
    expect(t.spec).toEqual({ values, asleep: true });
    expect(wakeAction(t, false)).toBe('wake');
  });

  it('with asleep false, is the same as without', () => {
    expect(newTenant('team-a', values, { asleep: false })).toEqual(newTenant('team-a', values));
  });
});

describe('whether kplex connect writes a kubeconfig for a tenant', () => {
  it.each([
    ['a Ready tenant', tenant({ phase: 'Ready' }), undefined],
    ['a tenant registered asleep, before the controller saw it', { ...newTenant('team-a', parseValues({}), { asleep: true }), metadata: { name: 'team-a', uid: 'u1' } }, undefined],
    ['a sleeping tenant', tenant({ phase: 'Sleeping', asleep: true }), undefined],
    ['a tenant waking', tenant({ phase: 'Pending', reason: WAKING_REASON }), undefined],
    ['a tenant woken but still Sleeping', tenant({ phase: 'Sleeping' }), undefined],
    ['a tenant being created', tenant({ phase: 'Pending', reason: 'Starting' }), 'it is not ready (Pending)'],
    ['a failed tenant', tenant({ phase: 'Failed' }), 'it is not ready (Failed)'],
  ] as const)('%s', (_what, t, why) => {
    expect(notConnectable(t as Tenant)).toBe(why);
  });

  it('refuses a tenant being deleted, asleep or not', () => {
    const deleting = (t: Tenant): Tenant => ({ ...t, metadata: { ...t.metadata, deletionTimestamp: iso(T0) } });
    expect(notConnectable(deleting(tenant({ phase: 'Ready' })))).toBe('it is being deleted');
    expect(notConnectable(deleting(tenant({ phase: 'Sleeping', asleep: true })))).toBe('it is being deleted');
  });
});
