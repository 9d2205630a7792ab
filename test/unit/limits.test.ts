import { describe, expect, it } from 'vitest';
import { InFlight } from '../../src/gateway/limits.js';
import { StatusError } from '../../src/k8s/status.js';

const limits = { perTenant: { requests: 3, longRunning: 2 }, perUser: { requests: 2, longRunning: 1 } };

describe('InFlight', () => {
  it('answers 429 with Retry-After once a user or a tenant holds its limit, and frees slots on release', () => {
    const f = new InFlight(limits);
    const a1 = f.acquire('t', 'alice', false);
    f.acquire('t', 'alice', false);
    const err = (() => {
      try {
        f.acquire('t', 'alice', false);
      } catch (e) {
        return e as StatusError;
      }
      return undefined;
    })();
    expect(err?.code).toBe(429);
    expect(err?.details?.retryAfterSeconds).toBe(1);
    expect(err?.message).toMatch(/user "alice" has 2 requests in flight/);
    f.acquire('t', 'bob', false);
    expect(() => f.acquire('t', 'carol', false)).toThrow(/tenant "t" has 3 requests in flight/);
    a1();
    a1(); // a second release changes nothing
    expect(() => f.acquire('t', 'carol', false)).not.toThrow();
    expect(() => f.acquire('t', 'dave', false)).toThrow(/tenant "t"/);
  });

  it('counts long-running requests apart, per tenant: one tenant at its limit leaves the others alone', () => {
    const f = new InFlight(limits);
    f.acquire('t', 'alice', true);
    expect(() => f.acquire('t', 'alice', true)).toThrow(/long-running/);
    expect(() => f.acquire('t', 'alice', false)).not.toThrow();
    f.acquire('t', 'bob', true);
    expect(() => f.acquire('t', 'carol', true)).toThrow(/tenant "t" has 2 long-running/);
    expect(() => f.acquire('u', 'alice', true)).not.toThrow();
  });
});
