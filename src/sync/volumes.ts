import path from 'node:path';
import type { Logger } from 'pino';
import { core, type KubeClient, type KubeObject } from '../k8s/client.js';
import { Informer } from '../k8s/informer.js';
import { StatusError } from '../k8s/status.js';
import type { TenantValues } from '../tenants/values.js';
import { recordEvent } from './events.js';
import { MANAGED_BY, ORIGIN, originOf, type Translator } from './translate.js';

type Json = Record<string, unknown>;
type VolumePolicy = TenantValues['sync']['persistentVolumes'];

/** Marks a tenant PV that shows a host volume bound to one of the tenant's claims: never mirrored to the host. */
export const HOST_VOLUME_LABEL = 'kplex.dev/host-volume';

const phaseOf = (pv: KubeObject): string | undefined => {
  const phase = (pv.status as Json | undefined)?.phase;
  return typeof phase === 'string' ? phase : undefined;
};
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Every volume source a PersistentVolume spec can carry (core/v1 PersistentVolumeSource). */
const PV_SOURCES = [
  'awsElasticBlockStore', 'azureDisk', 'azureFile', 'cephfs', 'cinder', 'csi', 'fc', 'flexVolume', 'flocker', 'gcePersistentDisk',
  'glusterfs', 'hostPath', 'iscsi', 'local', 'nfs', 'photonPersistentDisk', 'portworxVolume', 'quobyte', 'rbd', 'scaleIO',
  'storageos', 'vsphereVolume',
];
/** A CSI volume's references to Secrets, which name a namespace of the host: the driver would read them there. */
const CSI_SECRET_REFS = ['controllerPublishSecretRef', 'nodeStageSecretRef', 'nodePublishSecretRef', 'controllerExpandSecretRef', 'nodeExpandSecretRef'];

/** The host PV name of tenant PV `name`: PVs are cluster-wide, so the tenant's names are kept apart by translation. */
export const hostVolumeName = (t: Translator, name: string): string => t.name('', name, 'PersistentVolume');

/**
 * Why the host must not take a tenant PV's storage, or undefined when it may. A PV names storage on the
 * host's nodes or systems directly; a hostPath (or `local` path) anywhere on a node would let the
 * tenant's pods mount the node's files. Allowed: CSI volumes of the drivers the platform team listed,
 * without Secret references (they name host namespaces), and `local` volumes inside a listed directory.
 */
export function volumeSourceRefusal(spec: Json, policy: VolumePolicy): string | undefined {
  const sources = PV_SOURCES.filter((s) => spec[s] !== undefined);
  if (sources.length !== 1) return `a PersistentVolume needs exactly one volume source (has ${sources.length ? sources.join(', ') : 'none'})`;
  const source = sources[0]!;
  const value = spec[source];
  if (source === 'csi') {
    const driver = isObject(value) ? value.driver : undefined;
    if (typeof driver !== 'string' || !policy.csiDrivers.includes(driver)) {
      return `CSI driver ${JSON.stringify(driver)} is not one this tenant may use (sync.persistentVolumes.csiDrivers: ${JSON.stringify(policy.csiDrivers)})`;
    }
    const refs = CSI_SECRET_REFS.filter((r) => isObject(value) && value[r] !== undefined);
    if (refs.length) return `CSI Secret references (${refs.join(', ')}) name host namespaces and are not taken from a tenant`;
    return undefined;
  }
  if (source === 'local') {
    const p = isObject(value) ? value.path : undefined;
    if (typeof p !== 'string' || !path.isAbsolute(p) || p.split('/').some((s) => s === '.' || s === '..')) return `local path ${JSON.stringify(p)} is not a plain absolute path`;
    const clean = path.posix.normalize(p).replace(/\/+$/, '') || '/';
    const inside = policy.localPathPrefixes.some((prefix) => clean === prefix || clean.startsWith(prefix === '/' ? '/' : `${prefix}/`));
    if (!inside) return `local path ${p} is outside the directories this tenant may use (sync.persistentVolumes.localPathPrefixes: ${JSON.stringify(policy.localPathPrefixes)})`;
    return undefined;
  }
  return `${source} volumes name storage on the host directly and are not taken from a tenant (allowed: CSI drivers and local directories the platform team lists)`;
}

/** A tenant PV as its host twin, or why the host does not take it. */
export function persistentVolumeOnHost(t: Translator, pv: KubeObject, policy: VolumePolicy): { twin: KubeObject } | { refused: string } {
  const spec = structuredClone(isObject(pv.spec) ? pv.spec : {});
  const refusal = volumeSourceRefusal(spec, policy);
  if (refusal) return { refused: refusal };
  // Recycling runs a scrubber pod with the volume as a hostPath on the host.
  if (spec.persistentVolumeReclaimPolicy === 'Recycle') return { refused: 'the Recycle reclaim policy is not taken from a tenant (use Delete or Retain)' };
  const claim = isObject(spec.claimRef) ? spec.claimRef : undefined;
  // Unclaimed, the host's binder would give the volume to any claim of the class, another tenant's too:
  // a tenant PV reaches the host only bound ahead to one of the tenant's own claims.
  if (typeof claim?.name !== 'string' || typeof claim.namespace !== 'string' || !claim.name || !claim.namespace) {
    return { refused: 'a PersistentVolume reaches the host only bound ahead to a claim of this tenant (spec.claimRef with namespace and name)' };
  }
  spec.claimRef = { kind: 'PersistentVolumeClaim', apiVersion: 'v1', namespace: t.hostNamespace, name: t.name(claim.namespace, claim.name, 'PersistentVolumeClaim') };
  const metadata = {
    name: hostVolumeName(t, pv.metadata.name!),
    labels: { [ORIGIN.managedBy]: MANAGED_BY, [ORIGIN.tenant]: t.tenant },
    annotations: { [ORIGIN.name]: pv.metadata.name!, [ORIGIN.namespace]: '', [ORIGIN.uid]: pv.metadata.uid ?? '' },
  };
  return { twin: { apiVersion: 'v1', kind: 'PersistentVolume', metadata, spec } };
}

/**
 * The name a tenant claim's `volumeName` has on the host: the twin of the tenant's own PV of that name,
 * never a host volume or another tenant's (with PV sync off, the claim names no volume on the host).
 */
export function claimVolumeNameOnHost(t: Translator, volumeName: unknown, enabled: boolean): string | undefined {
  return enabled && typeof volumeName === 'string' && volumeName ? hostVolumeName(t, volumeName) : undefined;
}

/** The tenant claim a host PV is bound to, when it is one of this tenant's claims' twins. */
export interface BoundClaim {
  namespace: string;
  name: string;
  uid?: string;
}

/**
 * The PV a tenant sees for a host volume bound to its claim `claim`: the host's capacity, modes, class
 * and source, its claim the tenant's, and the host's phase. A twin of the tenant's own PV is that PV
 * (it is not shown twice).
 */
export function tenantVolume(host: KubeObject, claim: BoundClaim): KubeObject {
  const spec = structuredClone(isObject(host.spec) ? host.spec : {});
  spec.claimRef = { kind: 'PersistentVolumeClaim', apiVersion: 'v1', namespace: claim.namespace, name: claim.name, ...(claim.uid ? { uid: claim.uid } : {}) };
  const phase = isObject(host.status) ? host.status.phase : undefined;
  return { apiVersion: 'v1', kind: 'PersistentVolume', metadata: { name: host.metadata.name, labels: { [HOST_VOLUME_LABEL]: 'true' } }, spec, status: phase ? { phase } : {} };
}

/**
 * PersistentVolumes between a tenant and the host (sync.persistentVolumes.enabled): the tenant's PVs
 * go to the host when its policy allows their source (else a Warning event says why), and the host
 * volumes bound to the tenant's claims (dynamically provisioned ones) appear in the tenant. The host
 * binds; the tenant only shows.
 */
export class VolumeSync {
  private readonly hostVolumes: Informer<KubeObject>;
  private readonly tenantVolumes: Informer<KubeObject>;
  /** The refusal last told per tenant PV, so it is told once per change. */
  private readonly told = new Map<string, string>();

  constructor(
    private readonly tenantClient: KubeClient,
    private readonly host: KubeClient,
    private readonly t: Translator,
    private readonly policy: VolumePolicy,
    private readonly log: Logger,
  ) {
    const onError = (err: Error) => log.warn({ tenant: t.tenant, err: err.message }, 'volume watch failed; retrying');
    const look = (name: string | undefined) => {
      if (name) void this.refresh(name).catch((err: Error) => log.warn({ tenant: t.tenant, volume: name, err: err.message }, 'volume sync failed; will retry'));
    };
    const hostLook = (v: KubeObject) => look(this.tenantNameOf(v));
    this.hostVolumes = new Informer<KubeObject>(host, core('persistentvolumes'), { onUpsert: hostLook, onDelete: hostLook }, {}, onError);
    this.tenantVolumes = new Informer<KubeObject>(tenantClient, core('persistentvolumes'), { onUpsert: (v) => look(v.metadata.name), onDelete: (v) => look(v.metadata.name) }, {}, onError);
  }

  async start(): Promise<void> {
    await Promise.all([this.hostVolumes.start(), this.tenantVolumes.start()]);
    this.resync();
  }

  resync(): void {
    const names = new Set<string>();
    for (const v of this.hostVolumes.list()) {
      const n = this.tenantNameOf(v);
      if (n) names.add(n);
    }
    for (const v of this.tenantVolumes.list()) names.add(v.metadata.name!);
    for (const name of names) void this.refresh(name).catch((err: Error) => this.log.warn({ tenant: this.t.tenant, volume: name, err: err.message }, 'volume sync failed; will retry'));
  }

  /** The tenant's name for a host volume: its origin's for a twin of this tenant's PV, its own for one bound to this tenant's claim. */
  private tenantNameOf(v: KubeObject): string | undefined {
    const origin = originOf(v);
    if (origin) return origin.tenant === this.t.tenant ? origin.name : undefined;
    return this.boundHere(v) ? v.metadata.name : undefined;
  }

  /** Whether a host volume is bound to a claim in this tenant's host namespace. */
  private boundHere(v: KubeObject): boolean {
    const ref = (v.spec as Json | undefined)?.claimRef as Json | undefined;
    return ref?.namespace === this.t.hostNamespace;
  }

  private async refresh(name: string): Promise<void> {
    const tenantPV = this.tenantVolumes.get(undefined, name);
    if (tenantPV && tenantPV.metadata.labels?.[HOST_VOLUME_LABEL] !== 'true') return this.toHost(tenantPV);
    this.told.delete(name);
    const twinName = hostVolumeName(this.t, name);
    const twin = this.hostVolumes.get(undefined, twinName);
    // The tenant's own PV is gone: so goes its twin.
    if (!tenantPV && twin && originOf(twin)?.tenant === this.t.tenant) {
      await this.host.delete(core('persistentvolumes', undefined, twinName));
      return;
    }
    return this.fromHost(name, tenantPV);
  }

  /** Tenant -> host: the twin made when the policy allows it; a refusal told once as a Warning event. */
  private async toHost(pv: KubeObject): Promise<void> {
    const name = pv.metadata.name!;
    const made = persistentVolumeOnHost(this.t, pv, this.policy);
    if ('refused' in made) {
      if (this.told.get(name) === made.refused) return;
      this.told.set(name, made.refused);
      const involved = { group: '', version: 'v1', kind: 'PersistentVolume', namespace: 'default', name, uid: pv.metadata.uid };
      await recordEvent(this.tenantClient, involved, 'HostRefused', `the host cluster refused it: ${made.refused}`);
      return;
    }
    this.told.delete(name);
    const existing = this.hostVolumes.get(undefined, made.twin.metadata.name!);
    if (existing && originOf(existing)?.uid === pv.metadata.uid) {
      // The host's binder owns its status; the tenant's PV shows the phase.
      await this.showPhase(pv, phaseOf(existing));
      return;
    }
    // A twin of an earlier PV of this name: the host volume goes (its reclaim policy decides about the data).
    if (existing) await this.host.delete(core('persistentvolumes', undefined, existing.metadata.name));
    await this.host.create(core('persistentvolumes'), made.twin).catch((err: unknown) => {
      if (!(err instanceof StatusError && err.code === 409)) throw err;
    });
  }

  /** Host -> tenant: a host volume bound to one of the tenant's claims is shown; one no longer so is removed. */
  private async fromHost(name: string, current: KubeObject | undefined): Promise<void> {
    const hostPV = this.hostVolumes.get(undefined, name);
    const claimRef = (hostPV?.spec as Json | undefined)?.claimRef as Json | undefined;
    const claimTwin = hostPV && this.boundHere(hostPV) && typeof claimRef?.name === 'string'
      ? await this.host.find(core('persistentvolumeclaims', this.t.hostNamespace, claimRef.name))
      : undefined;
    const origin = claimTwin ? originOf(claimTwin) : undefined;
    if (!hostPV || !origin || origin.tenant !== this.t.tenant) {
      if (current?.metadata.labels?.[HOST_VOLUME_LABEL] !== 'true') return;
      // The tenant's pv-protection keeps a Bound PV forever (no binder there releases it): Released first.
      await this.showPhase(current, 'Released');
      await this.tenantClient.delete(core('persistentvolumes', undefined, name));
      return;
    }
    const desired = tenantVolume(hostPV, { namespace: origin.namespace, name: origin.name, uid: origin.uid || undefined });
    if (!current) {
      const created = await this.tenantClient.create<KubeObject>(core('persistentvolumes'), { ...desired, status: undefined });
      await this.showPhase(created, phaseOf(hostPV));
      return;
    }
    await this.showPhase(current, phaseOf(hostPV));
  }

  /** Sets the tenant PV's phase (the host volume's). */
  private async showPhase(pv: KubeObject, phase: string | undefined): Promise<void> {
    if (!phase || (pv.status as Json | undefined)?.phase === phase) return;
    const { resourceVersion: _stale, ...metadata } = pv.metadata;
    await this.tenantClient
      .json('PUT', `/api/v1/persistentvolumes/${encodeURIComponent(pv.metadata.name!)}/status`, { body: { ...pv, metadata, status: { ...(pv.status as Json | undefined), phase } } })
      .catch((err: unknown) => {
        if (!(err instanceof StatusError && err.code === 404)) throw err;
      });
  }

  async stop(): Promise<void> {
    await Promise.all([this.hostVolumes.stop(), this.tenantVolumes.stop()]);
  }
}
