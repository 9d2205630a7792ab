/** A tenant's name: a DNS label short enough that its host namespace `kplex-<name>` is one too. */
export const MAX_TENANT_NAME = 63 - 'kplex-'.length;

const RESERVED = new Set(['system', 'host', 'default', 'kube-system', 'kube-public', 'kube-node-lease', 'kplex']);

export class InvalidNameError extends Error {}

export function validateTenantName(name: string): string {
  if (!name) throw new InvalidNameError('a tenant name is required');
  if (name.length > MAX_TENANT_NAME) throw new InvalidNameError(`tenant name "${name}" is longer than ${MAX_TENANT_NAME} characters`);
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name)) {
    throw new InvalidNameError(`tenant name "${name}" is not a DNS label: use lower-case letters, digits and '-', starting and ending with a letter or digit`);
  }
  if (RESERVED.has(name) || name.startsWith('kube-')) throw new InvalidNameError(`tenant name "${name}" is reserved`);
  return name;
}

export const hostNamespace = (tenant: string): string => `kplex-${tenant}`;
export const kubeconfigSecretName = (tenant: string): string => `vc-${tenant}`;
export const contextName = (tenant: string): string => `kplex_${tenant}`;

/** Where kplex's own host objects live: signing keys, the gateway's published endpoint, leases. */
export const SYSTEM_NAMESPACE = 'kplex-system';

/**
 * kplex's own Service in a tenant's kube-system: its endpoint is kplex's metrics adapter (outside the
 * tenant's pods), so the syncer leaves it in the tenant.
 */
export const TENANT_METRICS_SERVICE = 'kplex-metrics';
