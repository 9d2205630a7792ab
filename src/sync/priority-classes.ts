import type { HostClassKind } from './host-classes.js';

/**
 * The host's PriorityClasses in a tenant (sync.priorityClasses.enabled): a tenant pod names one by
 * name, and its twin gets the host's class of that name (pod-scheduling.ts keeps only those the host
 * has). The `system-` classes are every API server's own, the tenant's included.
 */
export const PRIORITY_CLASS: HostClassKind = {
  kind: 'PriorityClass',
  apiVersion: 'scheduling.k8s.io/v1',
  ref: { group: 'scheduling.k8s.io', version: 'v1', resource: 'priorityclasses' },
  fields: ['value', 'globalDefault', 'description', 'preemptionPolicy'],
  mutable: ['globalDefault', 'description'],
  annotations: [],
  label: 'kplex.dev/host-priority-class',
  hidden: (name) => name.startsWith('system-'),
};
