import type { Logger } from 'pino';
import type { KubeClient, KubeObject, ResourceRef } from '../k8s/client.js';
import { Informer } from '../k8s/informer.js';
import { StatusError } from '../k8s/status.js';

/** Marks a tenant StorageClass that shows a host class (sync.storageClasses.enabled). */
export const MIRRORED_STORAGE_CLASS_LABEL = 'kplex.dev/host-storage-class';

const STORAGE_CLASSES: ResourceRef = { group: 'storage.k8s.io', version: 'v1', resource: 'storageclasses' };
/** What a StorageClass is; all of it but the metadata and `allowVolumeExpansion` is immutable. */
const FIELDS = ['provisioner', 'parameters', 'reclaimPolicy', 'mountOptions', 'allowVolumeExpansion', 'volumeBindingMode', 'allowedTopologies'] as const;
const IMMUTABLE = FIELDS.filter((f) => f !== 'allowVolumeExpansion');
/** The host's annotations a tenant sees: whether the class is the default (its claims without a class get it). */
const KEPT_ANNOTATIONS = ['storageclass.kubernetes.io/is-default-class', 'storageclass.beta.kubernetes.io/is-default-class'];

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/** The StorageClass a tenant sees for a host class: its fields, its default marking, the mirror label. */
export function tenantStorageClass(host: KubeObject): KubeObject {
  const annotations: Record<string, string> = {};
  for (const a of KEPT_ANNOTATIONS) {
    const v = host.metadata.annotations?.[a];
    if (v !== undefined) annotations[a] = v;
  }
  const out: KubeObject = { apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name: host.metadata.name, labels: { [MIRRORED_STORAGE_CLASS_LABEL]: 'true' }, annotations } };
  for (const f of FIELDS) if (host[f] !== undefined) out[f] = structuredClone(host[f]);
  return out;
}

/**
 * What to do with the tenant's class of a host class's name: nothing when it shows the host class, an
 * update when only mutable parts differ (labels, annotations, expansion), else make it again (the
 * tenant made its own class of that name, or changed one: the host's wins).
 */
export function storageClassAction(tenant: KubeObject | undefined, desired: KubeObject): 'create' | 'leave' | 'update' | 'replace' {
  if (!tenant) return 'create';
  if (IMMUTABLE.some((f) => !same(tenant[f], desired[f]))) return 'replace';
  const labels = tenant.metadata.labels ?? {};
  const annotations = tenant.metadata.annotations ?? {};
  const metaSame =
    labels[MIRRORED_STORAGE_CLASS_LABEL] === 'true' &&
    KEPT_ANNOTATIONS.every((a) => annotations[a] === desired.metadata.annotations?.[a]);
  return metaSame && same(tenant.allowVolumeExpansion, desired.allowVolumeExpansion) ? 'leave' : 'update';
}

/**
 * The host's StorageClasses in a tenant, read-only: each host class is made in the tenant under its own
 * name, kept equal to the host's (a tenant's change is undone, a tenant class of that name replaced),
 * and removed once the host class is gone. Claims name classes by name on both sides, so a tenant claim
 * of class `standard` is provisioned by the host's `standard`.
 */
export class StorageClassSync {
  private readonly hostClasses: Informer<KubeObject>;
  private readonly tenantClasses: Informer<KubeObject>;

  constructor(
    private readonly tenantClient: KubeClient,
    host: KubeClient,
    private readonly log: Logger,
    private readonly tenant: string,
  ) {
    const onError = (err: Error) => log.warn({ tenant, err: err.message }, 'storage class watch failed; retrying');
    const look = (name: string | undefined) => {
      if (name) void this.refresh(name).catch((err: Error) => log.warn({ tenant, storageClass: name, err: err.message }, 'storage class sync failed; will retry'));
    };
    this.hostClasses = new Informer<KubeObject>(host, STORAGE_CLASSES, { onUpsert: (c) => look(c.metadata.name), onDelete: (c) => look(c.metadata.name) }, {}, onError);
    this.tenantClasses = new Informer<KubeObject>(tenantClient, STORAGE_CLASSES, { onUpsert: (c) => look(c.metadata.name), onDelete: (c) => look(c.metadata.name) }, {}, onError);
  }

  async start(): Promise<void> {
    await Promise.all([this.hostClasses.start(), this.tenantClasses.start()]);
    this.resync();
  }

  /** Looks at every class of both sides again (the syncer's periodic resync). */
  resync(): void {
    const names = new Set([...this.hostClasses.list(), ...this.tenantClasses.list()].map((c) => c.metadata.name!));
    for (const name of names) void this.refresh(name).catch((err: Error) => this.log.warn({ tenant: this.tenant, storageClass: name, err: err.message }, 'storage class sync failed; will retry'));
  }

  private async refresh(name: string): Promise<void> {
    const ref = { ...STORAGE_CLASSES, name };
    const host = this.hostClasses.get(undefined, name);
    const current = this.tenantClasses.get(undefined, name);
    if (!host) {
      // Only the classes that showed a host class go with it; the tenant's own stay.
      if (current?.metadata.labels?.[MIRRORED_STORAGE_CLASS_LABEL] === 'true') await this.tenantClient.delete(ref);
      return;
    }
    const desired = tenantStorageClass(host);
    const conflict = (err: unknown): void => {
      if (!(err instanceof StatusError && err.code === 409)) throw err;
    };
    switch (storageClassAction(current, desired)) {
      case 'leave':
        return;
      case 'create':
        await this.tenantClient.create(STORAGE_CLASSES, desired).catch(conflict);
        return;
      case 'update':
        await this.tenantClient.update(ref, { ...desired, metadata: { ...desired.metadata, resourceVersion: current!.metadata.resourceVersion } }).catch(conflict);
        return;
      case 'replace':
        this.log.info({ tenant: this.tenant, storageClass: name }, "the tenant's StorageClass differs from the host's: making it again as the host has it");
        await this.tenantClient.delete(ref, { uid: current!.metadata.uid });
        await this.tenantClient.create(STORAGE_CLASSES, desired).catch(conflict);
    }
  }

  async stop(): Promise<void> {
    await Promise.all([this.hostClasses.stop(), this.tenantClasses.stop()]);
  }
}
