import type { KubeObject } from '../k8s/client.js';
import { isDns1123Label } from '../k8s/validation.js';
import { hostNamespace } from '../tenants/names.js';
import { allowedExternalIPs } from './addresses.js';
import { hostLabelKey, hostName, shortHash, type HostName, type NameLimit } from './names.js';
import { priorityClassOnHost, schedulingOnHost, type LabelSelector, type TwinLabels } from './pod-scheduling.js';
import { CLUSTER_DOMAIN, renewAfter, TOKEN, tokenSecretName, withTenantHosts, type IssuedToken, type PodAccess } from './pod-access.js';
import { claimSpecOnHost, podSpecOnHost } from './pod-spec.js';

/** Labels and annotations that name a host object's origin; the reverse direction reads only these. */
export const ORIGIN = {
  managedBy: 'app.kubernetes.io/managed-by',
  tenant: 'kplex.dev/tenant',
  /** A label: the tenant namespace, as a hash (namespaces may be longer than label values allow with prefixes). */
  namespaceLabel: 'kplex.dev/namespace',
  name: 'kplex.dev/name',
  namespace: 'kplex.dev/namespace',
  uid: 'kplex.dev/uid',
  labels: 'kplex.dev/labels',
} as const;

export const MANAGED_BY = 'kplex';

/** Where a host object came from. */
export interface Origin {
  tenant: string;
  namespace: string;
  name: string;
  uid: string;
}

export function originOf(host: KubeObject): Origin | undefined {
  const a = host.metadata.annotations ?? {};
  const tenant = host.metadata.labels?.[ORIGIN.tenant];
  const name = a[ORIGIN.name];
  if (!tenant || !name || host.metadata.labels?.[ORIGIN.managedBy] !== MANAGED_BY) return undefined;
  return { tenant, namespace: a[ORIGIN.namespace] ?? '', name, uid: a[ORIGIN.uid] ?? '' };
}

type Json = Record<string, unknown>;
const clone = <T>(o: T): T => structuredClone(o);
const asList = (v: unknown): Json[] => (Array.isArray(v) ? (v as Json[]) : []);

/**
 * Which tenant annotations a twin carries: only those without a domain prefix. Prefixed ones are how
 * host components are steered (an ingress controller's configuration snippets, a load balancer's address
 * pool, a network plugin's IPs and networks, kubectl's bookkeeping), and the tenant may not steer them;
 * the tenant object keeps them all.
 */
export const keptOnHost = (annotation: string): boolean => !annotation.includes('/');

/** Name limits of the kinds kplex mirrors: Services (and their Endpoints) are DNS labels. */
const LIMIT: Record<string, NameLimit> = { Service: 63, Endpoints: 63 };

/**
 * The one place that knows how tenant objects look on the host, for one tenant. Pure: the gateway's
 * inline mirror and the syncer both use it.
 */
export class Translator {
  readonly hostNamespace: string;

  /** `access`: how the tenant's pods reach its API server and DNS, when a pod network reaches them. */
  constructor(readonly tenant: string, readonly access?: PodAccess) {
    this.hostNamespace = hostNamespace(tenant);
  }

  name(namespace: string, name: string, kind: string): HostName {
    return hostName(this.tenant, namespace, name, LIMIT[kind] ?? 253);
  }

  /** The label that keeps a tenant namespace's pods apart on the host. */
  namespaceLabelValue(namespace: string): string {
    return namespace.length <= 63 ? namespace : shortHash('namespace', namespace);
  }

  /** Host labels for tenant labels: every key prefixed and hashed, plus the origin markers. */
  labels(namespace: string, labels: Record<string, string> = {}): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(labels)) out[hostLabelKey(k)] = v;
    out[ORIGIN.managedBy] = MANAGED_BY;
    out[ORIGIN.tenant] = this.tenant;
    out[ORIGIN.namespaceLabel] = this.namespaceLabelValue(namespace);
    return out;
  }

  /**
   * A tenant selector as a host selector: the same keys translated, and always scoped to this tenant's
   * namespace, so it matches exactly the mirrored pods of that namespace.
   */
  selector(namespace: string, sel: LabelSelector | undefined): LabelSelector {
    const matchLabels: Record<string, string> = {};
    for (const [k, v] of Object.entries(sel?.matchLabels ?? {})) matchLabels[hostLabelKey(k)] = v;
    matchLabels[ORIGIN.tenant] = this.tenant;
    matchLabels[ORIGIN.namespaceLabel] = this.namespaceLabelValue(namespace);
    const matchExpressions = (sel?.matchExpressions ?? []).map((e) => ({ ...e, key: hostLabelKey(e.key) }));
    return matchExpressions.length ? { matchLabels, matchExpressions } : { matchLabels };
  }

  /** Metadata of the host twin: translated name, host namespace, labels and the origin annotations. */
  private metadata(obj: KubeObject, kind: string): KubeObject['metadata'] {
    const ns = obj.metadata.namespace ?? '';
    const annotations: Record<string, string> = {};
    for (const [k, v] of Object.entries(obj.metadata.annotations ?? {})) if (keptOnHost(k)) annotations[k] = v;
    annotations[ORIGIN.name] = obj.metadata.name!;
    annotations[ORIGIN.namespace] = ns;
    annotations[ORIGIN.uid] = obj.metadata.uid ?? '';
    if (obj.metadata.labels && Object.keys(obj.metadata.labels).length) annotations[ORIGIN.labels] = JSON.stringify(obj.metadata.labels);
    return {
      name: this.name(ns, obj.metadata.name!, kind),
      namespace: this.hostNamespace,
      labels: this.labels(ns, obj.metadata.labels),
      annotations,
    };
  }

  configMap(cm: KubeObject): KubeObject {
    return { apiVersion: 'v1', kind: 'ConfigMap', metadata: this.metadata(cm, 'ConfigMap'), data: cm.data, binaryData: cm.binaryData, immutable: cm.immutable };
  }

  secret(s: KubeObject): KubeObject {
    // Service-account token Secrets are the tenant API server's; the host issues its own.
    const type = s.type === 'kubernetes.io/service-account-token' ? 'Opaque' : s.type;
    return { apiVersion: 'v1', kind: 'Secret', metadata: this.metadata(s, 'Secret'), type, data: s.data, immutable: s.immutable };
  }

  serviceAccount(sa: KubeObject): KubeObject {
    return { apiVersion: 'v1', kind: 'ServiceAccount', metadata: this.metadata(sa, 'ServiceAccount'), automountServiceAccountToken: false };
  }

  persistentVolumeClaim(pvc: KubeObject): KubeObject {
    const spec = claimSpecOnHost(pvc.spec);
    return { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: this.metadata(pvc, 'PersistentVolumeClaim'), spec };
  }

  /**
   * A Service on the host: selector translated; its ClusterIP is the tenant's (both share one range).
   * External IPs make every node forward traffic for that address to the Service, whoever owns the
   * address (CVE-2020-8554): only those inside the CIDRs the tenant's values allow are kept. An
   * ExternalName stays as it is: it is only a DNS CNAME, and reaches nothing a pod could not resolve.
   */
  service(svc: KubeObject, externalIPCIDRs: readonly string[] = []): KubeObject {
    const ns = svc.metadata.namespace ?? '';
    const spec = clone((svc.spec ?? {}) as Json);
    if (spec.selector) spec.selector = this.selector(ns, { matchLabels: spec.selector as Record<string, string> }).matchLabels;
    // Node ports and health-check ports are allocated by the host.
    spec.ports = asList(spec.ports).map(({ nodePort: _nodePort, ...p }) => p);
    delete spec.healthCheckNodePort;
    const externalIPs = allowedExternalIPs(spec.externalIPs, externalIPCIDRs);
    if (externalIPs.length) spec.externalIPs = externalIPs;
    else delete spec.externalIPs;
    // The tenant defaulted it because of the external IPs; a ClusterIP Service without them may not have it.
    if (!externalIPs.length && (spec.type ?? 'ClusterIP') === 'ClusterIP') delete spec.externalTrafficPolicy;
    if (!spec.clusterIP || spec.clusterIP === '') {
      delete spec.clusterIP;
      delete spec.clusterIPs;
    }
    return { apiVersion: 'v1', kind: 'Service', metadata: this.metadata(svc, 'Service'), spec };
  }

  /**
   * Endpoints of a selectorless Service, which the host cannot compute: same name as the host Service,
   * addresses kept, references to tenant pods dropped (they name tenant objects).
   */
  endpoints(ep: KubeObject): KubeObject {
    const subsets = asList(ep.subsets).map((subset) => ({
      ...subset,
      addresses: asList(subset.addresses).map(({ targetRef: _t, ...a }) => a),
      notReadyAddresses: asList(subset.notReadyAddresses).map(({ targetRef: _t, ...a }) => a),
    }));
    return { apiVersion: 'v1', kind: 'Endpoints', metadata: this.metadata(ep, 'Endpoints'), subsets };
  }

  /** How this tenant's twins are told apart on the host, for selectors over them (pod-scheduling.ts). */
  get twinLabels(): TwinLabels {
    return { tenant: { [ORIGIN.tenant]: this.tenant }, namespaceKey: ORIGIN.namespaceLabel, namespaceValue: (ns) => this.namespaceLabelValue(ns) };
  }

  /**
   * A Pod on the host: references translated (podSpecOnHost), its pod (anti-)affinity and spread
   * constraints over the tenant's twins (schedulingOnHost), fields the host owns left out, scheduled by
   * the host. A `system-` priority class never reaches the host; whether the host has another is
   * asked before (kinds.ts, the Pod's `beforeApply`).
   */
  pod(pod: KubeObject): KubeObject {
    const ns = pod.metadata.namespace ?? '';
    const tenantSpec = (pod.spec ?? {}) as Json;
    const api = this.access && { access: this.access, namespace: ns, tokenSecret: tokenSecretName(this.name(ns, pod.metadata.name!, 'Pod')) };
    const spec = podSpecOnHost(tenantSpec, (kind, name) => this.name(ns, name, kind), api, (p) => this.fieldPath(p));
    Object.assign(spec, schedulingOnHost(tenantSpec, ns, pod.metadata.labels ?? {}, this.twinLabels));
    if (typeof spec.priorityClassName === 'string' && !priorityClassOnHost(spec.priorityClassName, true).keep) delete spec.priorityClassName;
    // The name the pod has in the tenant, as its kubelet would give it (a StatefulSet's controller sets
    // it so anyway); with the translated subdomain the host's DNS names the pod
    // <name>.<subdomain twin>.kplex-NAME.svc. A pod name that is no DNS label (it has dots) cannot be
    // spec.hostname: the host names it after the twin.
    const hostname = pod.metadata.name?.slice(0, 63).replace(/[-.]+$/, '');
    if (spec.hostname === undefined && hostname && isDns1123Label(hostname)) spec.hostname = hostname;
    // With the tenant's DNS, /etc/hosts names it as that DNS does, so `hostname -f` prints the tenant's name.
    const subdomain = tenantSpec.subdomain;
    if (this.access && typeof subdomain === 'string' && subdomain && typeof spec.hostname === 'string') {
      const h = spec.hostname;
      const fqdn = { hostname: h, host: `${h}.${String(spec.subdomain)}.${this.hostNamespace}.svc.${CLUSTER_DOMAIN}`, tenant: `${h}.${subdomain}.${ns}.svc.${CLUSTER_DOMAIN}` };
      return { apiVersion: 'v1', kind: 'Pod', metadata: this.metadata(pod, 'Pod'), spec: withTenantHosts(spec, fqdn) };
    }
    return { apiVersion: 'v1', kind: 'Pod', metadata: this.metadata(pod, 'Pod'), spec };
  }

  /**
   * A downward API field as the host pod has it: its name, namespace and uid are the tenant's in the
   * origin annotations (the host's are the twin's), a label is under its translated key. Other fields
   * (node name, IPs, resources) are the host's and the same.
   */
  fieldPath(path: string): string {
    const origin: Record<string, string> = { 'metadata.name': ORIGIN.name, 'metadata.namespace': ORIGIN.namespace, 'metadata.uid': ORIGIN.uid };
    if (origin[path]) return `metadata.annotations['${origin[path]}']`;
    const label = /^metadata\.labels\['(.+)'\]$/.exec(path);
    if (label) return `metadata.labels['${hostLabelKey(label[1]!)}']`;
    return path;
  }

  /**
   * The Secret with a pod's tenant-issued ServiceAccount tokens (pod-access.ts), which its host twin
   * mounts where the tenant's pod has them. Not a twin: no origin annotations, so no sync rule for
   * tenant Secrets ever touches it; the syncer renews it and removes it with its pod.
   */
  tokenSecret(pod: KubeObject, tokens: readonly IssuedToken[], now: number): KubeObject {
    const hostPod = this.name(pod.metadata.namespace ?? '', pod.metadata.name!, 'Pod');
    const data: Record<string, string> = {};
    for (const t of tokens) data[t.key] = Buffer.from(t.token).toString('base64');
    return {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: tokenSecretName(hostPod),
        namespace: this.hostNamespace,
        labels: { [ORIGIN.managedBy]: MANAGED_BY, [ORIGIN.tenant]: this.tenant, [TOKEN.label]: 'true' },
        annotations: { [TOKEN.pod]: hostPod, [TOKEN.renewAfter]: renewAfter(tokens, now) },
      },
      type: 'Opaque',
      data,
    };
  }

  /** An Ingress on the host: backends name the translated Services, TLS the translated Secrets. */
  ingress(ing: KubeObject): KubeObject {
    const ns = ing.metadata.namespace ?? '';
    const spec = clone((ing.spec ?? {}) as Json);
    const backend = (b: Json | undefined): void => {
      const svc = b?.service as Json | undefined;
      if (svc?.name) svc.name = this.name(ns, String(svc.name), 'Service');
    };
    backend(spec.defaultBackend as Json | undefined);
    for (const rule of asList(spec.rules)) for (const path of asList((rule.http as Json | undefined)?.paths)) backend(path.backend as Json);
    for (const tls of asList(spec.tls)) if (tls.secretName) tls.secretName = this.name(ns, String(tls.secretName), 'Secret');
    return { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: this.metadata(ing, 'Ingress'), spec };
  }

  /**
   * A NetworkPolicy on the host: pod selectors translated. A peer in the same namespace stays there; a
   * peer with a namespace selector becomes "pods of this tenant in any namespace" (tenant namespaces and
   * their labels do not exist on the host), so no peer rule ever reaches another tenant or the host.
   */
  networkPolicy(np: KubeObject): KubeObject {
    const ns = np.metadata.namespace ?? '';
    const spec = clone((np.spec ?? {}) as Json);
    spec.podSelector = this.selector(ns, spec.podSelector as LabelSelector);
    const peer = (p: Json): Json => {
      if (p.ipBlock) return { ipBlock: p.ipBlock };
      const sel = this.selector(ns, p.podSelector as LabelSelector);
      if (p.namespaceSelector) delete sel.matchLabels![ORIGIN.namespaceLabel];
      return { podSelector: sel };
    };
    const peers = (rules: unknown, field: 'from' | 'to'): Json[] => asList(rules).map((r) => ({ ...r, [field]: asList(r[field]).map(peer) }));
    if (spec.ingress) spec.ingress = peers(spec.ingress, 'from');
    if (spec.egress) spec.egress = peers(spec.egress, 'to');
    return { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: this.metadata(np, 'NetworkPolicy'), spec };
  }
}
