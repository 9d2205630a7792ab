import type { Logger } from 'pino';
import { StatusError, tenantUnavailable, tooManyRequests } from '../k8s/status.js';
import type { Tenant } from '../tenants/resources.js';
import { wakeAction, wakeProgress } from '../tenants/sleep.js';
import type { Backend } from './backends.js';
import type { Awake, Deps, Described } from './context.js';

/** The client's connection: a request stops waiting when it closes. */
export interface Closable {
  readonly destroyed: boolean;
  once(event: 'close', listener: () => void): unknown;
  off(event: 'close', listener: () => void): unknown;
}

export interface WakeLimits {
  /** Requests one tenant may have waiting for it to wake; more get 429. */
  maxWaiting: number;
  /** How long a request waits for its tenant to wake before a 503. */
  timeoutMs: number;
}

export const DEFAULT_WAKE_LIMITS: WakeLimits = { maxWaiting: 256, timeoutMs: 60_000 };

/** What the Waker reads and does: the gateway's caches of Tenants and routes, and the one write that wakes. */
export interface WakeSources {
  /** The Tenant as the gateway's watch has it. */
  tenant(name: string): Tenant | undefined;
  /** The route to the tenant's API server, when there is one. */
  route(name: string): Backend | undefined;
  /** Clears the Tenant's spec.asleep; resolves to its generation after. */
  wake(name: string): Promise<number>;
}

/** How often a wake in progress looks at the caches (in memory: the Tenant watch and the routes). */
const POLL_MS = 20;

interface Waiter {
  deadline: number;
  done(result: Backend | StatusError): void;
}

/** One tenant's wake: every request waiting for it, and the Tenant generation that asked for it. */
interface Wake {
  waiters: Set<Waiter>;
  since: number;
}

/**
 * Wakes sleeping tenants for the requests that need them: the first request for a sleeping tenant
 * clears its spec.asleep (the tenant controller, on whichever replica leads, starts it again), and it
 * and every request arriving meanwhile wait until the tenant is Ready with a route, then go on. One
 * wake per tenant however many requests wait; each request waits at most timeoutMs (then 503), a
 * tenant has at most maxWaiting waiting (then 429), and a client that goes away stops waiting.
 */
export class Waker {
  private readonly wakes = new Map<string, Wake>();

  constructor(
    private readonly sources: WakeSources,
    private readonly log: Logger,
    private readonly limits: WakeLimits = DEFAULT_WAKE_LIMITS,
  ) {}

  /** The tenant's API server: at once when it is awake, else once it has woken. */
  backendFor(tenant: string, client: Closable): Backend | Promise<Backend> {
    const t = this.sources.tenant(tenant);
    const backend = this.sources.route(tenant);
    const action = wakeAction(t, !!backend);
    if (action === 'pass') return backend!;
    // Whether a tenant exists is told only to callers holding a valid token for it (authenticate ran).
    if (action === 'unavailable') throw tenantUnavailable(tenant, 'it has no ready control plane');
    return this.wait(tenant, t!, action === 'wake', client);
  }

  private wait(tenant: string, t: Tenant, asleep: boolean, client: Closable): Promise<Backend> {
    const running = this.wakes.get(tenant);
    if (running && running.waiters.size >= this.limits.maxWaiting) throw tooManyRequests(`${this.limits.maxWaiting} requests are waiting for tenant "${tenant}" to wake`, 5);
    const wake = running ?? { waiters: new Set<Waiter>(), since: Number(t.metadata.generation ?? 0) };
    const waiting = new Promise<Backend>((resolve, reject) => {
      const waiter: Waiter = {
        deadline: Date.now() + this.limits.timeoutMs,
        done: (result) => {
          wake.waiters.delete(waiter);
          client.off('close', gone);
          if (result instanceof StatusError) reject(result);
          else resolve(result);
        },
      };
      // Nobody to answer: the request stops waiting (and so never reaches the tenant).
      const gone = (): void => waiter.done(tenantUnavailable(tenant, 'the client went away while it woke'));
      client.once('close', gone);
      wake.waiters.add(waiter);
      if (client.destroyed) gone();
    });
    if (!running && wake.waiters.size) {
      this.wakes.set(tenant, wake);
      void this.run(tenant, wake, asleep);
    }
    return waiting;
  }

  /** Asks for the wake (once), then looks until the tenant is ready, failed, or nobody waits any more. */
  private async run(tenant: string, wake: Wake, asleep: boolean): Promise<void> {
    const finish = (result: (w: Waiter) => Backend | StatusError): void => {
      for (const w of [...wake.waiters]) w.done(result(w));
    };
    try {
      if (asleep) {
        this.log.info({ tenant }, 'waking the tenant for a request');
        wake.since = await this.sources.wake(tenant);
      }
      while (wake.waiters.size) {
        const backend = this.sources.route(tenant);
        const p = wakeProgress(this.sources.tenant(tenant), !!backend, wake.since);
        if (p.state === 'ready') return finish(() => backend!);
        if (p.state === 'failed') return finish(() => tenantUnavailable(tenant, `it did not wake: ${p.why}`));
        const now = Date.now();
        for (const w of [...wake.waiters]) if (now >= w.deadline) w.done(tenantUnavailable(tenant, `it did not wake within ${this.limits.timeoutMs / 1000}s`));
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
    } catch (err) {
      this.log.error({ tenant, err: (err as Error).message }, 'could not wake the tenant');
      finish(() => tenantUnavailable(tenant, `it could not be woken: ${(err as Error).message}`));
    } finally {
      this.wakes.delete(tenant);
    }
  }
}

/**
 * The wake stage, after authenticate and request info: only a well-formed request with a valid token
 * for the tenant may wake it (an anonymous one must never start a control plane). It notes the tenant's activity (for
 * sleep.afterInactivity) and finds its API server, waking the tenant first if it sleeps.
 */
export function wake(ctx: Described, deps: Deps): Awake | Promise<Awake> {
  deps.activity.touch(ctx.tenant);
  const backend = deps.waker.backendFor(ctx.tenant, ctx.req.socket);
  return backend instanceof Promise ? backend.then((b) => ({ ...ctx, backend: b })) : { ...ctx, backend };
}
