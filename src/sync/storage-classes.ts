import type { KubeObject } from '../k8s/client.js';
import { classAction, tenantClass, type HostClassKind } from './host-classes.js';

/** Marks a tenant StorageClass that shows a host class (sync.storageClasses.enabled). */
export const MIRRORED_STORAGE_CLASS_LABEL = 'kplex.dev/host-storage-class';

/**
 * The host's StorageClasses in a tenant: a tenant claim of class `standard` is provisioned by the
 * host's `standard`. All of a class but its metadata and `allowVolumeExpansion` is immutable; the
 * tenant sees whether it is the default (its claims without a class get it).
 */
export const STORAGE_CLASS: HostClassKind = {
  kind: 'StorageClass',
  apiVersion: 'storage.k8s.io/v1',
  ref: { group: 'storage.k8s.io', version: 'v1', resource: 'storageclasses' },
  fields: ['provisioner', 'parameters', 'reclaimPolicy', 'mountOptions', 'allowVolumeExpansion', 'volumeBindingMode', 'allowedTopologies'],
  mutable: ['allowVolumeExpansion'],
  annotations: ['storageclass.kubernetes.io/is-default-class', 'storageclass.beta.kubernetes.io/is-default-class'],
  label: MIRRORED_STORAGE_CLASS_LABEL,
};

export const tenantStorageClass = (host: KubeObject): KubeObject => tenantClass(STORAGE_CLASS, host);
export const storageClassAction = (tenant: KubeObject | undefined, desired: KubeObject) => classAction(STORAGE_CLASS, tenant, desired);
