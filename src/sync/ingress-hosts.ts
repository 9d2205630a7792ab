// Host names on a shared ingress controller: first come, first served. Pure; the syncer and the
// gateway give it the host's Ingresses.
import type { KubeObject } from '../k8s/client.js';
import { StatusError } from '../k8s/status.js';

type Json = Record<string, unknown>;
const asList = (v: unknown): Json[] => (Array.isArray(v) ? (v as Json[]) : []);

/**
 * The host names an Ingress serves: its rules' hosts and its TLS hosts, in lower case. A rule without a
 * host serves every name the controller has no rule for; it claims the empty name, which only another
 * such rule shares (controllers merge the paths of rules for one name, so that is a conflict too).
 */
export function ingressHosts(ing: KubeObject): string[] {
  const spec = (ing.spec ?? {}) as Json;
  const rules = asList(spec.rules).map((r) => (typeof r.host === 'string' ? r.host : ''));
  const tls = asList(spec.tls).flatMap((t) => (Array.isArray(t.hosts) ? t.hosts.filter((h): h is string => typeof h === 'string') : []));
  return [...new Set([...rules, ...tls].map((h) => h.toLowerCase()))];
}

/** `*.example.com` serves one label in front of example.com (as Ingress defines wildcards), not example.com itself. */
function covers(wildcard: string, name: string): boolean {
  const suffix = wildcard.slice(1);
  const label = name.slice(0, name.length - suffix.length);
  return wildcard.startsWith('*.') && name.endsWith(suffix) && label.length > 0 && !label.includes('.');
}

/** Whether two claimed names reach the same requests: equal, or one a wildcard covering the other. */
export const hostsOverlap = (a: string, b: string): boolean => a === b || covers(a, b) || covers(b, a);

const earlier = (a: KubeObject, b: KubeObject): boolean => {
  const [ta, tb] = [a.metadata.creationTimestamp ?? '', b.metadata.creationTimestamp ?? ''];
  if (ta !== tb) return ta < tb;
  return `${a.metadata.namespace}/${a.metadata.name}` < `${b.metadata.namespace}/${b.metadata.name}`;
};

/**
 * The first host name `ing` claims that an Ingress in another namespace of the host already serves, or
 * undefined. The tenant's Ingresses all live in `hostNamespace`, so its own namespaces may share names.
 * When the tenant's twin exists already (`twin`), only claims older than it count: it came first, and
 * the later one is the one to go, whichever syncer looks first.
 */
export function hostTakenElsewhere(ing: KubeObject, hostNamespace: string, hostIngresses: KubeObject[], twin?: KubeObject): string | undefined {
  const others = hostIngresses.filter((o) => o.metadata.namespace !== hostNamespace && (!twin || earlier(o, twin)));
  const taken = others.flatMap(ingressHosts);
  return ingressHosts(ing).find((h) => taken.some((t) => hostsOverlap(h, t)));
}

/** The refusal, in kube-apiserver's words; it names the host name, never who holds it. */
export const hostTaken = (name: string, host: string): StatusError =>
  new StatusError(
    403,
    'Forbidden',
    `ingresses.networking.k8s.io "${name}" is forbidden: ${host ? `host "${host}"` : 'a rule without a host (every host name)'} is already served by another namespace of the host cluster (first come, first served)`,
    { name, group: 'networking.k8s.io', kind: 'ingresses' },
  );
