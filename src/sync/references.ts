import type { KubeObject } from '../k8s/client.js';
import { podSpecOnHost } from './pod-spec.js';

/** A ConfigMap or Secret that a pod (or an Ingress, for TLS) needs on the host. */
export interface Reference {
  kind: 'ConfigMap' | 'Secret';
  namespace: string;
  name: string;
}

type Json = Record<string, unknown>;
const asList = (v: unknown): Json[] => (Array.isArray(v) ? (v as Json[]) : []);

/**
 * The ConfigMaps and Secrets an object uses, in its own namespace: for a Pod exactly those its host twin
 * names (found by the walk that translates it, pod-spec.ts: volumes of every kind, projected sources,
 * env and envFrom of every container, imagePullSecrets, the tenant's CA in its API access volume
 * kube-api-access-*); for an Ingress its TLS Secrets. Only these are
 * mirrored, so Secrets no pod needs never leave the tenant.
 */
export function referencesOf(kind: string, obj: KubeObject): Reference[] {
  const namespace = obj.metadata.namespace ?? '';
  const found = new Map<string, Reference>();
  const add = (k: Reference['kind'], name: unknown): void => {
    if (typeof name === 'string' && name) found.set(`${k}/${name}`, { kind: k, namespace, name });
  };
  const spec = (obj.spec ?? {}) as Json;
  if (kind === 'Ingress') {
    for (const tls of asList(spec.tls)) add('Secret', tls.secretName);
    return [...found.values()];
  }
  if (kind !== 'Pod') return [];
  // Counted as a pod with API access names them (its kube-root-ca.crt too), whether this tenant's pods
  // have it or not: what an object uses is a property of the object alone.
  podSpecOnHost(spec, (k, name) => {
    if (k === 'ConfigMap' || k === 'Secret') add(k, name);
    return name;
  }, { access: { serviceIP: '' }, namespace, tokenSecret: '' });
  return [...found.values()];
}

/** An object a new pod needs on the host before it: its ServiceAccount, the ConfigMaps and Secrets it uses. */
export interface Prerequisite {
  kind: Reference['kind'] | 'ServiceAccount';
  namespace: string;
  name: string;
}

/**
 * The pod's ServiceAccount (or its deprecated alias, as the host pod's serviceAccountName is made from
 * either): without its twin the host's ServiceAccount admission refuses the pod.
 */
export function serviceAccountOf(pod: KubeObject): Prerequisite[] {
  const spec = pod.spec as { serviceAccountName?: string; serviceAccount?: string } | undefined;
  const name = spec?.serviceAccountName || spec?.serviceAccount;
  return typeof name === 'string' && name ? [{ kind: 'ServiceAccount', namespace: pod.metadata.namespace ?? '', name }] : [];
}

/** What goes to the host before a new pod, so the host admits it and its kubelet finds its volumes. */
export const prerequisitesOf = (pod: KubeObject): Prerequisite[] => [...serviceAccountOf(pod), ...referencesOf('Pod', pod)];

const keyOf = (r: Reference): string => `${r.kind}\u0000${r.namespace}\u0000${r.name}`;

/**
 * Which tenant objects use which ConfigMaps and Secrets, kept from the pod and ingress informers'
 * events, so the syncer answers "is this one needed on the host?" without scanning every pod.
 */
export class Usage {
  private readonly users = new Map<string, Set<string>>();
  private readonly byUser = new Map<string, Reference[]>();

  /** Records what `obj` (of `kind`) uses now; returns the references whose use changed. */
  set(kind: string, obj: KubeObject): Reference[] {
    return this.replace(`${kind}/${obj.metadata.namespace ?? ''}/${obj.metadata.name}`, referencesOf(kind, obj));
  }

  /** Forgets what a deleted object used; returns those references. */
  remove(kind: string, obj: KubeObject): Reference[] {
    return this.replace(`${kind}/${obj.metadata.namespace ?? ''}/${obj.metadata.name}`, []);
  }

  isUsed(kind: Reference['kind'], namespace: string, name: string): boolean {
    return (this.users.get(keyOf({ kind, namespace, name }))?.size ?? 0) > 0;
  }

  private replace(user: string, refs: Reference[]): Reference[] {
    const before = this.byUser.get(user) ?? [];
    const now = new Set(refs.map(keyOf));
    const changed = [...refs.filter((r) => !before.some((b) => keyOf(b) === keyOf(r))), ...before.filter((b) => !now.has(keyOf(b)))];
    for (const b of before) {
      const set = this.users.get(keyOf(b));
      set?.delete(user);
      if (set?.size === 0) this.users.delete(keyOf(b));
    }
    for (const r of refs) {
      const set = this.users.get(keyOf(r)) ?? new Set<string>();
      set.add(user);
      this.users.set(keyOf(r), set);
    }
    if (refs.length) this.byUser.set(user, refs);
    else this.byUser.delete(user);
    return changed;
  }
}
