import type { KubeObject } from '../k8s/client.js';

type Json = Record<string, unknown>;

const names = (containers: unknown): Set<unknown> => new Set(Array.isArray(containers) ? containers.map((c: Json) => c.name) : []);

/**
 * The part of a host pod's status the tenant's pod takes over: what users see in kubectl get pods.
 * Not the QoS class, which the tenant's API server set from the tenant's spec and keeps (the twin's
 * can differ: kplex may add an init container), nor the statuses of containers kplex added.
 */
export function tenantPodStatus(host: KubeObject, tenant: KubeObject): Json {
  const s = (host.status ?? {}) as Json;
  const current = (tenant.status ?? {}) as Json;
  const out: Json = { ...current };
  for (const f of ['phase', 'conditions', 'podIP', 'podIPs', 'hostIP', 'hostIPs', 'startTime', 'containerStatuses', 'message', 'reason']) {
    if (s[f] !== undefined) out[f] = s[f];
  }
  if (Array.isArray(s.initContainerStatuses)) {
    const own = names((tenant.spec as Json | undefined)?.initContainers);
    const statuses = s.initContainerStatuses.filter((c: Json) => own.has(c.name));
    if (statuses.length) out.initContainerStatuses = statuses;
  }
  return out;
}

/** Whether the tenant pod's status differs from what the host says, in the fields the tenant takes over. */
export function statusDiffers(host: KubeObject, tenant: KubeObject): boolean {
  return JSON.stringify(tenantPodStatus(host, tenant)) !== JSON.stringify(tenant.status ?? {});
}

export const nodeNameOf = (pod: KubeObject): string | undefined => (pod.spec as Json | undefined)?.nodeName as string | undefined;
