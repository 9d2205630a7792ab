import { tooManyRequests } from '../k8s/status.js';

/**
 * How many requests may be in flight at once, per tenant and per user, like kube-apiserver's
 * max-requests-inflight. Long-running requests (watches, logs, exec, attach, port-forward) are counted
 * apart from ordinary ones: a user holding many watches never blocks another user's gets.
 */
export interface Limits {
  perTenant: { requests: number; longRunning: number };
  perUser: { requests: number; longRunning: number };
}

export const DEFAULT_LIMITS: Limits = {
  perTenant: { requests: 256, longRunning: 256 },
  perUser: { requests: 64, longRunning: 64 },
};

/** What a request holds while in flight; released exactly once when it ends. */
export type Release = () => void;

export class InFlight {
  private readonly counts = new Map<string, number>();

  constructor(private readonly limits: Limits) {}

  /** Takes a slot for the tenant and the user, or throws a 429 Status naming the limit that was reached. */
  acquire(tenant: string, user: string, longRunning: boolean): Release {
    const kind = longRunning ? 'longRunning' : 'requests';
    const what = longRunning ? 'long-running requests' : 'requests';
    // NUL cannot occur in a tenant or user name that passed authentication, so keys never collide.
    const tenantKey = `${kind}\u0000${tenant}`;
    const userKey = `${kind}\u0000${tenant}\u0000${user}`;
    if (this.count(userKey) >= this.limits.perUser[kind]) throw tooManyRequests(`user "${user}" has ${this.limits.perUser[kind]} ${what} in flight`);
    if (this.count(tenantKey) >= this.limits.perTenant[kind]) throw tooManyRequests(`tenant "${tenant}" has ${this.limits.perTenant[kind]} ${what} in flight`);
    this.add(userKey, 1);
    this.add(tenantKey, 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.add(userKey, -1);
      this.add(tenantKey, -1);
    };
  }

  private count(key: string): number {
    return this.counts.get(key) ?? 0;
  }

  private add(key: string, n: number): void {
    const v = this.count(key) + n;
    if (v === 0) this.counts.delete(key);
    else this.counts.set(key, v);
  }
}
