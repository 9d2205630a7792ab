// What a tenant's pod gets on the host so that it reaches its own tenant, as a pod reaches its own
// cluster: the tenant's DNS server in /etc/resolv.conf, `KUBERNETES_SERVICE_HOST/PORT` naming the
// tenant's API server, and ServiceAccount tokens the tenant's API server issued. Pure; the Translator
// applies it to a pod's spec, the twin writer and the syncer write and renew the tokens.
import type { KubeObject } from '../k8s/client.js';
import type { PodAccess } from '../tenants/resources.js';
import { shortHash } from './names.js';

export type { PodAccess };

type Json = Record<string, unknown>;
const asList = (v: unknown): Json[] => (Array.isArray(v) ? (v as Json[]) : []);
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : []);

export const API_PORT = 443;
export const DNS_PORT = 53;
export const CLUSTER_DOMAIN = 'cluster.local';

/** The host API server's limits on a pod's dnsConfig (validation of PodSpec). */
const MAX_NAMESERVERS = 3;
const MAX_SEARCHES = 32;
const MAX_SEARCH_CHARS = 2048;

const unique = (list: string[]): string[] => [...new Set(list)];

/**
 * The DNS settings of the host pod. `ClusterFirst` (the default) and `ClusterFirstWithHostNet` mean
 * the tenant's DNS server with the tenant's search path, as kubelet writes them for a cluster's own
 * DNS; the tenant's own dnsConfig is added after, as kubelet adds it. `ClusterFirst` with hostNetwork
 * is `Default` to kubelet, and `Default` and `None` are the tenant's to keep.
 */
export function dnsOnHost(spec: Json, namespace: string, access: PodAccess): Json {
  const policy = typeof spec.dnsPolicy === 'string' ? spec.dnsPolicy : 'ClusterFirst';
  const own = isObject(spec.dnsConfig) ? spec.dnsConfig : undefined;
  const cluster = policy === 'ClusterFirstWithHostNet' || (policy === 'ClusterFirst' && spec.hostNetwork !== true);
  if (!cluster) return { dnsPolicy: policy, ...(own ? { dnsConfig: structuredClone(own) } : {}) };
  const nameservers = unique([access.serviceIP, ...strings(own?.nameservers)]).slice(0, MAX_NAMESERVERS);
  const searches: string[] = [];
  let chars = 0;
  for (const s of unique([`${namespace}.svc.${CLUSTER_DOMAIN}`, `svc.${CLUSTER_DOMAIN}`, CLUSTER_DOMAIN, ...strings(own?.searches)])) {
    if (searches.length === MAX_SEARCHES || chars + s.length + 1 > MAX_SEARCH_CHARS) break;
    searches.push(s);
    chars += s.length + 1;
  }
  const options = new Map<string, Json>([['ndots', { name: 'ndots', value: '5' }]]);
  for (const o of asList(own?.options)) if (typeof o.name === 'string') options.set(o.name, structuredClone(o));
  return { dnsPolicy: 'None', dnsConfig: { nameservers, searches, options: [...options.values()] } };
}

/**
 * What kubelet puts in every container for the cluster's `kubernetes` Service, naming the tenant's:
 * the host's kubelet would name the host's API server. A variable the container sets itself wins, as
 * it does over kubelet's.
 */
export function apiEnv(access: PodAccess): { name: string; value: string }[] {
  const ip = access.serviceIP;
  const url = `tcp://${ip}:${API_PORT}`;
  return [
    { name: 'KUBERNETES_SERVICE_HOST', value: ip },
    { name: 'KUBERNETES_SERVICE_PORT', value: String(API_PORT) },
    { name: 'KUBERNETES_SERVICE_PORT_HTTPS', value: String(API_PORT) },
    { name: 'KUBERNETES_PORT', value: url },
    { name: `KUBERNETES_PORT_${API_PORT}_TCP`, value: url },
    { name: `KUBERNETES_PORT_${API_PORT}_TCP_PROTO`, value: 'tcp' },
    { name: `KUBERNETES_PORT_${API_PORT}_TCP_PORT`, value: String(API_PORT) },
    { name: `KUBERNETES_PORT_${API_PORT}_TCP_ADDR`, value: ip },
  ];
}

/** A container's env with the API variables first; its own entries (by name) take their place. */
export function withApiEnv(env: unknown, access: PodAccess): Json[] {
  const own = asList(env);
  const named = new Set(own.map((e) => e.name));
  return [...apiEnv(access).filter((e) => !named.has(e.name)), ...own];
}

/** The default lifetime of a projected token (the v1 API's default for `expirationSeconds`). */
const DEFAULT_TOKEN_SECONDS = 3600;

/** One `serviceAccountToken` projection of a pod: what the tenant issues for it, and under which key of the token Secret it lands. */
export interface TokenProjection {
  audience?: string;
  expirationSeconds: number;
  path: string;
  key: string;
}

/**
 * The pod's token projections, in the order of its volumes and their sources: the translation walks
 * them in the same order, so the n-th becomes key `token-<n>` of the pod's token Secret.
 */
export function tokenProjections(spec: Json): TokenProjection[] {
  const out: TokenProjection[] = [];
  for (const v of asList(spec.volumes)) {
    if (!isObject(v.projected)) continue;
    for (const s of asList(v.projected.sources)) {
      if (!isObject(s.serviceAccountToken)) continue;
      const t = s.serviceAccountToken;
      out.push({
        audience: typeof t.audience === 'string' && t.audience ? t.audience : undefined,
        expirationSeconds: typeof t.expirationSeconds === 'number' ? t.expirationSeconds : DEFAULT_TOKEN_SECONDS,
        path: typeof t.path === 'string' ? t.path : 'token',
        key: tokenKey(out.length),
      });
    }
  }
  return out;
}

export const tokenKey = (n: number): string => `token-${n}`;

/**
 * The host Secret that holds a pod's tokens, named after the host pod. No translated name has this
 * form (every one contains "-x-"), so no tenant object can name it.
 */
export const tokenSecretName = (hostPodName: string): string => `kplex-token-${shortHash('token', hostPodName)}`;

/** Marks of a token Secret: which host pod it is for and when its tokens are due for renewal. */
export const TOKEN = {
  label: 'kplex.dev/pod-token',
  pod: 'kplex.dev/pod',
  renewAfter: 'kplex.dev/renew-after',
} as const;

/** A token the tenant's API server issued for a projection. */
export interface IssuedToken {
  key: string;
  token: string;
  expirationSeconds: number;
}

/**
 * When tokens are renewed: at 80% of the shortest lifetime, as kubelet renews projected tokens. Kept
 * in the Secret, so any syncer (after a restart, on another replica) knows.
 */
export function renewAfter(tokens: readonly IssuedToken[], now: number): string {
  const shortest = Math.min(...tokens.map((t) => t.expirationSeconds));
  return new Date(now + shortest * 800).toISOString();
}

/** How long a token Secret may be without its pod: the inline mirror writes it just before the pod. */
export const TOKEN_ORPHAN_GRACE_MS = 60_000;

export type TokenAction = { act: 'keep' } | { act: 'renew' } | { act: 'delete' };

/** What to do with a token Secret: renew it when due, delete it once its pod is gone, else keep it. */
export function tokenAction(secret: KubeObject, podTwinExists: boolean, now: number): TokenAction {
  if (!podTwinExists) {
    const created = Date.parse(secret.metadata.creationTimestamp ?? '');
    return Number.isNaN(created) || now - created > TOKEN_ORPHAN_GRACE_MS ? { act: 'delete' } : { act: 'keep' };
  }
  const due = Date.parse(secret.metadata.annotations?.[TOKEN.renewAfter] ?? '');
  return Number.isNaN(due) || now >= due ? { act: 'renew' } : { act: 'keep' };
}

/** The image that writes a pod's hosts file: any with a POSIX `sed` (the embedded cluster builds `busybox`). */
export const HOSTS_IMAGE = 'busybox';
const HOSTS_VOLUME = 'kplex-hosts';

/** A pod's name under its headless Service: `<hostname>.<subdomain>.<namespace>.svc.cluster.local`. */
export interface PodFqdn {
  hostname: string;
  /** As the host names it (the twin Service, the host namespace) and as the tenant does. */
  host: string;
  tenant: string;
}

const escapeDots = (name: string): string => name.replace(/\./g, '\\.');
const isFqdn = (name: string): boolean => /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/.test(name);

/**
 * A pod with a subdomain (a StatefulSet's) under its tenant name in /etc/hosts, so `hostname -f`
 * prints the name the tenant's DNS gives it: kubelet writes the file with the host's name, and leaves
 * it alone for a container that mounts its own. An init container copies kubelet's file with the line
 * rewritten (it has the pod's address) into a volume every container mounts there. It runs as nobody
 * with nothing, so every pod security level admits it, and asks for little, so quotas do too.
 */
export function withTenantHosts(spec: Json, fqdn: PodFqdn): Json {
  if (![fqdn.host, fqdn.tenant].every(isFqdn) || !isFqdn(fqdn.hostname)) return spec;
  // kubelet writes no hosts file on the host network; a container with its own keeps it.
  const containers = [...asList(spec.initContainers), ...asList(spec.containers)];
  if (spec.hostNetwork === true || containers.some((c) => asList(c.volumeMounts).some((m) => m.mountPath === '/etc/hosts'))) return spec;
  const script = `sed -E 's/^([^[:space:]]+)[[:space:]]+${escapeDots(fqdn.host)}[[:space:]]+${escapeDots(fqdn.hostname)}$/\\1\\t${fqdn.tenant}\\t${fqdn.hostname}/' /etc/hosts > /${HOSTS_VOLUME}/hosts`;
  const mount = { name: HOSTS_VOLUME, mountPath: '/etc/hosts', subPath: 'hosts' };
  const mounted = (c: Json): Json => ({ ...c, volumeMounts: [...asList(c.volumeMounts), mount] });
  const small = { cpu: '10m', memory: '16Mi' };
  return {
    ...spec,
    volumes: [...asList(spec.volumes), { name: HOSTS_VOLUME, emptyDir: {} }],
    initContainers: [
      {
        name: HOSTS_VOLUME,
        image: HOSTS_IMAGE,
        imagePullPolicy: 'IfNotPresent',
        command: ['sh', '-c', script],
        volumeMounts: [{ name: HOSTS_VOLUME, mountPath: `/${HOSTS_VOLUME}` }],
        resources: { requests: small, limits: small },
        securityContext: {
          runAsNonRoot: true,
          runAsUser: 65534,
          runAsGroup: 65534,
          allowPrivilegeEscalation: false,
          capabilities: { drop: ['ALL'] },
          seccompProfile: { type: 'RuntimeDefault' },
        },
      },
      ...asList(spec.initContainers).map(mounted),
    ],
    containers: asList(spec.containers).map(mounted),
  };
}
