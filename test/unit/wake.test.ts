import { EventEmitter } from 'node:events';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { Backend } from '../../src/gateway/backends.js';
import { Waker, type WakeSources } from '../../src/gateway/wake.js';
import { StatusError } from '../../src/k8s/status.js';
import type { Tenant } from '../../src/tenants/resources.js';
import { parseValues } from '../../src/tenants/values.js';

const log = pino({ level: 'silent' });
const route = { tenant: 'nap' } as Backend;

function tenant(generation: number, asleep: boolean, phase: NonNullable<NonNullable<Tenant['status']>['phase']>): Tenant {
  return {
    apiVersion: 'kplex.dev/v1alpha1',
    kind: 'Tenant',
    metadata: { name: 'nap', uid: 'u1', generation },
    spec: { values: parseValues({}), ...(asleep ? { asleep } : {}) },
    status: { phase, observedGeneration: generation, conditions: [{ type: 'Ready', status: phase === 'Ready' ? 'True' : 'False', reason: phase, message: 'm', lastTransitionTime: '' }] },
  };
}

/** A host as the gateway's caches see it: a sleeping tenant, woken (generation 2) when asked, Ready once `ready()` is called. */
function sleepingHost(wake: () => Promise<number> = async () => 2) {
  let t: Tenant | undefined = tenant(1, true, 'Sleeping');
  let routed = false;
  const asked: string[] = [];
  const sources: WakeSources = {
    tenant: () => t,
    route: () => (routed ? route : undefined),
    wake: async (name) => {
      asked.push(name);
      const g = await wake();
      t = tenant(g, false, 'Sleeping');
      return g;
    },
  };
  return { sources, asked, ready: () => ((t = tenant(2, false, 'Ready')), (routed = true)), set: (x: Tenant | undefined) => (t = x) };
}

const client = () => Object.assign(new EventEmitter(), { destroyed: false });
const statusOf = async (p: unknown): Promise<StatusError> => {
  try {
    await p;
  } catch (err) {
    if (err instanceof StatusError) return err;
    throw err;
  }
  throw new Error('it did not fail');
};

describe('the gateway waking a tenant', () => {
  it('passes an awake tenant at once, and refuses one without a route that is not asleep', () => {
    const awake: WakeSources = { tenant: () => tenant(1, false, 'Ready'), route: () => route, wake: async () => 1 };
    expect(new Waker(awake, log).backendFor('nap', client())).toBe(route);
    const creating: WakeSources = { ...awake, route: () => undefined, tenant: () => tenant(1, false, 'Pending') };
    expect(() => new Waker(creating, log).backendFor('nap', client())).toThrow(/the control plane of tenant "nap" is unavailable/);
  });

  it('asks for one wake however many requests wait, and answers them all once the tenant is ready', async () => {
    const h = sleepingHost();
    const w = new Waker(h.sources, log);
    const waiting = [1, 2, 3].map(() => w.backendFor('nap', client()));
    await new Promise((r) => setTimeout(r, 100));
    expect(h.asked).toEqual(['nap']);
    h.ready();
    expect(await Promise.all(waiting)).toEqual([route, route, route]);
  });

  it('drops a client that goes away, and the others still get their answer', async () => {
    const h = sleepingHost();
    const w = new Waker(h.sources, log);
    const leaving = client();
    const left = w.backendFor('nap', leaving);
    const stays = w.backendFor('nap', client());
    leaving.emit('close');
    expect((await statusOf(left)).message).toMatch(/the client went away/);
    h.ready();
    expect(await stays).toBe(route);
  });

  it('never wakes a tenant for a client that is gone already', async () => {
    const h = sleepingHost();
    const gone = Object.assign(client(), { destroyed: true });
    await statusOf(new Waker(h.sources, log).backendFor('nap', gone));
    await new Promise((r) => setTimeout(r, 50));
    expect(h.asked).toEqual([]);
  });

  it('holds at most maxWaiting requests (429), each at most timeoutMs (503 naming the tenant)', async () => {
    const h = sleepingHost();
    const w = new Waker(h.sources, log, { maxWaiting: 2, timeoutMs: 200 });
    const waiting = [w.backendFor('nap', client()), w.backendFor('nap', client())];
    expect(() => w.backendFor('nap', client())).toThrow(expect.objectContaining({ code: 429, message: expect.stringMatching(/2 requests are waiting for tenant "nap" to wake/) }));
    for (const p of waiting) {
      const s = await statusOf(p);
      expect(s.code).toBe(503);
      expect(s.message).toBe('the control plane of tenant "nap" is unavailable: it did not wake within 0.2s');
    }
  });

  it('answers 503 when the wake cannot be asked, the tenant fails or is deleted meanwhile', async () => {
    const refused = sleepingHost(async () => {
      throw new Error('forbidden');
    });
    expect((await statusOf(new Waker(refused.sources, log).backendFor('nap', client()))).message).toMatch(/it could not be woken: forbidden/);
    const deleted = sleepingHost();
    const p = new Waker(deleted.sources, log).backendFor('nap', client());
    await new Promise((r) => setTimeout(r, 50));
    deleted.set(undefined);
    expect((await statusOf(p)).message).toMatch(/it did not wake: it was deleted/);
  });
});
