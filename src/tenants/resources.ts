import type { KubeObject, ResourceRef } from '../k8s/client.js';
import type { TenantValues } from './values.js';
import type { CertificateStatus } from '../controlplane/provider.js';

export const GROUP = 'kplex.dev';
export const VERSION = 'v1alpha1';
export const FINALIZER = 'kplex.dev/teardown';
export const FIELD_MANAGER = 'kplex';

export const LABELS = {
  tenant: 'kplex.dev/tenant',
  managedBy: 'app.kubernetes.io/managed-by',
  kubeconfig: 'kplex.dev/kubeconfig',
  policy: 'kplex.dev/policy',
} as const;

export const ANNOTATIONS = {
  keepNamespace: 'kplex.dev/keep-namespace',
  /** An RFC 3339 time set by `kplex certs rotate`: leaf certificates issued before it are made again. */
  rotateCertificates: 'kplex.dev/rotate-certificates',
  /** When a gateway last served a request for the tenant (RFC 3339), for sleep.afterInactivity (src/tenants/sleep.ts). */
  lastActive: 'kplex.dev/last-active',
} as const;

export const tenantsRef = (name?: string): ResourceRef => ({ group: GROUP, version: VERSION, resource: 'tenants', name });

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
}

/**
 * Where a tenant's pods reach its control plane: one host Service address, for its API server (443,
 * what `kubernetes.default.svc` is in the tenant) and its DNS server (53).
 */
export interface PodAccess {
  serviceIP: string;
}

export interface Tenant extends KubeObject {
  /** `asleep`: the control plane is to be stopped (kplex sleep, sleep.afterInactivity) until woken. */
  spec: { values: TenantValues; asleep?: boolean };
  status?: {
    phase?: 'Pending' | 'Ready' | 'Failed' | 'Deleting' | 'Sleeping';
    /** With phase Sleeping: since when (RFC 3339). */
    sleepingSince?: string;
    namespace?: string;
    observedGeneration?: number;
    conditions?: Condition[];
    controlPlaneReadyMs?: number;
    /** Where the tenant's pods reach its API server (443) and DNS (53): a host Service address. */
    podAccess?: PodAccess;
    /** The control plane's certificates and when they expire, as of the last reconcile. */
    certificates?: CertificateStatus[];
    /** The provider that runs its control plane (and holds its data), once it was Ready. */
    provider?: string;
    /** How many API servers and store members it was made with, once it was Ready. */
    controlPlaneReplicas?: number;
  };
}

export const readyCondition = (t: Tenant): Condition | undefined => t.status?.conditions?.find((c) => c.type === 'Ready');

/**
 * The Tenant `kplex create` writes. `asleep`: registered with its control plane never started, as a
 * tenant put to sleep is: the first request through a gateway (or `kplex wake`) starts it. Left out
 * otherwise, so an awake tenant's spec is the same whether or not it was ever asleep.
 */
export const newTenant = (name: string, values: TenantValues, o: { asleep?: boolean } = {}): Tenant => ({
  apiVersion: `${GROUP}/${VERSION}`,
  kind: 'Tenant',
  metadata: { name },
  spec: { values, ...(o.asleep ? { asleep: true } : {}) },
});

/** The Tenant CRD: desired state in spec.values, the controller's report in status. */
export const tenantCRD: KubeObject = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: `tenants.${GROUP}` },
  spec: {
    group: GROUP,
    scope: 'Cluster',
    names: { plural: 'tenants', singular: 'tenant', kind: 'Tenant', shortNames: ['vc'] },
    versions: [
      {
        name: VERSION,
        served: true,
        storage: true,
        subresources: { status: {} },
        additionalPrinterColumns: [
          { name: 'Status', type: 'string', jsonPath: '.status.phase' },
          { name: 'Namespace', type: 'string', jsonPath: '.status.namespace' },
          { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
        ],
        schema: {
          openAPIV3Schema: {
            type: 'object',
            properties: {
              spec: {
                type: 'object',
                properties: {
                  values: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
                  asleep: { type: 'boolean' },
                },
              },
              status: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
            },
          },
        },
      },
    ],
  },
};
