import type { Logger } from 'pino';
import { core, KubeClient, type KubeObject } from '../k8s/client.js';
import { Informer } from '../k8s/informer.js';
import { kubeconfigFor, toYaml } from '../k8s/kubeconfig.js';
import { requestQuantities, type CertificateStatus, type ControlPlaneEndpoint, type ControlPlaneProvider, type ControlPlaneSpec, type ResourceRequests } from '../controlplane/provider.js';
import { podSecurityLabels } from '../controlplane/pod-security.js';
import { hostNamespace, kubeconfigSecretName } from '../tenants/names.js';
import { roleGroup, type Role } from '../tenants/roles.js';
import { ANNOTATIONS, FIELD_MANAGER, FINALIZER, LABELS, readyCondition, tenantsRef, type Condition, type PodAccess, type Tenant } from '../tenants/resources.js';
import { CONTROL_PLANE_SERVICE, controlPlaneEndpoints, controlPlaneService, pointKubernetesServiceAt } from './control-plane-service.js';
import { cpuMillis, fixedAtCreation, memoryBytes, memoryLimitsOf, parseValues, podSecurityOf, type TenantValues } from '../tenants/values.js';
import { TenantSyncer } from '../sync/syncer.js';
import { MetricsAdapters } from '../metrics/adapter.js';
import { idleSince, inactivityMs, sleepDecision, WAKING_REASON } from '../tenants/sleep.js';
import { ORIGIN } from '../sync/translate.js';
import { StatusError } from '../k8s/status.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const RESYNC_MS = 30_000;


const labelsOf = (tenant: string): Record<string, string> => ({ [LABELS.tenant]: tenant, [LABELS.managedBy]: 'kplex' });

const rbacRef = (resource: string, name: string) => ({ group: 'rbac.authorization.k8s.io', version: 'v1', resource, name });

/** What a tenant's control plane needs before users arrive: role bindings for the token roles. */
async function bootstrapTenant(tenant: KubeClient): Promise<void> {
  await tenant.apply(rbacRef('clusterroles', 'kplex:namespace-reader'), {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name: 'kplex:namespace-reader' },
    rules: [{ apiGroups: [''], resources: ['namespaces'], verbs: ['get', 'list', 'watch'] }],
  }, FIELD_MANAGER);
  const bindings: [Role, string][] = [
    ['admin', 'cluster-admin'],
    ['edit', 'edit'],
    ['view', 'view'],
    ['edit', 'kplex:namespace-reader'],
    ['view', 'kplex:namespace-reader'],
  ];
  for (const [role, clusterRole] of bindings) {
    const name = `kplex:${role}:${clusterRole}`;
    await tenant.apply(rbacRef('clusterrolebindings', name), {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: clusterRole },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: roleGroup(role) }],
    }, FIELD_MANAGER);
  }
}

/** What the values ask of the control plane (the provider adds where the tenant's pods reach it). */
const controlPlaneSpec = (values: TenantValues): ControlPlaneSpec => ({ podSecurity: podSecurityOf(values), memoryLimits: memoryLimitsOf(values), replicas: values.controlPlane.replicas });

/** The time `kplex certs rotate` asked for, if it is one. */
function rotationAsked(tenant: Tenant): Date | undefined {
  const text = tenant.metadata.annotations?.[ANNOTATIONS.rotateCertificates];
  const at = text ? new Date(text) : undefined;
  return at && !Number.isNaN(at.getTime()) ? at : undefined;
}

/**
 * Ready means usable: pods can be created in namespace default, which needs its "default"
 * ServiceAccount. The tenant's controller manager makes it once it has started its controllers one by
 * one, about 3 s after it answers; made here it is there at once, and the controller finds it made.
 */
async function makeUsable(tenant: KubeClient): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      await tenant.create(core('serviceaccounts', 'default'), { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default', namespace: 'default' } });
      return;
    } catch (err) {
      if (!(err instanceof StatusError)) throw err;
      // Made already (by the controller manager, or by this on an earlier start): that is the point.
      if (err.code === 409) return;
      // The API server makes namespace default just after it is ready.
      if (err.code !== 404 || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** What the container of a tenant pod without requests asks for, when the quota counts CPU or memory (vCluster's defaults). */
export const DEFAULT_CONTAINER_REQUESTS = { cpu: '100m', memory: '128Mi' } as const;

/**
 * Objects of the host namespace in isolated mode (pod security aside): a quota, no traffic from outside,
 * and, when the quota counts CPU or memory, default requests (the host refuses a pod without them).
 * `wanted: false` for what the values no longer ask for, so lifting isolation leaves nothing behind.
 * `kplexOwn`: what kplex keeps in the host namespace (the control-plane Service pods reach the tenant
 * by, and the cluster provider's control-plane pod), added to the quota so the tenant gets all its
 * values give it.
 */
export function isolationObjects(
  ns: string,
  values: TenantValues,
  kplexOwn: { services: number; pods: number; requests?: ResourceRequests },
): { ref: Parameters<KubeClient['apply']>[0]; obj: KubeObject; wanted: boolean }[] {
  const own = kplexOwn.requests ?? { cpuMillis: 0, memoryBytes: 0 };
  const { cpu, memory } = values.quota;
  const counted = requestQuantities({ cpuMillis: (cpu ? cpuMillis(cpu)! : 0) + own.cpuMillis, memoryBytes: (memory ? memoryBytes(memory)! : 0) + own.memoryBytes });
  const hard: Record<string, string> = {
    pods: String((values.quota.pods ?? 100) + kplexOwn.pods),
    services: String((values.quota.services ?? 50) + kplexOwn.services),
    ...(cpu ? { 'requests.cpu': counted.cpu } : {}),
    ...(memory ? { 'requests.memory': counted.memory } : {}),
  };
  return [
    {
      ref: core('resourcequotas', ns, 'kplex-quota'),
      obj: { apiVersion: 'v1', kind: 'ResourceQuota', metadata: { name: 'kplex-quota', namespace: ns }, spec: { hard } },
      wanted: values.isolate,
    },
    {
      ref: core('limitranges', ns, 'kplex-defaults'),
      obj: {
        apiVersion: 'v1',
        kind: 'LimitRange',
        metadata: { name: 'kplex-defaults', namespace: ns },
        spec: { limits: [{ type: 'Container', defaultRequest: { ...DEFAULT_CONTAINER_REQUESTS } }] },
      },
      wanted: values.isolate && Boolean(cpu || memory),
    },
    {
      ref: { group: 'networking.k8s.io', version: 'v1', resource: 'networkpolicies', namespace: ns, name: 'kplex-isolate' },
      obj: {
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: { name: 'kplex-isolate', namespace: ns },
        spec: { podSelector: {}, policyTypes: ['Ingress'], ingress: [{ from: [{ podSelector: {} }] }] },
      },
      wanted: values.isolate,
    },
  ];
}

/**
 * Realizes Tenant objects through a control-plane provider and reports their status: one reconcile at
 * a time per tenant, level-triggered (events, provider crashes and a periodic resync all just requeue).
 */
export class TenantController {
  private informer?: Informer<Tenant>;
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly dirty = new Set<string>();
  private resync?: NodeJS.Timeout;
  private stopped = false;
  /** One syncer per Ready tenant, with what it was started from (restarted when that changes). */
  private readonly syncers = new Map<string, { syncer: TenantSyncer; client: KubeClient; started: string }>();
  /** Serves `kubectl top` in tenants from the host's metrics, when the host has them. */
  private readonly metrics?: MetricsAdapters;
  /** When each awake tenant with sleep.afterInactivity is looked at again, to see whether it is idle. */
  private readonly sleepChecks = new Map<string, NodeJS.Timeout>();

  /**
   * `providers`: those this gateway runs tenants' control planes with, by name; the first is the default,
   * for tenants whose values name none.
   */
  constructor(
    private readonly host: KubeClient,
    private readonly providers: readonly ControlPlaneProvider[],
    private readonly log: Logger,
    metrics?: { address: string },
  ) {
    if (providers.length === 0) throw new Error('a tenant controller needs a control-plane provider');
    if (metrics) this.metrics = new MetricsAdapters(host, metrics.address, log);
    for (const provider of providers) {
      provider.onDown = (tenant) => {
        log.warn({ tenant }, 'control plane went down; restarting it');
        this.enqueue(tenant);
      };
    }
  }

  /** The provider a tenant's values ask for, or why there is none. */
  private providerFor(tenant: Tenant, values: TenantValues): ControlPlaneProvider | string {
    const fixed = fixedAtCreation(tenant.status, values);
    if (fixed) return fixed;
    const wanted = values.controlPlane.provider ?? tenant.status?.provider ?? this.providers[0]!.name;
    const provider = this.providers.find((p) => p.name === wanted);
    if (!provider) return `this gateway runs no "${wanted}" control-plane provider (it runs: ${this.providers.map((p) => p.name).join(', ')})`;
    if (values.controlPlane.replicas > provider.maxReplicas) {
      return `controlPlane.replicas: the ${provider.name} provider runs at most ${provider.maxReplicas} (provider cluster runs up to 5)`;
    }
    return provider;
  }

  async start(): Promise<void> {
    this.stopped = false;
    this.informer = new Informer<Tenant>(this.host, tenantsRef(), {
      onUpsert: (t) => this.enqueue(t.metadata.name!),
    }, {}, (err) => this.log.warn({ err: err.message }, 'tenant watch failed; retrying'));
    await this.informer.start();
    this.resync = setInterval(() => this.informer?.list().forEach((t) => this.enqueue(t.metadata.name!)), RESYNC_MS);
  }

  enqueue(name: string): void {
    if (this.stopped) return;
    if (this.inFlight.has(name)) {
      this.dirty.add(name);
      return;
    }
    const run = this.reconcile(name)
      .catch((err: Error) => {
        // Stopped (leadership lost) under way: the next leader reconciles it; not a failure of its own.
        if (this.stopped) this.log.info({ tenant: name, err: err.message }, 'reconcile cut short: the controller stopped');
        else this.log.error({ tenant: name, err: err.message }, 'reconcile failed');
      })
      .finally(() => {
        this.inFlight.delete(name);
        if (this.dirty.delete(name)) this.enqueue(name);
      });
    this.inFlight.set(name, run);
  }

  private async reconcile(name: string): Promise<void> {
    const tenant = await this.host.find<Tenant>(tenantsRef(name));
    this.clearSleepCheck(name);
    if (!tenant) return;
    if (tenant.metadata.deletionTimestamp) return this.teardown(tenant);
    const finalizers = (tenant.metadata.finalizers as string[] | undefined) ?? [];
    if (!finalizers.includes(FINALIZER)) {
      await this.host.patch(tenantsRef(name), { metadata: { finalizers: [...finalizers, FINALIZER], resourceVersion: tenant.metadata.resourceVersion } });
    }
    let values: TenantValues;
    try {
      values = parseValues(tenant.spec?.values, `tenant ${name} values`);
    } catch (err) {
      await this.setStatus(tenant, 'Failed', 'False', 'InvalidValues', (err as Error).message);
      return;
    }
    const provider = this.providerFor(tenant, values);
    if (typeof provider === 'string') {
      await this.setStatus(tenant, 'Failed', 'False', 'InvalidValues', provider);
      return;
    }
    if (tenant.spec?.asleep) return this.sleep(tenant, values, provider);
    // Woken: Pending with reason Waking until Ready, which tells gateways to hold requests meanwhile.
    const wakeBegin = tenant.status?.phase === 'Sleeping' ? Date.now() : undefined;
    if (wakeBegin) await this.setStatus(tenant, 'Pending', 'False', WAKING_REASON, 'waking: starting the control plane again');
    else if (!(tenant.status?.phase === 'Pending' && readyCondition(tenant)?.reason === WAKING_REASON)) await this.startingStatus(tenant, name);
    // How long each step took, logged when the tenant becomes Ready: where create → usable goes.
    const steps: Record<string, number> = {};
    let last = performance.now();
    const took = (step: string): void => {
      const now = performance.now();
      steps[step] = Math.round(now - last);
      last = now;
    };
    try {
      await this.hostNamespace(tenant, values, provider);
      took('hostNamespace');
      // The Service address first: the API server's certificate must name it.
      const podAccess = provider.servesPods ? await this.podService(name, provider) : undefined;
      took('podService');
      const pods = podAccess && { serviceIP: podAccess.serviceIP, fallbackToHost: values.sync.dns.fallbackToHost };
      const endpoint = await provider.ensure(name, { ...controlPlaneSpec(values), ...(pods ? { pods } : {}) }, rotationAsked(tenant));
      took('controlPlane');
      await this.realize(tenant, endpoint, podAccess, provider);
      took('realize');
      await this.ensureSyncer(name, values, endpoint, podAccess);
      took('syncer');
      const wasReady = tenant.status?.phase === 'Ready';
      const ready = await this.setStatus(tenant, 'Ready', 'True', 'ControlPlaneReady', 'the control plane is ready', endpoint.readyMs || undefined, podAccess ?? null, endpoint.certificates, { provider: provider.name, replicas: values.controlPlane.replicas });
      took('status');
      if (!wasReady) this.log.info({ tenant: name, apiServerMs: endpoint.readyMs, steps }, 'tenant ready');
      if (wakeBegin) this.log.info({ tenant: name, ms: Date.now() - wakeBegin, apiServerMs: endpoint.readyMs }, 'tenant awake');
      // After Ready, so that creates and wakes do not wait for it: a tenant without `kubectl top` (for a
      // moment, or until the next resync if this fails) is still usable, and Ready is for what users
      // cannot work without.
      await this.metrics?.ensure(name, endpoint).catch((err: Error) => this.log.warn({ tenant: name, err: err.message }, 'metrics adapter not registered; retrying at the next resync'));
      await this.sleepIfIdle(ready, values);
    } catch (err) {
      await this.setStatus(tenant, 'Failed', 'False', 'ControlPlaneFailed', (err as Error).message);
      throw err;
    }
  }

  private async startingStatus(tenant: Tenant, name: string): Promise<void> {
    // A Ready written before this controller ran (the gateway restarted, or another replica led) is not
    // true until this one has the control plane answering: `kplex list` and waiting clients say so.
    const readyFromBefore = tenant.status?.phase === 'Ready' && !this.syncers.has(name);
    if (tenant.status?.phase !== 'Ready' || readyFromBefore) {
      await this.setStatus(tenant, 'Pending', 'False', 'Starting', readyFromBefore ? 'starting the control plane again' : 'starting the control plane');
    }
  }

  /**
   * sleep.afterInactivity: an awake tenant idle that long is put to sleep through its desired state
   * (spec.asleep, as `kplex sleep` does), so that gateways and `kplex list` see it; otherwise it is
   * looked at again when it would be due. Activity reaches this controller, which runs on one gateway
   * replica, as the Tenant's last-active annotation, which every replica writes for the requests it
   * serves (src/gateway/activity.ts): through the host API server, like everything replicas share.
   */
  private async sleepIfIdle(tenant: Tenant, values: TenantValues): Promise<void> {
    const name = tenant.metadata.name!;
    const d = sleepDecision(Date.now(), inactivityMs(values), idleSince(tenant));
    if (d.act === 'look again') {
      this.sleepChecks.set(name, setTimeout(() => this.enqueue(name), d.inMs));
      return;
    }
    if (d.act !== 'sleep') return;
    this.log.info({ tenant: name, afterInactivity: values.sleep.afterInactivity }, 'idle: putting the tenant to sleep');
    try {
      // With its resourceVersion: a request recorded (or a wake asked) meanwhile wins.
      await this.host.patch(tenantsRef(name), { metadata: { resourceVersion: tenant.metadata.resourceVersion }, spec: { asleep: true } });
    } catch (err) {
      // The Tenant changed since it was read; that change requeues it and it is judged again.
      if (!(err instanceof StatusError && err.code === 409)) throw err;
    }
  }

  private clearSleepCheck(name: string): void {
    clearTimeout(this.sleepChecks.get(name));
    this.sleepChecks.delete(name);
  }

  /**
   * A sleeping tenant: no syncer, no control plane (its data kept), no route to it (its kubeconfig
   * Secret goes, and comes back with the new address on wake). With sleep.workloads "stop", its pods'
   * twins go too; the syncer makes them again from the tenant's pods when it starts on wake. Only
   * pods: they are what runs; removing a PVC twin could take the volume's data with it, and Services,
   * ConfigMaps and Secrets cost nothing while nothing runs.
   */
  private async sleep(tenant: Tenant, values: TenantValues, provider: ControlPlaneProvider): Promise<void> {
    const name = tenant.metadata.name!;
    const ns = hostNamespace(name);
    await this.stopSyncer(name);
    await this.metrics?.stop(name);
    await provider.stop(name);
    await this.host.delete(core('secrets', ns, kubeconfigSecretName(name)));
    // After the syncer stopped, or it would make them again at once.
    if (values.sleep.workloads === 'stop') await this.stopWorkloads(ns, name);
    // Also when its values changed while it sleeps (kplex create --upgrade waits to see them observed).
    if (tenant.status?.phase !== 'Sleeping' || (tenant.status.observedGeneration ?? 0) < Number(tenant.metadata.generation ?? 0)) {
      await this.setStatus(tenant, 'Sleeping', 'False', 'Sleeping', `asleep: the control plane is stopped until a request wakes it (pods ${values.sleep.workloads === 'stop' ? 'stopped' : 'kept running'})`);
      this.log.info({ tenant: name, workloads: values.sleep.workloads }, 'tenant asleep');
    }
  }

  private async stopWorkloads(ns: string, name: string): Promise<void> {
    const pods = core('pods', ns);
    const { items } = await this.host.list(pods, { labelSelector: `${ORIGIN.tenant}=${name}` });
    for (const pod of items) await this.host.delete({ ...pods, name: pod.metadata.name }, { uid: pod.metadata.uid });
  }

  /** The tenant's host namespace, with its isolation. */
  private async hostNamespace(tenant: Tenant, values: TenantValues, provider: ControlPlaneProvider): Promise<void> {
    const name = tenant.metadata.name!;
    const ns = hostNamespace(name);
    const podSecurity = podSecurityLabels(podSecurityOf(values));
    await this.host.apply(core('namespaces', undefined, ns), { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: { ...labelsOf(name), ...podSecurity } } }, FIELD_MANAGER);
    // Lifting isolation removes what it made, so no quota or deny policy is left behind.
    const footprint = provider.hostFootprint?.(controlPlaneSpec(values));
    const kplexOwn = { services: (provider.servesPods ? 1 : 0) + (footprint?.services ?? 0), pods: footprint?.pods ?? 0, requests: footprint?.requests };
    for (const { ref, obj, wanted } of isolationObjects(ns, values, kplexOwn)) {
      if (wanted) await this.host.apply(ref, obj, FIELD_MANAGER);
      else await this.host.delete(ref);
    }
  }

  /** The host Service the tenant's pods reach its control plane by; its address is what they use. */
  private async podService(name: string, provider: ControlPlaneProvider): Promise<PodAccess> {
    const ns = hostNamespace(name);
    const svc = await this.host.apply(core('services', ns, CONTROL_PLANE_SERVICE), controlPlaneService(ns, labelsOf(name), provider.podsOf?.(name)), FIELD_MANAGER);
    const serviceIP = (svc.spec as { clusterIP?: string } | undefined)?.clusterIP;
    if (!serviceIP || serviceIP === 'None') throw new Error(`the host gave Service ${ns}/${CONTROL_PLANE_SERVICE} no address`);
    return { serviceIP };
  }

  /** The tenant's control plane, ready for users: RBAC, the kubernetes Service and its endpoints, and the Secret with its kubeconfig. */
  private async realize(tenant: Tenant, endpoint: ControlPlaneEndpoint, podAccess: PodAccess | undefined, provider: ControlPlaneProvider): Promise<void> {
    const name = tenant.metadata.name!;
    const ns = hostNamespace(name);
    const labels = labelsOf(name);
    const forPods = podAccess && endpoint.forPods;
    const slice = { group: 'discovery.k8s.io', version: 'v1', resource: 'endpointslices', namespace: ns, name: CONTROL_PLANE_SERVICE };
    if (forPods) {
      await this.host.apply(slice, controlPlaneEndpoints(ns, labels, forPods), FIELD_MANAGER);
    } else if (!provider.podsOf) {
      await this.host.delete(core('services', ns, CONTROL_PLANE_SERVICE));
      await this.host.delete(slice);
    }
    const apiPort = forPods?.apiPort ?? provider.podsOf?.(name).apiPort;
    const tenantClient = new KubeClient(endpoint.access, { connections: 2 });
    try {
      await bootstrapTenant(tenantClient);
      if (podAccess && apiPort) await pointKubernetesServiceAt(tenantClient, podAccess.serviceIP, apiPort);
      await makeUsable(tenantClient);
    } finally {
      await tenantClient.close();
    }
    const a = endpoint.access;
    await this.host.apply(core('secrets', ns, kubeconfigSecretName(name)), {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: kubeconfigSecretName(name), namespace: ns, labels: { ...labels, [LABELS.kubeconfig]: 'true' } },
      type: 'Opaque',
      data: {
        server: b64(a.server),
        'ca.crt': b64(a.ca ?? ''),
        'tls.crt': b64(a.cert ?? ''),
        'tls.key': b64(a.key ?? ''),
        config: b64(toYaml(kubeconfigFor(`kplex-${name}-admin`, a))),
      },
    }, FIELD_MANAGER);
  }

  private async ensureSyncer(name: string, values: TenantValues, endpoint: ControlPlaneEndpoint, podAccess: PodAccess | undefined): Promise<void> {
    // A renewed credential starts it again too: the old one stops working when it expires.
    const started = JSON.stringify([values, endpoint.access.server, endpoint.access.cert, podAccess]);
    if (this.syncers.get(name)?.started === started) return;
    await this.stopSyncer(name);
    if (this.stopped) return;
    const client = new KubeClient(endpoint.access);
    const syncer = new TenantSyncer(name, client, this.host, values, this.log, podAccess);
    this.syncers.set(name, { syncer, client, started });
    await syncer.start();
  }

  private async stopSyncer(name: string): Promise<void> {
    const running = this.syncers.get(name);
    if (!running) return;
    this.syncers.delete(name);
    await running.syncer.stop();
    await running.client.close();
  }

  private async teardown(tenant: Tenant): Promise<void> {
    const name = tenant.metadata.name!;
    this.clearSleepCheck(name);
    await this.stopSyncer(name);
    await this.metrics?.stop(name);
    if (tenant.status?.phase !== 'Deleting') await this.setStatus(tenant, 'Deleting', 'False', 'Deleting', 'deleting the control plane and host namespace');
    // Every provider is asked: one a tenant with unreadable values or a failed start used may hold data too.
    for (const provider of this.providers) await provider.destroy(name);
    const ns = hostNamespace(name);
    if (tenant.metadata.annotations?.[ANNOTATIONS.keepNamespace] === 'true') {
      await this.host.delete(core('secrets', ns, kubeconfigSecretName(name)));
    } else {
      await this.host.delete(core('namespaces', undefined, ns), { propagationPolicy: 'Background' });
    }
    const finalizers = ((tenant.metadata.finalizers as string[] | undefined) ?? []).filter((f) => f !== FINALIZER);
    await this.host.patch(tenantsRef(name), { metadata: { finalizers, resourceVersion: tenant.metadata.resourceVersion } }).catch(() => undefined);
    this.log.info({ tenant: name }, 'tenant deleted');
  }

  /** `podAccess`: written with Ready (null removes one a run with pod access left), as are `certificates` and where the control plane runs. */
  private async setStatus(tenant: Tenant, phase: NonNullable<Tenant['status']>['phase'], status: Condition['status'], reason: string, message: string, readyMs?: number, podAccess?: PodAccess | null, certificates?: CertificateStatus[], runsOn?: { provider: string; replicas: number }): Promise<Tenant> {
    const previous = tenant.status?.conditions?.find((c) => c.type === 'Ready');
    const condition: Condition = {
      type: 'Ready',
      status,
      reason,
      message,
      lastTransitionTime: previous?.status === status ? previous.lastTransitionTime : new Date().toISOString(),
    };
    return this.host.patch<Tenant>({ ...tenantsRef(tenant.metadata.name), subresource: 'status' }, {
      status: {
        phase,
        // Written with Sleeping, removed with any other phase.
        sleepingSince: phase === 'Sleeping' ? (tenant.status?.phase === 'Sleeping' ? tenant.status.sleepingSince : new Date().toISOString()) : null,
        namespace: hostNamespace(tenant.metadata.name!),
        observedGeneration: tenant.metadata.generation,
        conditions: [condition],
        ...(readyMs ? { controlPlaneReadyMs: readyMs } : {}),
        ...(podAccess !== undefined ? { podAccess } : {}),
        ...(certificates ? { certificates } : {}),
        ...(runsOn ? { provider: runsOn.provider, controlPlaneReplicas: runsOn.replicas } : {}),
      },
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.resync);
    for (const name of [...this.sleepChecks.keys()]) this.clearSleepCheck(name);
    await this.informer?.stop();
    // Syncers first: a reconcile may be waiting for one's first list, which a leader's client that
    // lapsed will never get; stopping it ends that wait (and no reconcile starts a syncer once stopped).
    await Promise.all([...this.syncers.keys()].map((t) => this.stopSyncer(t)));
    await Promise.all(this.inFlight.values());
    await this.metrics?.close();
  }
}
