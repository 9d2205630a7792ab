// When a tenant sleeps and when it is awake again: pure decisions, for the tenant controller (should
// this tenant sleep now?) and the gateway (may this request pass, or must it wake the tenant and wait?).
import { ANNOTATIONS, readyCondition, type Tenant } from './resources.js';
import { parseDuration } from './tokens.js';
import type { TenantValues } from './values.js';

/** The reason of the Ready condition while a woken tenant's control plane starts again. */
export const WAKING_REASON = 'Waking';

/** sleep.afterInactivity in milliseconds; undefined when the tenant does not sleep by itself. */
export const inactivityMs = (values: TenantValues): number | undefined =>
  values.sleep.afterInactivity === undefined ? undefined : parseDuration(values.sleep.afterInactivity) * 1000;

const timeOf = (text: string | undefined): number => {
  const t = text ? Date.parse(text) : NaN;
  return Number.isNaN(t) ? 0 : t;
};

/**
 * Since when the tenant has been idle: its last request through a gateway, or, when it became Ready
 * later (created, woken, restarted), that moment: a tenant just woken is not idle since before it slept.
 */
export const idleSince = (t: Tenant): number =>
  Math.max(timeOf(t.metadata.annotations?.[ANNOTATIONS.lastActive]), timeOf(readyCondition(t)?.lastTransitionTime), timeOf(t.metadata.creationTimestamp));

export type SleepDecision = { act: 'stay awake' } | { act: 'sleep' } | { act: 'look again'; inMs: number };

/** Whether an awake tenant with `afterMs` of sleep.afterInactivity, idle since `idle`, should sleep at `now`. */
export function sleepDecision(now: number, afterMs: number | undefined, idle: number): SleepDecision {
  if (afterMs === undefined) return { act: 'stay awake' };
  const due = idle + afterMs;
  return now >= due ? { act: 'sleep' } : { act: 'look again', inMs: due - now };
}

/**
 * How often a gateway writes a tenant's activity onto its Tenant: often enough that the controller never
 * sees an active tenant idle for afterInactivity (a quarter of it), at most once a second and at least
 * once a minute, so that busy tenants cost the host API server one small write a minute per replica.
 */
export const activityInterval = (afterMs: number): number => Math.min(60_000, Math.max(1_000, Math.floor(afterMs / 4)));

/** Whether a gateway that last wrote activity at `lastWritten` writes it again at `now`. */
export const activityDue = (now: number, lastWritten: number | undefined, intervalMs: number): boolean =>
  lastWritten === undefined || now - lastWritten >= intervalMs;

/**
 * What the gateway does with an authenticated request for a tenant:
 * - pass: it is awake and routed;
 * - wake: it is asleep: clear spec.asleep, then wait as for `wait`;
 * - wait: it is waking (asleep no more, its control plane starting again): hold the request until it is ready;
 * - unavailable: anything else without a route (being created, failed): 503 at once, as before sleep existed.
 */
export type WakeAction = 'pass' | 'wake' | 'wait' | 'unavailable';

export function wakeAction(t: Tenant | undefined, routed: boolean): WakeAction {
  if (!t) return routed ? 'pass' : 'unavailable';
  if (t.spec?.asleep) return 'wake';
  if (t.status?.phase === 'Sleeping') return 'wait';
  if (t.status?.phase === 'Pending' && readyCondition(t)?.reason === WAKING_REASON) return 'wait';
  return routed ? 'pass' : 'unavailable';
}

/**
 * Why a kubeconfig for the tenant would not work yet, or undefined when it would: the tenant is Ready,
 * or it is asleep or waking, so that the gateway wakes it (or holds the request until it is awake) when
 * the kubeconfig is first used. Writing one does not wake it: only a request does.
 */
export function notConnectable(t: Tenant): string | undefined {
  if (t.metadata.deletionTimestamp) return 'it is being deleted';
  if (readyCondition(t)?.status === 'True') return undefined;
  const action = wakeAction(t, false);
  return action === 'wake' || action === 'wait' ? undefined : `it is not ready (${t.status?.phase ?? 'Pending'})`;
}

export type WakeProgress = { state: 'ready' } | { state: 'waiting' } | { state: 'failed'; why: string };

/**
 * How a wake the gateway asked for stands, from the Tenant (as its cache has it) and whether a route to
 * the tenant exists. `since`: the Tenant's generation once the wake was asked: until the cache has it,
 * what it says is from before the wake.
 */
export function wakeProgress(t: Tenant | undefined, routed: boolean, since: number): WakeProgress {
  if (!t) return { state: 'failed', why: 'it was deleted' };
  const generation = Number(t.metadata.generation ?? 0);
  if (generation < since) return { state: 'waiting' };
  if (t.spec?.asleep) return { state: 'failed', why: 'it was put to sleep again' };
  const current = Number(t.status?.observedGeneration ?? 0) >= generation;
  if (!current) return { state: 'waiting' };
  if (t.status?.phase === 'Failed') return { state: 'failed', why: readyCondition(t)?.message ?? 'its control plane failed' };
  return t.status?.phase === 'Ready' && routed ? { state: 'ready' } : { state: 'waiting' };
}
