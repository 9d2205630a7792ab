// Cluster-wide classes of the host shown in a tenant, read-only: StorageClasses (storage-classes.ts)
// and PriorityClasses (priority-classes.ts). A pod or claim names a class by name on both sides, so
// the tenant sees what its twins will get on the host.
import type { Logger } from 'pino';
import type { KubeClient, KubeObject, ResourceRef } from '../k8s/client.js';
import { Informer } from '../k8s/informer.js';
import { StatusError } from '../k8s/status.js';

/** One kind of host class: what of it a tenant sees, and what cannot change in place. */
export interface HostClassKind {
  kind: string;
  apiVersion: string;
  ref: ResourceRef;
  /** The fields a class is made of (beside its metadata). */
  fields: readonly string[];
  /** Those the API server lets change in place. */
  mutable: readonly string[];
  /** The host's annotations a tenant sees (a class's default marking). */
  annotations: readonly string[];
  /** Marks a tenant class that shows a host class. */
  label: string;
  /** Host classes a tenant does not get (its API server has its own of that name). */
  hidden?(name: string): boolean;
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/** The class a tenant sees for a host class: its fields, the annotations it may see, the mirror label. */
export function tenantClass(k: HostClassKind, host: KubeObject): KubeObject {
  const annotations: Record<string, string> = {};
  for (const a of k.annotations) {
    const v = host.metadata.annotations?.[a];
    if (v !== undefined) annotations[a] = v;
  }
  const out: KubeObject = { apiVersion: k.apiVersion, kind: k.kind, metadata: { name: host.metadata.name, labels: { [k.label]: 'true' }, annotations } };
  for (const f of k.fields) if (host[f] !== undefined) out[f] = structuredClone(host[f]);
  return out;
}

/**
 * What to do with the tenant's class of a host class's name: nothing when it shows the host class, an
 * update when only what may change in place differs, else make it again (the tenant made its own class
 * of that name, or changed one: the host's wins).
 */
export function classAction(k: HostClassKind, tenant: KubeObject | undefined, desired: KubeObject): 'create' | 'leave' | 'update' | 'replace' {
  if (!tenant) return 'create';
  if (k.fields.some((f) => !k.mutable.includes(f) && !same(tenant[f], desired[f]))) return 'replace';
  const annotations = tenant.metadata.annotations ?? {};
  const metaSame = tenant.metadata.labels?.[k.label] === 'true' && k.annotations.every((a) => annotations[a] === desired.metadata.annotations?.[a]);
  return metaSame && k.mutable.every((f) => same(tenant[f], desired[f])) ? 'leave' : 'update';
}

/**
 * The host's classes of one kind in a tenant, read-only: each made in the tenant under its own name,
 * kept equal to the host's (a tenant's change is undone, a tenant class of that name replaced), and
 * removed once the host class is gone; the tenant's own classes of other names are left alone.
 */
export class HostClassSync {
  private readonly hostClasses: Informer<KubeObject>;
  private readonly tenantClasses: Informer<KubeObject>;

  constructor(
    private readonly k: HostClassKind,
    private readonly tenantClient: KubeClient,
    host: KubeClient,
    private readonly log: Logger,
    private readonly tenant: string,
  ) {
    const onError = (err: Error) => log.warn({ tenant, kind: k.kind, err: err.message }, 'host class watch failed; retrying');
    const look = (c: KubeObject) => this.look(c.metadata.name);
    this.hostClasses = new Informer<KubeObject>(host, k.ref, { onUpsert: look, onDelete: look }, {}, onError);
    this.tenantClasses = new Informer<KubeObject>(tenantClient, k.ref, { onUpsert: look, onDelete: look }, {}, onError);
  }

  async start(): Promise<void> {
    await Promise.all([this.hostClasses.start(), this.tenantClasses.start()]);
    this.resync();
  }

  /** Looks at every class of both sides again (the syncer's periodic resync). */
  resync(): void {
    for (const c of [...this.hostClasses.list(), ...this.tenantClasses.list()]) this.look(c.metadata.name);
  }

  private look(name: string | undefined): void {
    if (!name || this.k.hidden?.(name)) return;
    this.refresh(name).catch((err: Error) => this.log.warn({ tenant: this.tenant, kind: this.k.kind, name, err: err.message }, 'host class sync failed; will retry'));
  }

  private async refresh(name: string): Promise<void> {
    const ref = { ...this.k.ref, name };
    const host = this.hostClasses.get(undefined, name);
    const current = this.tenantClasses.get(undefined, name);
    if (!host) {
      if (current?.metadata.labels?.[this.k.label] === 'true') await this.tenantClient.delete(ref);
      return;
    }
    const desired = tenantClass(this.k, host);
    const conflict = (err: unknown): void => {
      if (!(err instanceof StatusError && err.code === 409)) throw err;
    };
    switch (classAction(this.k, current, desired)) {
      case 'leave':
        return;
      case 'create':
        await this.tenantClient.create(this.k.ref, desired).catch(conflict);
        return;
      case 'update':
        await this.tenantClient.update(ref, { ...desired, metadata: { ...desired.metadata, resourceVersion: current!.metadata.resourceVersion } }).catch(conflict);
        return;
      case 'replace':
        this.log.info({ tenant: this.tenant, kind: this.k.kind, name }, "the tenant's class differs from the host's: making it again as the host has it");
        await this.tenantClient.delete(ref, { uid: current!.metadata.uid });
        await this.tenantClient.create(this.k.ref, desired).catch(conflict);
    }
  }

  async stop(): Promise<void> {
    await Promise.all([this.hostClasses.stop(), this.tenantClasses.stop()]);
  }
}
