import type { KubeObject } from '../k8s/client.js';

type Json = Record<string, unknown>;

/** The part of a host pod's status the tenant's pod takes over: what users see in kubectl get pods. */
export function tenantPodStatus(host: KubeObject, tenant: KubeObject): Json {
  const s = (host.status ?? {}) as Json;
  const current = (tenant.status ?? {}) as Json;
  const out: Json = { ...current };
  for (const f of ['phase', 'conditions', 'podIP', 'podIPs', 'hostIP', 'hostIPs', 'startTime', 'containerStatuses', 'initContainerStatuses', 'message', 'reason', 'qosClass']) {
    if (s[f] !== undefined) out[f] = s[f];
  }
  return out;
}

/** Whether the tenant pod's status differs from what the host says, in the fields the tenant takes over. */
export function statusDiffers(host: KubeObject, tenant: KubeObject): boolean {
  return JSON.stringify(tenantPodStatus(host, tenant)) !== JSON.stringify(tenant.status ?? {});
}

export const nodeNameOf = (pod: KubeObject): string | undefined => (pod.spec as Json | undefined)?.nodeName as string | undefined;
