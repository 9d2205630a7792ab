// One ClusterIP for a Service on both sides. Pure; the kinds table (kinds.ts) applies it for the
// gateway's inline mirror and the syncer alike.
//
// Both sides allocate from one range, but the tenant's allocator knows nothing of the host's other
// Services, so the host's allocation decides:
// - a Service written through the gateway is made on the host first, and the tenant stores the IP the
//   host chose (`adoptClusterIP`);
// - any other twin asks for the tenant's IP; when the host will not give that one (taken), the host
//   chooses (`withoutClusterIP`), and the tenant's Service is made again with the host's;
// - a twin keeps its IP (the host keeps it immutable), so an update asks for the twin's;
// - the twin of an earlier Service of that name, with another IP, is replaced.
import type { KubeObject } from '../k8s/client.js';
import { ORIGIN } from './translate.js';

type ServiceSpec = { type?: string; clusterIP?: string; clusterIPs?: string[] };
const specOf = (svc: KubeObject | undefined): ServiceSpec => (svc?.spec ?? {}) as ServiceSpec;

/** The address a Service has: not a headless one ("None"), not an ExternalName (none). */
export function clusterIPOf(svc: KubeObject | undefined): string | undefined {
  const ip = specOf(svc).clusterIP;
  return ip && ip !== 'None' ? ip : undefined;
}

/** Whether a twin was made from this very tenant object (its origin uid), not from an earlier one of the same name. */
export const sameOrigin = (origin: KubeObject, twin: KubeObject): boolean =>
  !!origin.metadata.uid && twin.metadata.annotations?.[ORIGIN.uid] === origin.metadata.uid;

function withIP(svc: KubeObject, ip: string | undefined): KubeObject {
  const spec: Record<string, unknown> = { ...specOf(svc) };
  if (ip) Object.assign(spec, { clusterIP: ip, clusterIPs: [ip] });
  else {
    delete spec.clusterIP;
    delete spec.clusterIPs;
  }
  return { ...svc, spec };
}

export type IPAgreement = 'agree' | 'tenant takes the twin IP' | 'replace the twin';

/** How a tenant Service and its existing twin stand on their ClusterIPs. */
export function compareClusterIPs(origin: KubeObject, twin: KubeObject): IPAgreement {
  const [mine, theirs] = [specOf(origin).clusterIP, specOf(twin).clusterIP];
  // No IP on one side (an ExternalName, or a type changing to or from one): the host converts the twin.
  if (!mine || !theirs || mine === theirs) return 'agree';
  // Only an IP the host chose after refusing the tenant's (never "None") is the tenant's to take.
  if (sameOrigin(origin, twin) && mine !== 'None' && theirs !== 'None') return 'tenant takes the twin IP';
  return 'replace the twin';
}

/** The tenant Service as the twin is written from it: with the twin's IP when the twin keeps one of its own. */
export const keepTwinIP = (origin: KubeObject, twin: KubeObject | undefined): KubeObject =>
  twin && compareClusterIPs(origin, twin) === 'tenant takes the twin IP' ? withIP(origin, clusterIPOf(twin)) : origin;

/** A twin that asked for an IP the host will not give, asking for none instead (the host chooses); undefined when it asked for none. */
export const withoutClusterIP = (twin: KubeObject): KubeObject | undefined => (clusterIPOf(twin) ? withIP(twin, undefined) : undefined);

/** Whether a new Service has an IP for the host to choose first: not a headless one, not an ExternalName. */
export const allocatesClusterIP = (svc: KubeObject): boolean => specOf(svc).clusterIP !== 'None' && specOf(svc).type !== 'ExternalName';

/** A new Service as the tenant is asked to store it: with the IP its twin, made first, was given. */
export const adoptClusterIP = (svc: KubeObject, twin: KubeObject): KubeObject => {
  const ip = clusterIPOf(twin);
  return ip ? withIP(svc, ip) : svc;
};

/** The tenant Service made again with the twin's IP (a ClusterIP cannot change in place). */
export function remadeWithTwinIP(svc: KubeObject, twin: KubeObject): KubeObject {
  const { resourceVersion: _rv, uid: _uid, creationTimestamp: _ct, managedFields: _mf, ...metadata } = svc.metadata;
  return withIP({ apiVersion: 'v1', kind: 'Service', metadata, spec: svc.spec }, clusterIPOf(twin));
}

/** What a dry run asks the host about: no ClusterIP (a dry run's is a placeholder, the range's first address, refused before quota is checked). */
export const dryRunService = (twin: KubeObject): KubeObject => (specOf(twin).clusterIP === 'None' ? twin : withIP(twin, undefined));
