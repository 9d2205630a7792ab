import type { Logger } from 'pino';
import type { KubeClient } from '../k8s/client.js';
import { Informer } from '../k8s/informer.js';
import { tenantsRef, type Tenant } from '../tenants/resources.js';

/**
 * Which Tenant object answers to a name now (its uid), from a watch of Tenants on the host: what
 * tokens are checked against, so they die with the tenant they were issued for; and whether it sleeps.
 */
export class TenantDirectory {
  private readonly tenants: Informer<Tenant>;

  constructor(host: KubeClient, log: Logger) {
    this.tenants = new Informer<Tenant>(host, tenantsRef(), {}, {}, (err) => log.warn({ err: err.message }, 'tenant directory watch failed'));
  }

  start(): Promise<void> {
    return this.tenants.start();
  }

  stop(): Promise<void> {
    return this.tenants.stop();
  }

  readonly uidOf = (tenant: string): string | undefined => this.tenants.get(undefined, tenant)?.metadata.uid;

  /** The Tenant as the watch last delivered it: whether it sleeps, its phase, its values. */
  readonly get = (tenant: string): Tenant | undefined => this.tenants.get(undefined, tenant);
}
