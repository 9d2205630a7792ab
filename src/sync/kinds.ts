import type { KubeObject, ResourceRef } from '../k8s/client.js';
import type { StatusError } from '../k8s/status.js';
import { TENANT_METRICS_SERVICE } from '../tenants/names.js';
import type { TenantValues } from '../tenants/values.js';
import { adoptClusterIP, allocatesClusterIP, compareClusterIPs, dryRunService, keepTwinIP, remadeWithTwinIP, sameOrigin, withoutClusterIP } from './cluster-ip.js';
import { hostTaken, hostTakenElsewhere } from './ingress-hosts.js';
import { needsNamespaces, priorityClassOf, priorityClassOnHost, resolveNamespaceSelectors, withoutPriorityClass } from './pod-scheduling.js';
import { tokenSecretName } from './pod-access.js';
import { nodeNameOf, statusDiffers, tenantPodStatus } from './pod-status.js';
import { issuePodTokens, type IssueToken } from './pod-tokens.js';
import { prerequisitesOf, referencesOf, type Prerequisite, type Reference } from './references.js';
import type { Translator } from './translate.js';
import { claimVolumeNameOnHost } from './volumes.js';

type Json = Record<string, unknown>;

/** What the hooks of a kind may ask about the host while a twin is being written (twins.ts). */
export interface ApplyContext {
  t: Translator;
  /** The twin as the host has it, when known. */
  twin?: KubeObject;
  /** A tenant's Endpoints with only the addresses it may point at (host-networks.ts). */
  reachable(ep: KubeObject): Promise<{ endpoints: KubeObject; dropped: string[] }>;
  /** Every object of this kind on the host, in all namespaces. */
  everywhere(): Promise<KubeObject[]>;
  /** The tenant's namespaces, with their labels. */
  namespaces(): Promise<KubeObject[]>;
  /** Whether the host has a PriorityClass of this name. */
  hostHasPriorityClass(name: string): Promise<boolean>;
  /** A token of a tenant ServiceAccount, issued by the tenant's API server. */
  issueToken: IssueToken;
}

/** A tenant object as its twin is written from it, and what the tenant should be told about it; or a refusal. */
export type Prepared = { origin: KubeObject; notice?: string } | { refused: StatusError };

/** A change the tenant object takes from its twin (host -> tenant). */
export type TenantChange =
  | { change: 'status'; status: Json }
  | { change: 'bind'; node: string }
  /** Made again as `object`: a field the API server keeps immutable (a ClusterIP) must change. */
  | { change: 'remake'; object: KubeObject };

/** One kind of low-level object that is mirrored from the tenant to the host, with its own behaviour as hooks. */
export interface MirroredKind {
  kind: string;
  /** The collection, without namespace or name. */
  ref: ResourceRef;
  toHost(t: Translator, obj: KubeObject): KubeObject;
  /** Objects never mirrored, e.g. the tenant's own API server Service. */
  skip?(obj: KubeObject): boolean;
  /** Mirrored only while a tenant pod (or Ingress) uses it: ConfigMaps and Secrets (references.ts). */
  onlyWhenUsed?: boolean;
  /** The ConfigMaps and Secrets an object of this kind uses (what `onlyWhenUsed` counts). */
  uses?(obj: KubeObject): Reference[];
  /** What goes to the host before a new twin, so the host admits it and its kubelet finds its volumes. */
  prerequisites?(obj: KubeObject): Prerequisite[];
  /** Host Secrets kplex makes for a new twin (a pod's tenant-issued tokens), written before it. */
  companions?(obj: KubeObject, c: ApplyContext): Promise<KubeObject[]>;
  /** The names of those Secrets, for a twin's host name: they go with the twin. */
  companionNames?(hostName: string): string[];
  /** The tenant object as the host may take it (Endpoints: only reachable addresses), or a refusal. */
  beforeApply?(obj: KubeObject, c: ApplyContext): Prepared | Promise<Prepared>;
  /** With a twin already there: write it again (the default), leave it (immutable), or replace it. */
  compare?(origin: KubeObject, twin: KubeObject): 'update' | 'leave' | 'replace';
  /** Asked for instead when the host will not take a new twin as it is (a Service: no ClusterIP, the host chooses). */
  hostChooses?(twin: KubeObject): KubeObject | undefined;
  /** What the tenant object takes over from its twin once both exist. */
  fromHost?(origin: KubeObject, twin: KubeObject): TenantChange[];
  /** A deleting tenant object is removed only once its twin is gone: no kubelet in the tenant finalizes a Pod. */
  finalizedByTwin?: boolean;
  /** Its twins run on host nodes, which the tenant sees (nodes.ts). */
  runsOnNodes?: boolean;
  /** What its objects claim is shared by every namespace of the host (Ingress host names): `everywhere` is watched. */
  sharedOnHost?: boolean;
  /**
   * Writes through the gateway judged before the tenant stores them (admit.ts): by the host, through a
   * dry run of the twin, for isolated tenants (their host namespace has a quota and a pod security
   * level); or by kplex's own check (`beforeApply`), for every tenant.
   */
  admission?: { verbs: readonly string[]; by: 'host' | 'kplex' };
  /** The twin as a dry run asks the host about it. */
  dryRun?(twin: KubeObject): KubeObject;
  /** Made on the host first when written through the gateway, so the tenant stores what the host chose. */
  hostFirst?: { wanted(obj: KubeObject): boolean; adopt(obj: KubeObject, twin: KubeObject): KubeObject };
}

const core = (resource: string): ResourceRef => ({ group: '', version: 'v1', resource });
const networking = (resource: string): ResourceRef => ({ group: 'networking.k8s.io', version: 'v1', resource });
const same = (a: unknown, b: unknown): boolean => JSON.stringify(a ?? {}) === JSON.stringify(b ?? {});
/** The host owns these statuses (load balancer, claim phase and capacity): the tenant object takes them over. */
const hostStatus = (origin: KubeObject, twin: KubeObject): TenantChange[] => (same(twin.status, origin.status) ? [] : [{ change: 'status', status: twin.status as Json }]);

/** A claim twin bound ahead to `volumeName` (the twin of the tenant's own PV), if any. */
const withVolumeName = (twin: KubeObject, volumeName: string | undefined): KubeObject => (volumeName ? { ...twin, spec: { ...(twin.spec as Json), volumeName } } : twin);

/** The one table of mirrored kinds; ingresses and network policies when the tenant's values enable them. */
export function mirroredKinds(values: TenantValues): MirroredKind[] {
  const kinds: MirroredKind[] = [
    { kind: 'ConfigMap', ref: core('configmaps'), toHost: (t, o) => t.configMap(o), onlyWhenUsed: true },
    { kind: 'Secret', ref: core('secrets'), toHost: (t, o) => t.secret(o), onlyWhenUsed: true },
    { kind: 'ServiceAccount', ref: core('serviceaccounts'), toHost: (t, o) => t.serviceAccount(o) },
    {
      kind: 'PersistentVolumeClaim',
      ref: core('persistentvolumeclaims'),
      toHost: (t, o) => withVolumeName(t.persistentVolumeClaim(o), claimVolumeNameOnHost(t, (o.spec as Json | undefined)?.volumeName, values.sync.persistentVolumes.enabled)),
      fromHost: hostStatus,
    },
    {
      kind: 'Service',
      ref: core('services'),
      toHost: (t, o) => t.service(o, values.sync.services.externalIPs.allowedCIDRs),
      // The tenant's "kubernetes" Service points at its own API server, and kplex's metrics Service at
      // kplex's metrics adapter: neither at anything on the host.
      skip: (o) => (o.metadata.namespace === 'default' && o.metadata.name === 'kubernetes') || (o.metadata.namespace === 'kube-system' && o.metadata.name === TENANT_METRICS_SERVICE),
      // One ClusterIP on both sides (cluster-ip.ts).
      beforeApply: (o, c) => ({ origin: keepTwinIP(o, c.twin) }),
      compare: (o, twin) => (compareClusterIPs(o, twin) === 'replace the twin' ? 'replace' : 'update'),
      hostChooses: withoutClusterIP,
      fromHost: (o, twin) => [
        ...((twin.status as { loadBalancer?: { ingress?: unknown[] } } | undefined)?.loadBalancer?.ingress ? hostStatus(o, twin) : []),
        ...(compareClusterIPs(o, twin) === 'tenant takes the twin IP' ? [{ change: 'remake' as const, object: remadeWithTwinIP(o, twin) }] : []),
      ],
      admission: { verbs: ['create'], by: 'host' },
      dryRun: dryRunService,
      hostFirst: { wanted: allocatesClusterIP, adopt: adoptClusterIP },
    },
    {
      kind: 'Endpoints',
      ref: core('endpoints'),
      toHost: (t, o) => t.endpoints(o),
      // Endpoints the tenant's endpoints controller keeps for Services with selectors (it labels them)
      // are computed by the host for the translated selector instead.
      skip: (o) => o.metadata.labels?.['endpoints.kubernetes.io/managed-by'] === 'endpoint-controller' || (o.metadata.namespace === 'default' && o.metadata.name === 'kubernetes'),
      // A selectorless Service's Endpoints reach the host with only the addresses the tenant may point
      // at (addresses.ts): never another tenant's pods, host Services or nodes.
      beforeApply: async (o, c) => {
        const { endpoints, dropped } = await c.reachable(o);
        const notice = dropped.length ? `the host cluster left out addresses that are not this tenant's to point at (other pods, the host's Service or node addresses, loopback or link-local): ${dropped.join(', ')}` : undefined;
        return { origin: endpoints, notice };
      },
    },
    {
      kind: 'Pod',
      ref: core('pods'),
      toHost: (t, o) => t.pod(o),
      // What the translation cannot know by itself (pod-scheduling.ts): which tenant namespaces a
      // namespace selector selects, and whether the host has the pod's PriorityClass.
      beforeApply: async (o, c) => {
        const origin = needsNamespaces(o) ? resolveNamespaceSelectors(o, await c.namespaces()) : o;
        const priority = priorityClassOf(o);
        if (!priority) return { origin };
        const d = priorityClassOnHost(priority, await c.hostHasPriorityClass(priority));
        return d.keep ? { origin } : { origin: withoutPriorityClass(origin), notice: d.why };
      },
      uses: (o) => referencesOf('Pod', o),
      prerequisites: prerequisitesOf,
      // Its tenant-issued ServiceAccount tokens, where the tenant's pods reach its API (pod-access.ts).
      companions: async (o, c) => {
        if (!c.t.access) return [];
        const tokens = await issuePodTokens(o, c.issueToken);
        return tokens.length ? [c.t.tokenSecret(o, tokens, Date.now())] : [];
      },
      companionNames: (hostName) => [tokenSecretName(hostName)],
      // Pods are immutable in most of their spec: a twin stays as it is, unless an earlier pod of that name made it.
      compare: (o, twin) => (sameOrigin(o, twin) ? 'leave' : 'replace'),
      fromHost: (o, twin) => {
        const node = nodeNameOf(twin);
        return [
          ...(node && !nodeNameOf(o) ? [{ change: 'bind' as const, node }] : []),
          ...(statusDiffers(twin, o) ? [{ change: 'status' as const, status: tenantPodStatus(twin, o) }] : []),
        ];
      },
      finalizedByTwin: true,
      runsOnNodes: true,
      admission: { verbs: ['create'], by: 'host' },
    },
  ];
  if (values.sync.ingresses.enabled) {
    kinds.push({
      kind: 'Ingress',
      ref: networking('ingresses'),
      toHost: (t, o) => t.ingress(o),
      uses: (o) => referencesOf('Ingress', o),
      sharedOnHost: true,
      // Host names on the host's ingress controllers are first come, first served (ingress-hosts.ts).
      beforeApply: async (o, c) => {
        const all = await c.everywhere();
        const twinName = c.t.name(o.metadata.namespace ?? '', o.metadata.name ?? '', 'Ingress');
        const twin = all.find((x) => x.metadata.namespace === c.t.hostNamespace && x.metadata.name === twinName);
        const taken = hostTakenElsewhere(o, c.t.hostNamespace, all, twin);
        return taken === undefined ? { origin: o } : { refused: hostTaken(o.metadata.name ?? '', taken) };
      },
      admission: { verbs: ['create', 'update', 'patch'], by: 'kplex' },
    });
  }
  if (values.sync.networkPolicies.enabled) {
    kinds.push({ kind: 'NetworkPolicy', ref: networking('networkpolicies'), toHost: (t, o) => t.networkPolicy(o) });
  }
  return kinds;
}

/** The kind a request's resource names, if it is mirrored (for the gateway's inline mirror). */
export const kindOfResource = (kinds: MirroredKind[], group: string, resource: string): MirroredKind | undefined =>
  kinds.find((k) => k.ref.group === group && k.ref.resource === resource);
