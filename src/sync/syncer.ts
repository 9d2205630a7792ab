import type { Logger } from 'pino';
import { KubeClient, resourcePath, type KubeObject, type ResourceRef } from '../k8s/client.js';
import { Informer } from '../k8s/informer.js';
import { StatusError } from '../k8s/status.js';
import type { TenantValues } from '../tenants/values.js';
import { mirroredKinds, type MirroredKind } from './kinds.js';
import { NodeSync } from './nodes.js';
import { backoff, WorkQueue } from './queue.js';
import { EventSync, recordEvent } from './events.js';
import { nodeNameOf, statusDiffers, tenantPodStatus } from './pod-status.js';
import { ORIGIN, originOf, Translator } from './translate.js';
import { prerequisitesOf, Usage, type Prerequisite, type Reference } from './references.js';
import { HostNetworks } from './host-networks.js';
import { hostTaken, hostTakenElsewhere } from './ingress-hosts.js';
import { HostRefused, isRefusal } from './host-refused.js';

export const SYNC_FIELD_MANAGER = 'kplex-syncer';
const RESYNC_MS = 30_000;
const HOST_FIRST_GRACE_MS = 30_000;
const JUST_MIRRORED_MS = 5_000;
const RETRY_MS = 1_000;
const MAX_REFUSED_RETRY_MS = 30_000;

const at = (ref: ResourceRef, namespace?: string, name?: string): ResourceRef => ({ ...ref, namespace, name });
const ageMs = (o: KubeObject): number => Date.now() - Date.parse(o.metadata.creationTimestamp ?? '');
const keyOf = (kind: string, ns: string, name: string): string => `${kind}\u0000${ns}\u0000${name}`;

interface KindState {
  kind: MirroredKind;
  tenant: Informer<KubeObject>;
  host: Informer<KubeObject>;
}

/**
 * Writes one tenant object's host twin (server-side apply, so it is idempotent and repairs drift).
 * Pods are immutable in most of their spec: an existing host pod is left as it is.
 */
export async function mirrorToHost(host: KubeClient, t: Translator, kind: MirroredKind, obj: KubeObject, existing?: KubeObject): Promise<KubeObject | undefined> {
  if (kind.skip?.(obj)) return undefined;
  const desired = kind.toHost(t, obj);
  if (kind.kind === 'Pod' && existing) return existing;
  try {
    return await host.apply(at(kind.ref, t.hostNamespace, desired.metadata.name), desired, SYNC_FIELD_MANAGER);
  } catch (err) {
    if (isRefusal(err)) throw new HostRefused(err, t, desired, obj);
    throw err;
  }
}

/**
 * Keeps one tenant's low-level objects mirrored on the host and carries status back: list + watch on
 * both sides, one reconcile per object, decided by which side exists (tenant only: create on host;
 * host only: delete it; both: apply and carry status back). Level-triggered: events and a periodic
 * resync only say "look at this object again".
 */
export class TenantSyncer {
  readonly translator: Translator;
  private readonly kinds: KindState[];
  private readonly nodes: NodeSync;
  private readonly events: EventSync;
  private readonly usage = new Usage();
  private readonly networks: HostNetworks;
  /** Every Ingress of the host, all namespaces: the host names they serve are taken (ingress-hosts.ts). */
  private readonly hostIngresses?: Informer<KubeObject>;
  /** The Endpoints addresses last refused per key, so the tenant is told once per change, not per resync. */
  private readonly refusedAddresses = new Map<string, string>();
  private readonly queue: WorkQueue;
  private resync?: NodeJS.Timeout;

  constructor(
    readonly tenant: string,
    private readonly tenantClient: KubeClient,
    private readonly host: KubeClient,
    values: TenantValues,
    private readonly log: Logger,
  ) {
    this.translator = new Translator(tenant);
    const onError = (err: Error) => log.warn({ tenant, err: err.message }, 'sync watch failed; retrying');
    this.kinds = mirroredKinds(values).map((kind) => ({
      kind,
      tenant: new Informer<KubeObject>(tenantClient, kind.ref, {
        onUpsert: (o) => {
          this.enqueueAll(this.usage.set(kind.kind, o));
          this.enqueue(kind.kind, o.metadata.namespace ?? '', o.metadata.name!);
        },
        onDelete: (o) => {
          this.enqueueAll(this.usage.remove(kind.kind, o));
          this.enqueue(kind.kind, o.metadata.namespace ?? '', o.metadata.name!);
        },
      }, {}, onError),
      host: new Informer<KubeObject>(host, at(kind.ref, this.translator.hostNamespace), {
        onUpsert: (o) => this.enqueueHost(kind.kind, o),
        onDelete: (o) => this.enqueueHost(kind.kind, o),
      }, { labelSelector: `${ORIGIN.tenant}=${tenant}` }, onError),
    }));
    this.networks = new HostNetworks(host, onError);
    const ingress = this.kinds.find((k) => k.kind.kind === 'Ingress');
    if (ingress) this.hostIngresses = new Informer<KubeObject>(host, ingress.kind.ref, {}, {}, onError);
    this.queue = new WorkQueue((key) => {
      const [kind, ns, name] = key.split('\u0000') as [string, string, string];
      return this.reconcile(kind, ns, name);
    }, (key, err, failures) => this.failed(key, err, failures));
    this.nodes = new NodeSync(tenantClient, host, values, log, tenant);
    this.events = new EventSync(tenantClient, host, this.translator.hostNamespace, (kind, name) => this.kinds.find((k) => k.kind.kind === kind)?.host.get(this.translator.hostNamespace, name), log);
  }

  async start(): Promise<void> {
    this.networks.start();
    await Promise.all([...this.kinds.flatMap((k) => [k.tenant.start(), k.host.start()]), this.hostIngresses?.start()]);
    await this.nodes.start();
    await this.events.start();
    this.resyncAll();
    // Reconciles wait for every cache to be listed: a ConfigMap looks unused until the pods are known.
    this.queue.start();
    this.resync = setInterval(() => this.resyncAll(), RESYNC_MS);
  }

  private resyncAll(): void {
    this.nodes.observe(this.kinds.find((x) => x.kind.kind === 'Pod')?.host.list() ?? []);
    for (const k of this.kinds) {
      for (const o of k.tenant.list()) this.enqueue(k.kind.kind, o.metadata.namespace ?? '', o.metadata.name!);
      for (const o of k.host.list()) this.enqueueHost(k.kind.kind, o);
    }
  }

  private enqueueHost(kind: string, hostObj: KubeObject): void {
    const origin = originOf(hostObj);
    if (origin) this.enqueue(kind, origin.namespace, origin.name);
  }

  enqueue(kind: string, namespace: string, name: string): void {
    this.queue.add(keyOf(kind, namespace, name));
  }

  private enqueueAll(refs: Reference[]): void {
    for (const r of refs) this.enqueue(r.kind, r.namespace, r.name);
  }

  /**
   * When a failed reconcile is retried: soon, unless the host refused the twin; then the tenant object gets a
   * Warning event saying why (what `kubectl describe` shows), and retries back off, since only a change
   * (freed quota, an edited object, lifted isolation) makes the host say yes.
   */
  private failed(key: string, err: Error, failures: number): number {
    const [kind, ns, name] = key.split('\u0000') as [string, string, string];
    if (!(err instanceof HostRefused)) {
      this.log.warn({ tenant: this.tenant, kind, namespace: ns, name, err: err.message }, 'sync failed; will retry');
      return RETRY_MS;
    }
    this.log.info({ tenant: this.tenant, kind, namespace: ns, name, err: err.message, failures }, 'the host refused a twin; will retry');
    const k = this.kinds.find((x) => x.kind.kind === kind);
    const obj = k?.tenant.get(ns, name);
    if (k && obj) {
      const involved = { ...k.kind.ref, kind, namespace: ns, name, uid: obj.metadata.uid };
      recordEvent(this.tenantClient, involved, 'HostRefused', `the host cluster refused it: ${err.message}`).catch((e: Error) => this.log.debug({ err: e.message }, 'event not recorded'));
    }
    return backoff(failures, RETRY_MS, MAX_REFUSED_RETRY_MS);
  }

  private async reconcile(kindName: string, ns: string, name: string): Promise<void> {
    const k = this.kinds.find((x) => x.kind.kind === kindName);
    if (!k) return;
    const t = this.translator;
    const hostName = t.name(ns, name, kindName);
    const hostObj = k.host.get(t.hostNamespace, hostName);
    // A host twin can be seen before its tenant object reaches the cache (the gateway's inline mirror):
    // before anything is deleted as an orphan, the tenant is asked directly.
    const tenantObj = k.tenant.get(ns, name) ?? (hostObj ? await this.tenantClient.find(at(k.kind.ref, ns, name)) : undefined);

    if (!tenantObj) {
      this.refusedAddresses.delete(keyOf(kindName, ns, name));
      if (hostObj && this.isOrphan(kindName, hostObj)) await this.host.delete(at(k.kind.ref, t.hostNamespace, hostName), { propagationPolicy: 'Background' });
      if (kindName === 'Pod') this.nodes.observe(k.host.list());
      return;
    }
    if (k.kind.skip?.(tenantObj)) return;
    if (k.kind.onlyWhenUsed && !this.usage.isUsed(kindName as Reference['kind'], ns, name)) {
      if (hostObj && ageMs(hostObj) < JUST_MIRRORED_MS) {
        // The gateway mirrors what a new pod uses just before the pod, which may not be in this cache yet.
        this.queue.later(keyOf(kindName, ns, name), JUST_MIRRORED_MS);
        return;
      }
      // No tenant pod needs it (any more): it stays in the tenant only.
      if (hostObj) await this.host.delete(at(k.kind.ref, t.hostNamespace, hostName));
      return;
    }
    if (kindName === 'Pod') {
      await this.reconcilePod(k, tenantObj, hostObj);
      this.nodes.observe(k.host.list());
      return;
    }
    if (kindName === 'Service') return this.reconcileService(k, tenantObj, hostObj);
    if (kindName === 'Endpoints') return this.reconcileEndpoints(k, tenantObj, hostObj);
    if (kindName === 'Ingress') return this.reconcileIngress(k, tenantObj, hostObj);
    await mirrorToHost(this.host, t, k.kind, tenantObj, hostObj);
    if (kindName === 'PersistentVolumeClaim' && hostObj) await this.statusBack(k, tenantObj, hostObj);
  }

  /** Host -> tenant for Services (load-balancer status) and PVCs (phase, capacity): the host owns those. */
  private async statusBack(k: KindState, tenantObj: KubeObject, hostObj: KubeObject): Promise<void> {
    if (JSON.stringify(hostObj.status ?? {}) === JSON.stringify(tenantObj.status ?? {})) return;
    await this.tenantClient.json('PUT', resourcePath({ ...at(k.kind.ref, tenantObj.metadata.namespace, tenantObj.metadata.name), subresource: 'status' }), {
      body: { ...tenantObj, status: hostObj.status },
    }).catch((err) => {
      if (!(err instanceof StatusError && err.code === 409)) throw err;
    });
  }

  /**
   * A host twin whose origin is gone. A Service the gateway made on the host first has no origin uid
   * until its tenant Service is stored; it gets a grace period (a failed create is rolled back anyway).
   */
  private isOrphan(kind: string, hostObj: KubeObject): boolean {
    if (hostObj.metadata.annotations?.[ORIGIN.uid]) return true;
    if (ageMs(hostObj) > HOST_FIRST_GRACE_MS) return true;
    const origin = originOf(hostObj);
    if (origin) this.queue.later(keyOf(kind, origin.namespace, origin.name), HOST_FIRST_GRACE_MS);
    return false;
  }

  /** A tenant Service and its host twin keep one ClusterIP: the host takes the tenant's, or the tenant is made again with the host's. */
  private async reconcileService(k: KindState, svc: KubeObject, hostObj: KubeObject | undefined): Promise<void> {
    const tenantIP = (svc.spec as { clusterIP?: string } | undefined)?.clusterIP;
    let host = hostObj;
    try {
      host = await mirrorToHost(this.host, this.translator, k.kind, svc, hostObj);
    } catch (err) {
      // The tenant's IP is taken on the host (or the host twin has another): let the host choose.
      if (!(err instanceof StatusError) || (err.code !== 422 && err.code !== 409)) throw err;
      if (hostObj) await this.host.delete(at(k.kind.ref, this.translator.hostNamespace, hostObj.metadata.name));
      const desired = k.kind.toHost(this.translator, svc);
      const spec = desired.spec as Record<string, unknown>;
      delete spec.clusterIP;
      delete spec.clusterIPs;
      host = await this.host.apply(at(k.kind.ref, this.translator.hostNamespace, desired.metadata.name), desired, SYNC_FIELD_MANAGER);
    }
    const hostIP = (host?.spec as { clusterIP?: string } | undefined)?.clusterIP;
    if (host && (host.status as { loadBalancer?: { ingress?: unknown[] } } | undefined)?.loadBalancer?.ingress) await this.statusBack(k, svc, host);
    if (hostIP && tenantIP && hostIP !== tenantIP && tenantIP !== 'None') {
      this.log.info({ tenant: this.tenant, service: `${svc.metadata.namespace}/${svc.metadata.name}`, tenantIP, hostIP }, 'recreating tenant Service with the ClusterIP of its host twin');
      const { resourceVersion: _rv, uid: _uid, creationTimestamp: _ct, managedFields: _mf, ...metadata } = svc.metadata;
      const spec = { ...(svc.spec as Record<string, unknown>), clusterIP: hostIP, clusterIPs: [hostIP] };
      await this.tenantClient.delete(at(k.kind.ref, svc.metadata.namespace, svc.metadata.name));
      await this.tenantClient.create(at(k.kind.ref, svc.metadata.namespace), { apiVersion: 'v1', kind: 'Service', metadata, spec });
    }
  }

  /**
   * A selectorless Service's Endpoints reach the host with only the addresses the tenant may point at
   * (addresses.ts): never another tenant's pods, host Services or nodes. The tenant is told what was
   * left out by a Warning event, once per change.
   */
  private async reconcileEndpoints(k: KindState, ep: KubeObject, hostObj: KubeObject | undefined): Promise<void> {
    const { endpoints, dropped } = await this.networks.reachable(ep, this.tenant, this.translator.hostNamespace);
    await mirrorToHost(this.host, this.translator, k.kind, endpoints, hostObj);
    const [ns, name] = [ep.metadata.namespace ?? '', ep.metadata.name!];
    const key = keyOf('Endpoints', ns, name);
    const said = dropped.join(', ');
    if (said === (this.refusedAddresses.get(key) ?? '')) return;
    if (!said) {
      this.refusedAddresses.delete(key);
      return;
    }
    this.refusedAddresses.set(key, said);
    const involved = { ...k.kind.ref, kind: 'Endpoints', namespace: ns, name, uid: ep.metadata.uid };
    const message = `the host cluster left out addresses that are not this tenant's to point at (other pods, the host's Service or node addresses, loopback or link-local): ${said}`;
    await recordEvent(this.tenantClient, involved, 'HostRefused', message).catch((e: Error) => this.log.debug({ err: e.message }, 'event not recorded'));
  }

  /**
   * Host names on the host's ingress controllers are first come, first served: an Ingress claiming one
   * that an Ingress in another host namespace serves is not mirrored (its twin goes, if it came later),
   * and the refusal becomes the tenant's HostRefused event, retried with backoff until the name is free.
   */
  private async reconcileIngress(k: KindState, ing: KubeObject, hostObj: KubeObject | undefined): Promise<void> {
    const t = this.translator;
    const taken = hostTakenElsewhere(ing, t.hostNamespace, this.hostIngresses?.list() ?? [], hostObj);
    if (taken === undefined) {
      await mirrorToHost(this.host, t, k.kind, ing, hostObj);
      return;
    }
    if (hostObj) await this.host.delete(at(k.kind.ref, t.hostNamespace, hostObj.metadata.name));
    throw new HostRefused(hostTaken(ing.metadata.name!, taken), t, k.kind.toHost(t, ing), ing);
  }

  private async reconcilePod(k: KindState, pod: KubeObject, hostPod: KubeObject | undefined): Promise<void> {
    const t = this.translator;
    const ns = pod.metadata.namespace ?? '';
    const name = pod.metadata.name!;
    const podRef = at(k.kind.ref, ns, name);
    if (pod.metadata.deletionTimestamp) {
      // No kubelet in the tenant: once the host pod is gone, the tenant pod is finally removed here.
      if (hostPod) {
        if (!hostPod.metadata.deletionTimestamp) await this.host.delete(at(k.kind.ref, t.hostNamespace, hostPod.metadata.name));
        return;
      }
      await this.tenantClient.json('DELETE', `/api/v1/namespaces/${ns}/pods/${name}`, { body: { kind: 'DeleteOptions', apiVersion: 'v1', gracePeriodSeconds: 0, preconditions: { uid: pod.metadata.uid } } }).catch((err) => {
        if (!(err instanceof StatusError && (err.code === 404 || err.code === 409))) throw err;
      });
      return;
    }
    if (!hostPod) {
      await Promise.all(prerequisitesOf(pod).map((r) => this.mirrorFirst(r)));
      await mirrorToHost(this.host, t, k.kind, pod);
      return;
    }
    if (hostPod.metadata.annotations?.[ORIGIN.uid] !== pod.metadata.uid) {
      // A twin of an earlier pod of the same name: replace it.
      await this.host.delete(at(k.kind.ref, t.hostNamespace, hostPod.metadata.name), { propagationPolicy: 'Background' });
      return;
    }
    const node = nodeNameOf(hostPod);
    if (node && !nodeNameOf(pod)) {
      await this.nodes.ensure(node);
      await this.tenantClient.json('POST', resourcePath({ ...podRef, subresource: 'binding' }), {
        body: {
        apiVersion: 'v1',
        kind: 'Binding',
        metadata: { name, namespace: ns },
        target: { apiVersion: 'v1', kind: 'Node', name: node },
        },
      }).catch((err) => {
        if (!(err instanceof StatusError && err.code === 409)) throw err;
      });
    }
    if (statusDiffers(hostPod, pod)) {
      await this.tenantClient.json('PUT', `/api/v1/namespaces/${ns}/pods/${name}/status`, {
        body: { ...pod, status: tenantPodStatus(hostPod, pod) },
      }).catch((err) => {
        // A newer version came meanwhile; its own event brings us back.
        if (!(err instanceof StatusError && err.code === 409)) throw err;
      });
    }
  }

  private async mirrorFirst({ kind, namespace, name }: Prerequisite): Promise<void> {
    const k = this.kinds.find((x) => x.kind.kind === kind);
    const obj = k?.tenant.get(namespace, name);
    if (!k || !obj || k.host.get(this.translator.hostNamespace, this.translator.name(namespace, name, kind))) return;
    await mirrorToHost(this.host, this.translator, k.kind, obj);
  }

  async stop(): Promise<void> {
    clearInterval(this.resync);
    const drained = this.queue.stop();
    await Promise.all([...this.kinds.flatMap((k) => [k.tenant.stop(), k.host.stop()]), this.networks.stop(), this.hostIngresses?.stop()]);
    await this.nodes.stop();
    await this.events.stop();
    await drained;
  }
}
