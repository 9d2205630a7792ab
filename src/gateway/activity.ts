import type { Logger } from 'pino';
import type { KubeClient } from '../k8s/client.js';
import { ANNOTATIONS, tenantsRef } from '../tenants/resources.js';
import { activityDue, activityInterval, inactivityMs } from '../tenants/sleep.js';
import { parseValues } from '../tenants/values.js';
import type { Backends } from './backends.js';
import type { TenantDirectory } from './tenant-directory.js';

/** How often pending activity is looked at. */
const TICK_MS = 1_000;

/**
 * Tells the tenant controller when tenants were last used, for sleep.afterInactivity. The controller
 * runs on one replica (the Lease holder) while every replica serves requests, so each replica writes
 * what it served onto the Tenant, as the annotation kplex.dev/last-active: through the host API
 * server, where replicas share everything, and throttled (activityInterval: at most once a second,
 * at least once a minute per tenant and replica). Only tenants with sleep.afterInactivity are written
 * for. A request open now (a watch, logs -f, an exec session) counts as activity for as long as it is.
 */
export class Activity {
  /** Tenants that had a request since their activity was last written. */
  private readonly touched = new Set<string>();
  /** When this replica last wrote each tenant's activity, by its clock. */
  private readonly written = new Map<string, number>();
  private timer?: NodeJS.Timeout;
  private writing = false;

  constructor(
    private readonly host: KubeClient,
    private readonly directory: TenantDirectory,
    private readonly backends: Backends,
    private readonly log: Logger,
  ) {}

  touch(tenant: string): void {
    this.touched.add(tenant);
  }

  start(): void {
    this.timer = setInterval(() => {
      // One round at a time: a slow host API server must not pile rounds up.
      if (this.writing) return;
      this.writing = true;
      this.write().finally(() => (this.writing = false));
    }, TICK_MS);
  }

  private async write(): Promise<void> {
    const open = this.backends.all().filter((b) => b.open > 0).map((b) => b.tenant);
    for (const tenant of new Set([...this.touched, ...open])) {
      const afterMs = this.afterInactivity(tenant);
      if (afterMs === undefined) {
        this.touched.delete(tenant);
        continue;
      }
      const now = Date.now();
      if (!activityDue(now, this.written.get(tenant), activityInterval(afterMs))) continue;
      this.touched.delete(tenant);
      this.written.set(tenant, now);
      await this.host
        .patch(tenantsRef(tenant), { metadata: { annotations: { [ANNOTATIONS.lastActive]: new Date(now).toISOString() } } })
        .catch((err: Error) => this.log.warn({ tenant, err: err.message }, 'activity not recorded; the next request records it'));
    }
  }

  private afterInactivity(tenant: string): number | undefined {
    const t = this.directory.get(tenant);
    if (!t) return undefined;
    try {
      return inactivityMs(parseValues(t.spec?.values));
    } catch {
      // Values the controller refuses (it reports them as Failed): such a tenant does not sleep.
      return undefined;
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
  }
}
