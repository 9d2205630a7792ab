// How a tenant's pods reach its control plane (sync/pod-access.ts says what they get): one host Service
// in the tenant's host namespace, its endpoints where the provider runs the tenant's API server and DNS
// server, and the tenant's own `kubernetes` Service with that Service's address.
import { core, type KubeClient, type KubeObject } from '../k8s/client.js';
import { StatusError } from '../k8s/status.js';
import type { ControlPlaneEndpoint } from '../controlplane/provider.js';

/** The host Service a tenant's pods reach its control plane by (its API server and its DNS server); never a translated name, which all contain "-x-". */
export const CONTROL_PLANE_SERVICE = 'kplex-control-plane';

const CONTROL_PLANE_PORTS = [
  { name: 'https', port: 443, protocol: 'TCP' },
  { name: 'dns', port: 53, protocol: 'UDP' },
  { name: 'dns-tcp', port: 53, protocol: 'TCP' },
] as const;

/**
 * The Service. `pods`: the control plane runs as host pods, which it selects (their ports as targets);
 * otherwise it has no selector, and the controller writes its endpoints (controlPlaneEndpoints).
 */
export function controlPlaneService(ns: string, labels: Record<string, string>, pods?: { selector: Record<string, string>; apiPort: number; dnsPort: number }): KubeObject {
  const target = (name: string, port: number): number => (pods ? (name === 'https' ? pods.apiPort : pods.dnsPort) : port);
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: CONTROL_PLANE_SERVICE, namespace: ns, labels },
    spec: {
      type: 'ClusterIP',
      ...(pods ? { selector: pods.selector } : {}),
      ports: CONTROL_PLANE_PORTS.map((p) => ({ ...p, targetPort: target(p.name, p.port) })),
    },
  };
}

/** Its endpoints: where the provider runs the tenant's API server and DNS server, on the pod network. */
export function controlPlaneEndpoints(ns: string, labels: Record<string, string>, at: NonNullable<ControlPlaneEndpoint['forPods']>): KubeObject {
  const port = { https: at.apiPort, dns: at.dnsPort, 'dns-tcp': at.dnsPort };
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: CONTROL_PLANE_SERVICE,
      namespace: ns,
      labels: { ...labels, 'kubernetes.io/service-name': CONTROL_PLANE_SERVICE, 'endpointslice.kubernetes.io/managed-by': 'kplex.dev' },
    },
    addressType: 'IPv4',
    endpoints: [{ addresses: [at.address], conditions: { ready: true } }],
    ports: CONTROL_PLANE_PORTS.map((p) => ({ name: p.name, protocol: p.protocol, port: port[p.name] })),
  } as KubeObject;
}

/**
 * The tenant's `kubernetes` Service with the address its pods reach the API server at. Its API server
 * made it with the first address of the range (the host's own API server's), and keeps it as it finds
 * it: so it is made again once, with the Service address. Between the delete and the create the API
 * server may make it again first; then again.
 */
export async function pointKubernetesServiceAt(tenant: KubeClient, ip: string, apiPort: number): Promise<void> {
  const ref = core('services', 'default', 'kubernetes');
  for (let attempt = 0; attempt < 5; attempt++) {
    const svc = await tenant.find(ref);
    const spec = (svc?.spec ?? {}) as { clusterIP?: string };
    if (spec.clusterIP === ip) return;
    if (svc) await tenant.delete(ref, { uid: svc.metadata.uid });
    try {
      await tenant.create(core('services', 'default'), {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'kubernetes', namespace: 'default', labels: { component: 'apiserver', provider: 'kubernetes' } },
        spec: { type: 'ClusterIP', clusterIP: ip, clusterIPs: [ip], sessionAffinity: 'None', ports: [{ name: 'https', port: 443, protocol: 'TCP', targetPort: apiPort }] },
      });
      return;
    } catch (err) {
      if (!(err instanceof StatusError && err.code === 409)) throw err;
    }
  }
  throw new Error(`the tenant's kubernetes Service could not be given the address ${ip}: its API server kept making it again first`);
}
