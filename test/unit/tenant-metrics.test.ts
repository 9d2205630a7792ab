import { describe, expect, it } from 'vitest';
import type { KubeObject } from '../../src/k8s/client.js';
import { StatusError } from '../../src/k8s/status.js';
import { answer, listQuery, parseMetricsPath, tenantNodeMetrics, tenantPodMetrics, type NodeMetrics, type PodMetrics } from '../../src/metrics/tenant-metrics.js';
import { Translator } from '../../src/sync/translate.js';

const tenantPod = (namespace: string, name: string, uid: string, labels: Record<string, string> = {}): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace, uid, labels },
  spec: { containers: [{ name: 'main', image: 'busybox' }] },
});
/** The host twin the syncer makes, with its origin annotations, running on `node`. */
const twinOf = (tenant: string, pod: KubeObject, node = 'real-0'): KubeObject => {
  const twin = new Translator(tenant).pod(pod);
  return { ...twin, spec: { ...(twin.spec as object), nodeName: node } };
};
const podMetrics = (hostName: string, cpu = '1000n'): PodMetrics => ({
  metadata: { name: hostName, namespace: 'ignored', labels: { twin: 'label' }, creationTimestamp: '2026-01-01T00:00:00Z' },
  timestamp: '2026-01-01T00:00:00Z',
  window: '15s',
  containers: [{ name: 'main', usage: { cpu, memory: '1Mi' } }],
});
const nodeMetrics = (name: string): NodeMetrics => ({ metadata: { name }, timestamp: 't', window: '15s', usage: { cpu: '1', memory: '1Gi' } });
const mirroredNode = (name: string): KubeObject => ({ metadata: { name, labels: { 'kplex.dev/host-node': 'true' } } });

const refused = (f: () => unknown, code: number): void => {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(StatusError);
    expect((err as StatusError).code).toBe(code);
    return;
  }
  throw new Error('not refused');
};

describe('parseMetricsPath', () => {
  it('reads the metrics.k8s.io paths kubectl top and the HPA controller ask for', () => {
    expect(parseMetricsPath('/apis/metrics.k8s.io/v1beta1/pods')).toEqual({ kind: 'pods' });
    expect(parseMetricsPath('/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods')).toEqual({ kind: 'pods', namespace: 'shop', name: undefined });
    expect(parseMetricsPath('/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods/web-1')).toEqual({ kind: 'pods', namespace: 'shop', name: 'web-1' });
    expect(parseMetricsPath('/apis/metrics.k8s.io/v1beta1/nodes')).toEqual({ kind: 'nodes', name: undefined });
    expect(parseMetricsPath('/apis/metrics.k8s.io/v1beta1/nodes/real-0')).toEqual({ kind: 'nodes', name: 'real-0' });
    expect(parseMetricsPath('/apis/metrics.k8s.io/v1beta1')).toMatchObject({ kind: 'discovery', body: { kind: 'APIResourceList' } });
    expect(parseMetricsPath('/apis/metrics.k8s.io/')).toMatchObject({ kind: 'discovery', body: { kind: 'APIGroup', name: 'metrics.k8s.io' } });
    expect(parseMetricsPath('/apis')).toMatchObject({ kind: 'discovery', body: { kind: 'APIGroupList' } });
  });

  it('refuses crafted namespaces and names: traversal, encoded slashes, bad encodings, non-names', () => {
    for (const bad of [
      '/apis/metrics.k8s.io/v1beta1/namespaces/..%2Fkplex-b/pods',
      '/apis/metrics.k8s.io/v1beta1/namespaces/a%2Fb/pods',
      '/apis/metrics.k8s.io/v1beta1/namespaces/../pods',
      '/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods/..',
      '/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods/a%3Fb',
      '/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods/%E0%A4%A',
      '/apis/metrics.k8s.io/v1beta1/namespaces/Shop/pods',
      '/apis/metrics.k8s.io/v1beta1/nodes/%00',
    ]) refused(() => parseMetricsPath(bad), 400);
  });

  it('serves nothing else: other groups, versions, resources, deeper paths', () => {
    for (const other of ['/', '/api/v1/pods', '/apis/apps/v1', '/apis/metrics.k8s.io/v1', '/apis/metrics.k8s.io/v1beta1/secrets', '/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods/web/exec', '//evil/apis', '/apis/metrics.k8s.io/v1beta1/namespaces/shop']) {
      refused(() => parseMetricsPath(other), 404);
    }
  });
});

describe('listQuery', () => {
  it('passes the selectors on and refuses watches and unknown parameters', () => {
    expect(listQuery(new URLSearchParams('labelSelector=app%3Dweb&fieldSelector=metadata.name%3Dx'))).toEqual({ labelSelector: 'app=web', fieldSelector: 'metadata.name=x' });
    refused(() => listQuery(new URLSearchParams('watch=true')), 400);
    refused(() => listQuery(new URLSearchParams('namespace=kplex-b')), 400);
  });
});

describe('tenantPodMetrics', () => {
  const web = tenantPod('shop', 'web-1', 'u-1', { app: 'web' });
  const webTwin = twinOf('a', web);

  it('gives the twin’s usage under the tenant pod’s name, namespace and labels', () => {
    const [m, ...rest] = tenantPodMetrics('a', [web], [webTwin], [podMetrics(webTwin.metadata.name!, '5000000n')]);
    expect(rest).toEqual([]);
    expect(m).toEqual({
      kind: 'PodMetrics',
      apiVersion: 'metrics.k8s.io/v1beta1',
      metadata: { name: 'web-1', namespace: 'shop', labels: { app: 'web' }, creationTimestamp: '2026-01-01T00:00:00Z' },
      timestamp: '2026-01-01T00:00:00Z',
      window: '15s',
      containers: [{ name: 'main', usage: { cpu: '5000000n', memory: '1Mi' } }],
    });
  });

  it('never answers for another tenant’s twin, a twin of an older pod of the same name, or a pod without metrics yet', () => {
    const otherTenantsTwin = twinOf('b', web);
    expect(tenantPodMetrics('a', [web], [otherTenantsTwin], [podMetrics(otherTenantsTwin.metadata.name!)])).toEqual([]);
    const recreated = tenantPod('shop', 'web-1', 'u-2');
    expect(tenantPodMetrics('a', [recreated], [webTwin], [podMetrics(webTwin.metadata.name!)])).toEqual([]);
    expect(tenantPodMetrics('a', [web], [webTwin], [])).toEqual([]);
  });

  it('answers only for the tenant pods asked about (the tenant API server applied namespace and selectors)', () => {
    const db = tenantPod('shop', 'db-0', 'u-3');
    const dbTwin = twinOf('a', db);
    const all = [podMetrics(webTwin.metadata.name!), podMetrics(dbTwin.metadata.name!)];
    expect(tenantPodMetrics('a', [db], [webTwin, dbTwin], all).map((m) => m.metadata.name)).toEqual(['db-0']);
  });

  it('a host pod without kplex origin (not made by the syncer) names no tenant pod', () => {
    const stray: KubeObject = { metadata: { name: 'web-1', namespace: 'kplex-a', annotations: { 'kplex.dev/name': 'web-1', 'kplex.dev/namespace': 'shop' } } };
    expect(tenantPodMetrics('a', [web], [stray], [podMetrics('web-1')])).toEqual([]);
  });
});

describe('tenantNodeMetrics', () => {
  const pod = tenantPod('shop', 'web-1', 'u-1');
  it('answers for mirrored Nodes its pods run on, not for made-up Nodes or nodes only other tenants use', () => {
    const hostPods = [twinOf('a', pod, 'real-0'), twinOf('b', pod, 'real-1')];
    const tenantNodes = [mirroredNode('real-0'), mirroredNode('real-1'), { metadata: { name: 'real-2' } }];
    const host = [nodeMetrics('real-0'), nodeMetrics('real-1'), nodeMetrics('real-2')];
    expect(tenantNodeMetrics('a', tenantNodes, hostPods, host).map((m) => m.metadata.name)).toEqual(['real-0']);
  });
});

describe('answer', () => {
  it('a list, or the named item, or metrics-server’s 404', () => {
    const item = { metadata: { name: 'x' } };
    expect(answer('PodMetrics', [item])).toMatchObject({ kind: 'PodMetricsList', items: [item] });
    expect(answer('NodeMetrics', [item], 'x')).toBe(item);
    refused(() => answer('PodMetrics', [item], 'y'), 404);
  });
});
