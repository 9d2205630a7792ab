import type { KubeObject, ResourceRef } from '../k8s/client.js';
import type { TenantValues } from '../tenants/values.js';
import type { Translator } from './translate.js';

/** One kind of low-level object that is mirrored from the tenant to the host. */
export interface MirroredKind {
  kind: string;
  /** The collection, without namespace or name. */
  ref: ResourceRef;
  toHost(t: Translator, obj: KubeObject): KubeObject;
  /** Objects never mirrored, e.g. the tenant's own API server Service. */
  skip?(obj: KubeObject): boolean;
  /** Mirrored only while a tenant pod (or Ingress) uses it: ConfigMaps and Secrets (references.ts). */
  onlyWhenUsed?: boolean;
}

const core = (resource: string): ResourceRef => ({ group: '', version: 'v1', resource });

/** The one table of mirrored kinds; ingresses and network policies when the tenant's values enable them. */
export function mirroredKinds(values: TenantValues): MirroredKind[] {
  const kinds: MirroredKind[] = [
    { kind: 'ConfigMap', ref: core('configmaps'), toHost: (t, o) => t.configMap(o), onlyWhenUsed: true },
    { kind: 'Secret', ref: core('secrets'), toHost: (t, o) => t.secret(o), onlyWhenUsed: true },
    { kind: 'ServiceAccount', ref: core('serviceaccounts'), toHost: (t, o) => t.serviceAccount(o) },
    { kind: 'PersistentVolumeClaim', ref: core('persistentvolumeclaims'), toHost: (t, o) => t.persistentVolumeClaim(o) },
    {
      kind: 'Service',
      ref: core('services'),
      toHost: (t, o) => t.service(o, values.sync.services.externalIPs.allowedCIDRs),
      // The tenant's "kubernetes" Service points at its own API server, not at anything on the host.
      skip: (o) => o.metadata.namespace === 'default' && o.metadata.name === 'kubernetes',
    },
    {
      kind: 'Endpoints',
      ref: core('endpoints'),
      toHost: (t, o) => t.endpoints(o),
      // Endpoints the tenant's endpoints controller keeps for Services with selectors (it labels them)
      // are computed by the host for the translated selector instead.
      skip: (o) => o.metadata.labels?.['endpoints.kubernetes.io/managed-by'] === 'endpoint-controller' || (o.metadata.namespace === 'default' && o.metadata.name === 'kubernetes'),
    },
    { kind: 'Pod', ref: core('pods'), toHost: (t, o) => t.pod(o) },
  ];
  if (values.sync.ingresses.enabled) {
    kinds.push({ kind: 'Ingress', ref: { group: 'networking.k8s.io', version: 'v1', resource: 'ingresses' }, toHost: (t, o) => t.ingress(o) });
  }
  if (values.sync.networkPolicies.enabled) {
    kinds.push({ kind: 'NetworkPolicy', ref: { group: 'networking.k8s.io', version: 'v1', resource: 'networkpolicies' }, toHost: (t, o) => t.networkPolicy(o) });
  }
  return kinds;
}

/** The kind a request's resource names, if it is mirrored (for the gateway's inline mirror). */
export const kindOfResource = (kinds: MirroredKind[], group: string, resource: string): MirroredKind | undefined =>
  kinds.find((k) => k.ref.group === group && k.ref.resource === resource);
