// The metrics.k8s.io API as a tenant sees it: pure functions that read a request and turn the host's
// metrics into the tenant's names. Nothing a tenant sends reaches the host: host reads are fixed to the
// tenant's host namespace, and the tenant's namespace, name and selectors go to its own API server only.
import type { KubeObject } from '../k8s/client.js';
import { badRequest, notFound, StatusError } from '../k8s/status.js';
import { isDns1123Label, isDns1123Subdomain, pathSegmentProblem } from '../k8s/validation.js';
import { MIRRORED_NODE_LABEL } from '../sync/nodes.js';
import { originOf } from '../sync/translate.js';

export const METRICS_GROUP = 'metrics.k8s.io';
export const METRICS_VERSION = 'v1beta1';
const GROUP_VERSION = `${METRICS_GROUP}/${METRICS_VERSION}`;

export interface ContainerMetrics {
  name: string;
  usage: Record<string, string>;
}

export interface PodMetrics extends KubeObject {
  timestamp?: string;
  window?: string;
  containers?: ContainerMetrics[];
}

export interface NodeMetrics extends KubeObject {
  timestamp?: string;
  window?: string;
  usage?: Record<string, string>;
}

/** What a request to the adapter asks for. Names and namespaces are validated, never passed on raw. */
export type MetricsRequest =
  | { kind: 'discovery'; body: Record<string, unknown> }
  | { kind: 'pods'; namespace?: string; name?: string }
  | { kind: 'nodes'; name?: string };

const group = {
  name: METRICS_GROUP,
  versions: [{ groupVersion: GROUP_VERSION, version: METRICS_VERSION }],
  preferredVersion: { groupVersion: GROUP_VERSION, version: METRICS_VERSION },
};

const resources = {
  kind: 'APIResourceList',
  apiVersion: 'v1',
  groupVersion: GROUP_VERSION,
  resources: [
    { name: 'nodes', singularName: '', namespaced: false, kind: 'NodeMetrics', verbs: ['get', 'list'] },
    { name: 'pods', singularName: '', namespaced: true, kind: 'PodMetrics', verbs: ['get', 'list'] },
  ],
};

function segment(raw: string, what: string, valid: (s: string) => boolean): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    throw badRequest(`${what} "${raw}" is not a valid URL segment`);
  }
  const problem = pathSegmentProblem(decoded);
  if (problem) throw badRequest(`${what} ${problem}`);
  if (!valid(decoded)) throw badRequest(`${what} "${decoded}" is not a valid name`);
  return decoded;
}

const notServed = (path: string): StatusError => new StatusError(404, 'NotFound', `the server could not find the requested resource (${path})`);

/** Reads the path of a request (no query) the tenant's API server forwarded. */
export function parseMetricsPath(path: string): MetricsRequest {
  const parts = path.split('/').filter((p, i) => i > 0 || p !== '');
  if (parts.at(-1) === '') parts.pop();
  if (parts[0] !== 'apis') throw notServed(path);
  if (parts.length === 1) return { kind: 'discovery', body: { kind: 'APIGroupList', apiVersion: 'v1', groups: [group] } };
  if (parts[1] !== METRICS_GROUP) throw notServed(path);
  if (parts.length === 2) return { kind: 'discovery', body: { kind: 'APIGroup', apiVersion: 'v1', ...group } };
  if (parts[2] !== METRICS_VERSION) throw notServed(path);
  const rest = parts.slice(3);
  if (rest.length === 0) return { kind: 'discovery', body: resources };
  if (rest[0] === 'nodes' && rest.length <= 2) return { kind: 'nodes', name: rest[1] === undefined ? undefined : segment(rest[1], 'node name', isDns1123Subdomain) };
  if (rest[0] === 'pods' && rest.length === 1) return { kind: 'pods' };
  if (rest[0] === 'namespaces' && rest.length >= 3 && rest.length <= 4 && rest[2] === 'pods') {
    const namespace = segment(rest[1] ?? '', 'namespace', isDns1123Label);
    return { kind: 'pods', namespace, name: rest[3] === undefined ? undefined : segment(rest[3], 'pod name', isDns1123Subdomain) };
  }
  throw notServed(path);
}

const podKey = (namespace: string, name: string): string => `${namespace}/${name}`;

/**
 * The tenant's pods' metrics: each tenant pod joined with its host twin (found by the twin's origin
 * annotations, which must name this tenant and the pod's uid) and the twin's metrics, under the tenant's
 * names and labels. A pod without a twin or without metrics yet is left out, as metrics-server does.
 */
export function tenantPodMetrics(tenant: string, tenantPods: KubeObject[], hostPods: KubeObject[], hostMetrics: PodMetrics[]): PodMetrics[] {
  const twins = new Map<string, { name: string; uid: string }>();
  for (const pod of hostPods) {
    const origin = originOf(pod);
    if (origin?.tenant !== tenant || !pod.metadata.name) continue;
    twins.set(podKey(origin.namespace, origin.name), { name: pod.metadata.name, uid: origin.uid });
  }
  const metrics = new Map(hostMetrics.map((m) => [m.metadata.name, m]));
  return tenantPods.flatMap((pod) => {
    const { name, namespace, uid } = pod.metadata;
    if (!name || !namespace) return [];
    const twin = twins.get(podKey(namespace, name));
    if (!twin || (twin.uid && uid && twin.uid !== uid)) return [];
    const m = metrics.get(twin.name);
    if (!m) return [];
    return [{
      kind: 'PodMetrics',
      apiVersion: GROUP_VERSION,
      metadata: { name, namespace, labels: pod.metadata.labels, creationTimestamp: m.metadata.creationTimestamp },
      timestamp: m.timestamp,
      window: m.window,
      containers: (m.containers ?? []).map((c) => ({ name: c.name, usage: c.usage })),
    }];
  });
}

/**
 * The metrics of the nodes a tenant sees: the Nodes kplex mirrored into it, and of those only the ones
 * that run one of its pods on the host (a Node a tenant admin makes up names nothing the tenant may read).
 */
export function tenantNodeMetrics(tenant: string, tenantNodes: KubeObject[], hostPods: KubeObject[], hostMetrics: NodeMetrics[]): NodeMetrics[] {
  const used = new Set(hostPods.filter((p) => originOf(p)?.tenant === tenant).map((p) => (p.spec as { nodeName?: string } | undefined)?.nodeName));
  const visible = new Map(tenantNodes.filter((n) => n.metadata.labels?.[MIRRORED_NODE_LABEL] === 'true' && used.has(n.metadata.name)).map((n) => [n.metadata.name, n]));
  return hostMetrics.flatMap((m) => {
    const node = visible.get(m.metadata.name);
    if (!node) return [];
    return [{
      kind: 'NodeMetrics',
      apiVersion: GROUP_VERSION,
      metadata: { name: m.metadata.name, labels: node.metadata.labels, creationTimestamp: m.metadata.creationTimestamp },
      timestamp: m.timestamp,
      window: m.window,
      usage: m.usage,
    }];
  });
}

/** A list, or the one named item (404 in metrics-server's words when there is none). */
export function answer(kind: 'PodMetrics' | 'NodeMetrics', items: KubeObject[], name?: string): Record<string, unknown> {
  if (name === undefined) return { kind: `${kind}List`, apiVersion: GROUP_VERSION, metadata: {}, items };
  const item = items.find((i) => i.metadata.name === name);
  if (!item) throw notFound(kind === 'PodMetrics' ? 'podmetrics.metrics.k8s.io' : 'nodemetrics.metrics.k8s.io', name);
  return item;
}

/** The selectors of a request, passed to the tenant's own API server only; anything else is refused. */
export function listQuery(search: URLSearchParams): { labelSelector?: string; fieldSelector?: string } {
  for (const key of search.keys()) {
    if (!['labelSelector', 'fieldSelector', 'resourceVersion', 'limit', 'timeout'].includes(key)) throw badRequest(`query parameter "${key}" is not supported by ${GROUP_VERSION}`);
  }
  return { labelSelector: search.get('labelSelector') ?? undefined, fieldSelector: search.get('fieldSelector') ?? undefined };
}
