// How a tenant pod's scheduling constraints read on the host. All of a tenant's twins live in one host
// namespace, `kplex-NAME`, with their labels translated (translate.ts: every tenant key prefixed and
// hashed, plus the tenant and tenant-namespace labels), so a constraint that selects pods is only right
// once its selector is written in those labels and scoped to the tenant and the namespaces it meant:
// pod (anti-)affinity terms and topology spread constraints. What selects nodes (nodeSelector, node
// affinity, tolerations, topology keys) names host node labels and taints, which are what the tenant
// sees of its nodes, so it stays as it is. Pure: the Translator gives the labels, the Pod kind's
// `beforeApply` (kinds.ts) the tenant's namespaces.

import type { KubeObject } from '../k8s/client.js';
import { hostLabelKey } from './names.js';

type Json = Record<string, unknown>;
const clone = <T>(o: T): T => structuredClone(o);
const asList = (v: unknown): Json[] => (Array.isArray(v) ? (v as Json[]) : []);
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

export interface Requirement {
  key: string;
  operator: string;
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: Requirement[];
}

/** The labels by which a tenant's twins are told apart on the host (the Translator's). */
export interface TwinLabels {
  /** Carried by every twin of the tenant, and by no other host object in its namespace but its own. */
  readonly tenant: Record<string, string>;
  /** The label that names a twin's tenant namespace, and its value for a namespace. */
  readonly namespaceKey: string;
  namespaceValue(namespace: string): string;
}

/** The label every namespace has, set by the API server to the namespace's name (and immutable). */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

/** Whether a label selector selects an object with these labels (Kubernetes' rules; null selects nothing). */
export function selects(sel: LabelSelector | null | undefined, labels: Record<string, string> = {}): boolean {
  if (!sel) return false;
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (labels[k] !== v) return false;
  return (sel.matchExpressions ?? []).every((r) => {
    const has = Object.hasOwn(labels, r.key);
    switch (r.operator) {
      case 'In': return has && (r.values ?? []).includes(labels[r.key]!);
      case 'NotIn': return !has || !(r.values ?? []).includes(labels[r.key]!);
      case 'Exists': return has;
      case 'DoesNotExist': return !has;
      // An operator the API server does not know never passed its validation; selecting nothing is the safe reading.
      default: return false;
    }
  });
}

const requirementsOf = (sel: LabelSelector): number => Object.keys(sel.matchLabels ?? {}).length + (sel.matchExpressions ?? []).length;

/**
 * The tenant namespaces a namespace selector names without looking at namespaces: all of them (`{}`),
 * or a set of names when it only asks for `kubernetes.io/metadata.name` with `In` (or matchLabels), or
 * with `DoesNotExist` (none: every namespace has that label). Undefined when it asks anything else, which
 * only the tenant's namespaces can answer (resolveNamespaceSelectors).
 */
export function namespacesNamedBy(sel: LabelSelector): 'all' | string[] | undefined {
  if (requirementsOf(sel) === 0) return 'all';
  let names: Set<string> | undefined;
  const narrow = (values: readonly string[]) => (names = new Set(names ? values.filter((v) => names!.has(v)) : values));
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) {
    if (k !== NAMESPACE_NAME_LABEL) return undefined;
    narrow([v]);
  }
  for (const r of sel.matchExpressions ?? []) {
    if (r.key !== NAMESPACE_NAME_LABEL) return undefined;
    if (r.operator === 'DoesNotExist') narrow([]);
    else if (r.operator === 'In') narrow(r.values ?? []);
    else return undefined;
  }
  return [...names!].sort();
}

/** The pod (anti-)affinity terms of a pod spec, required and preferred, wherever they sit. */
function affinityTerms(spec: Json): Json[] {
  const affinity = isObject(spec.affinity) ? spec.affinity : {};
  return ['podAffinity', 'podAntiAffinity'].flatMap((kind) => {
    const a = isObject(affinity[kind]) ? affinity[kind] : {};
    return [
      ...asList(a.requiredDuringSchedulingIgnoredDuringExecution),
      ...asList(a.preferredDuringSchedulingIgnoredDuringExecution).flatMap((w) => (isObject(w.podAffinityTerm) ? [w.podAffinityTerm] : [])),
    ];
  });
}

const unresolved = (term: Json): boolean => isObject(term.namespaceSelector) && namespacesNamedBy(term.namespaceSelector as LabelSelector) === undefined;

/** Whether translating this pod needs the tenant's namespaces: a namespace selector that asks for their labels. */
export const needsNamespaces = (pod: KubeObject): boolean => affinityTerms((pod.spec ?? {}) as Json).some(unresolved);

/**
 * The pod with each namespace selector that asks for namespace labels replaced by the names of the
 * tenant namespaces it selects now, as `kubernetes.io/metadata.name In (...)`: what it means at this
 * moment, in a form the translation reads without the namespaces (namespacesNamedBy).
 *
 * The host has no tenant namespaces, so this is the only correct reading its scheduler can be given,
 * and it is taken once: a twin's spec cannot change. So a namespace labelled later, or one created
 * later with matching labels, is not counted by pods already mirrored (a tenant's own scheduler would
 * count it for pods still to be scheduled and for the anti-affinity of running pods), and a namespace
 * that loses the label still is; pods made after the change (a rollout, a new replica) read the new
 * labels. A selector `{}` (every namespace of the tenant, future ones too) and one by name need no
 * namespaces and stay exact.
 */
export function resolveNamespaceSelectors(pod: KubeObject, namespaces: readonly KubeObject[]): KubeObject {
  if (!needsNamespaces(pod)) return pod;
  const out = clone(pod);
  for (const term of affinityTerms((out.spec ?? {}) as Json)) {
    if (!unresolved(term)) continue;
    const names = namespaces.filter((n) => selects(term.namespaceSelector as LabelSelector, n.metadata.labels)).map((n) => n.metadata.name!).sort();
    term.namespaceSelector = { matchExpressions: [names.length ? { key: NAMESPACE_NAME_LABEL, operator: 'In', values: names } : { key: NAMESPACE_NAME_LABEL, operator: 'DoesNotExist' }] };
  }
  return out;
}

/**
 * `matchLabelKeys` and `mismatchLabelKeys` as the API server merges them into the selector when it
 * stores a pod (`key In (value)`, `key NotIn (value)` with the pod's own value; a key the pod has no
 * label for adds nothing), unless the tenant's API server already did. The host gets only the merged
 * selector: asked to merge again, it would find each key twice and refuse the pod.
 */
function withLabelKeys(sel: LabelSelector, podLabels: Record<string, string>, match: unknown, mismatch: unknown): LabelSelector {
  const out: LabelSelector = { matchLabels: { ...(sel.matchLabels ?? {}) }, matchExpressions: [...(sel.matchExpressions ?? [])] };
  const add = (keys: unknown, operator: 'In' | 'NotIn') => {
    for (const key of Array.isArray(keys) ? (keys as unknown[]) : []) {
      if (typeof key !== 'string' || !Object.hasOwn(podLabels, key)) continue;
      const value = podLabels[key]!;
      const merged = out.matchExpressions!.some((r) => r.key === key && r.operator === operator && r.values?.length === 1 && r.values[0] === value);
      if (!merged) out.matchExpressions!.push({ key, operator, values: [value] });
    }
  };
  add(match, 'In');
  add(mismatch, 'NotIn');
  return out;
}

/**
 * A tenant selector over pods as a host selector over twins: every key translated, then the tenant's
 * label and the tenant namespaces it may count (`'all'`, or a list: none matches nothing). The scoping
 * labels are set last and no translated key can be one of them (they all start `kplex.dev/l-`), so no
 * tenant selector reaches another tenant's pods or a host pod that is not a twin.
 */
function hostSelector(sel: LabelSelector, namespaces: 'all' | readonly string[], labels: TwinLabels): LabelSelector {
  const matchLabels: Record<string, string> = {};
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) matchLabels[hostLabelKey(k)] = v;
  const matchExpressions: Requirement[] = (sel.matchExpressions ?? []).map((r) => ({ key: hostLabelKey(r.key), operator: r.operator, ...(r.values ? { values: [...r.values] } : {}) }));
  Object.assign(matchLabels, labels.tenant);
  const values = namespaces === 'all' ? [] : [...new Set(namespaces.map((n) => labels.namespaceValue(n)))].sort();
  if (namespaces === 'all') matchExpressions.push({ key: labels.namespaceKey, operator: 'Exists' });
  else if (values.length === 1) matchLabels[labels.namespaceKey] = values[0]!;
  // `In` needs a value; no twin has an empty namespace label, so "" selects none of them.
  else matchExpressions.push({ key: labels.namespaceKey, operator: 'In', values: values.length ? values : [''] });
  return matchExpressions.length ? { matchLabels, matchExpressions } : { matchLabels };
}

/** The tenant namespaces a pod (anti-)affinity term counts pods in, by Kubernetes' rules for `namespaces` and `namespaceSelector`. */
function termNamespaces(term: Json, podNamespace: string): 'all' | string[] {
  const listed = Array.isArray(term.namespaces) ? (term.namespaces as unknown[]).filter((n): n is string => typeof n === 'string') : [];
  if (!isObject(term.namespaceSelector)) return listed.length ? listed : [podNamespace];
  // One the tenant's namespaces were not asked about (resolveNamespaceSelectors) selects none: fail closed.
  const selected = namespacesNamedBy(term.namespaceSelector as LabelSelector) ?? [];
  return selected === 'all' ? 'all' : [...new Set([...listed, ...selected])];
}

/**
 * A pod (anti-)affinity term on the host: its selector over twins, in the pod's own host namespace (so
 * `namespaces` and `namespaceSelector` go: the twins' namespace label says which tenant namespace a
 * twin is in), the label keys merged. A term without a selector selects no pod and stays so.
 */
function termOnHost(term: Json, podNamespace: string, podLabels: Record<string, string>, labels: TwinLabels): Json {
  const out: Json = {};
  if (typeof term.topologyKey === 'string') out.topologyKey = term.topologyKey;
  if (!isObject(term.labelSelector)) return out;
  const sel = withLabelKeys(term.labelSelector as LabelSelector, podLabels, term.matchLabelKeys, term.mismatchLabelKeys);
  out.labelSelector = hostSelector(sel, termNamespaces(term, podNamespace), labels);
  return out;
}

function podAffinityOnHost(a: unknown, podNamespace: string, podLabels: Record<string, string>, labels: TwinLabels): Json | undefined {
  if (!isObject(a)) return undefined;
  const out: Json = {};
  if (a.requiredDuringSchedulingIgnoredDuringExecution !== undefined) {
    out.requiredDuringSchedulingIgnoredDuringExecution = asList(a.requiredDuringSchedulingIgnoredDuringExecution).map((t) => termOnHost(t, podNamespace, podLabels, labels));
  }
  if (a.preferredDuringSchedulingIgnoredDuringExecution !== undefined) {
    out.preferredDuringSchedulingIgnoredDuringExecution = asList(a.preferredDuringSchedulingIgnoredDuringExecution).map((w) => ({
      weight: w.weight,
      podAffinityTerm: termOnHost(isObject(w.podAffinityTerm) ? w.podAffinityTerm : {}, podNamespace, podLabels, labels),
    }));
  }
  return out;
}

/** Fields of a v1 TopologySpreadConstraint kept as they are; the selector is translated, others are left out. */
const SPREAD_FIELDS = ['maxSkew', 'topologyKey', 'whenUnsatisfiable', 'minDomains', 'nodeAffinityPolicy', 'nodeTaintsPolicy'];

/**
 * A topology spread constraint on the host: it counts pods of the pod's own namespace, so its selector
 * is scoped to the pod's tenant namespace, its label keys merged. Without a selector it counts none.
 */
function spreadOnHost(c: Json, podNamespace: string, podLabels: Record<string, string>, labels: TwinLabels): Json {
  const out: Json = {};
  for (const key of SPREAD_FIELDS) if (c[key] !== undefined) out[key] = clone(c[key]);
  if (isObject(c.labelSelector)) out.labelSelector = hostSelector(withLabelKeys(c.labelSelector as LabelSelector, podLabels, c.matchLabelKeys, undefined), [podNamespace], labels);
  return out;
}

/**
 * A tenant pod's affinity and topology spread constraints as its twin's: node affinity as it is, pod
 * (anti-)affinity and spread constraints over the tenant's twins only (see above). Fields it does not
 * return are not in the twin.
 */
export function schedulingOnHost(spec: Json, podNamespace: string, podLabels: Record<string, string>, labels: TwinLabels): { affinity?: Json; topologySpreadConstraints?: Json[] } {
  const out: { affinity?: Json; topologySpreadConstraints?: Json[] } = {};
  if (isObject(spec.affinity)) {
    const affinity: Json = {};
    if (isObject(spec.affinity.nodeAffinity)) affinity.nodeAffinity = clone(spec.affinity.nodeAffinity);
    const pod = podAffinityOnHost(spec.affinity.podAffinity, podNamespace, podLabels, labels);
    if (pod) affinity.podAffinity = pod;
    const anti = podAffinityOnHost(spec.affinity.podAntiAffinity, podNamespace, podLabels, labels);
    if (anti) affinity.podAntiAffinity = anti;
    if (Object.keys(affinity).length) out.affinity = affinity;
  }
  if (spec.topologySpreadConstraints !== undefined) out.topologySpreadConstraints = asList(spec.topologySpreadConstraints).map((c) => spreadOnHost(c, podNamespace, podLabels, labels));
  return out;
}

/** Kubernetes reserves this prefix for its own priority classes, with which the host's critical components preempt. */
const SYSTEM_PRIORITY_PREFIX = 'system-';

/**
 * Whether a tenant pod keeps its priorityClassName on the host: only when the host has a PriorityClass of
 * that name (the host's value and preemption policy then apply, not the tenant's), and never a `system-`
 * one, which would let a tenant's pods preempt the host's own critical pods and every other tenant's.
 * Otherwise the name is left out, the pod runs at the host's default priority, and the tenant is told
 * why (through the gateway kubectl prints it; a pod the syncer mirrors gets a Warning event). Left out
 * rather than refused: the pod still runs, as it does in the tenant's eyes, only without a precedence
 * it cannot have on the host.
 */
export function priorityClassOnHost(name: string, hostHasClass: boolean): { keep: true } | { keep: false; why: string } {
  if (name.startsWith(SYSTEM_PRIORITY_PREFIX)) {
    return { keep: false, why: `priorityClassName "${name}" left out on the host: system- priority classes are the host cluster's own; the pod runs at the host's default priority` };
  }
  if (!hostHasClass) return { keep: false, why: `priorityClassName "${name}" left out on the host: the host cluster has no PriorityClass of that name; the pod runs at the host's default priority` };
  return { keep: true };
}

/** The PriorityClass a tenant pod names, if any. */
export const priorityClassOf = (pod: KubeObject): string | undefined => {
  const name = (pod.spec as Json | undefined)?.priorityClassName;
  return typeof name === 'string' && name ? name : undefined;
};

/** The pod without its priorityClassName (priorityClassOnHost said no). */
export function withoutPriorityClass(pod: KubeObject): KubeObject {
  const { priorityClassName: _name, ...spec } = (pod.spec ?? {}) as Json;
  return { ...pod, spec };
}
