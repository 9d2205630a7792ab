import { describe, expect, it } from 'vitest';
import { hostLabelKey } from '../../src/sync/names.js';
import { originOf, Translator } from '../../src/sync/translate.js';

const t = new Translator('demo');

describe('Translator', () => {
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web-1', namespace: 'shop', uid: 'u-1', resourceVersion: '9', labels: { app: 'web' }, ownerReferences: [{ kind: 'ReplicaSet' }] },
    spec: {
      nodeName: 'n1',
      priorityClassName: 'high',
      priority: 1000,
      preemptionPolicy: 'Never',
      serviceAccountName: 'builder',
      imagePullSecrets: [{ name: 'regcred' }],
      volumes: [
        { name: 'cfg', configMap: { name: 'settings' } },
        { name: 'tls', secret: { secretName: 'certs' } },
        { name: 'data', persistentVolumeClaim: { claimName: 'data' } },
        { name: 'mix', projected: { sources: [{ configMap: { name: 'a' } }, { secret: { name: 'b' } }] } },
        { name: 'kube-api-access-abcde', projected: { sources: [{ serviceAccountToken: { path: 'token' } }] } },
      ],
      containers: [{
        name: 'c',
        image: 'nginx',
        env: [{ name: 'X', valueFrom: { configMapKeyRef: { name: 'settings', key: 'x' } } }, { name: 'Y', valueFrom: { secretKeyRef: { name: 'certs', key: 'y' } } }],
        envFrom: [{ configMapRef: { name: 'settings' } }, { secretRef: { name: 'certs' } }],
        volumeMounts: [{ name: 'cfg', mountPath: '/cfg' }, { name: 'kube-api-access-abcde', mountPath: '/var/run/secrets' }],
      }],
    },
    status: { phase: 'Running' },
  };

  it('translates a pod: name, namespace, labels, every reference; leaves host-owned fields out', () => {
    const h = t.pod(pod) as { metadata: Record<string, unknown>; spec: Record<string, any>; status?: unknown };
    expect(h.metadata.name).toBe('web-1-x-shop-x-demo');
    expect(h.metadata.namespace).toBe('kplex-demo');
    expect(h.metadata.labels).toEqual({ [hostLabelKey('app')]: 'web', 'app.kubernetes.io/managed-by': 'kplex', 'kplex.dev/tenant': 'demo', 'kplex.dev/namespace': 'shop' });
    expect(h.metadata).not.toHaveProperty('uid');
    expect(h.metadata).not.toHaveProperty('resourceVersion');
    expect(h.metadata).not.toHaveProperty('ownerReferences');
    expect(h).not.toHaveProperty('status');
    expect(h.spec.nodeName).toBeUndefined();
    // The class name goes as it is (the host's class of that name decides; kinds.ts asks first); the
    // values the tenant's class gave do not.
    expect(h.spec.priorityClassName).toBe('high');
    expect(h.spec.priority).toBeUndefined();
    expect(h.spec.preemptionPolicy).toBeUndefined();
    expect(h.spec.serviceAccountName).toBe('builder-x-shop-x-demo');
    expect(h.spec.imagePullSecrets).toEqual([{ name: 'regcred-x-shop-x-demo' }]);
    expect(h.spec.volumes.map((v: any) => v.configMap?.name ?? v.secret?.secretName ?? v.persistentVolumeClaim?.claimName ?? v.projected.sources.map((s: any) => (s.configMap ?? s.secret).name).join(','))).toEqual([
      'settings-x-shop-x-demo', 'certs-x-shop-x-demo', 'data-x-shop-x-demo', 'a-x-shop-x-demo,b-x-shop-x-demo',
    ]);
    const c = h.spec.containers[0];
    expect(c.env.map((e: any) => (e.valueFrom.configMapKeyRef ?? e.valueFrom.secretKeyRef).name)).toEqual(['settings-x-shop-x-demo', 'certs-x-shop-x-demo']);
    expect(c.envFrom.map((e: any) => (e.configMapRef ?? e.secretRef).name)).toEqual(['settings-x-shop-x-demo', 'certs-x-shop-x-demo']);
    expect(c.volumeMounts).toEqual([{ name: 'cfg', mountPath: '/cfg' }]);
    expect(pod.spec.volumes[0]!.configMap!.name).toBe('settings');
  });

  it('names its origin in annotations, and reads it back without parsing names', () => {
    const h = t.pod(pod);
    expect(originOf(h)).toEqual({ tenant: 'demo', namespace: 'shop', name: 'web-1', uid: 'u-1' });
    expect(originOf({ metadata: { name: 'x', labels: { 'kplex.dev/tenant': 'demo' } } })).toBeUndefined();
  });

  it('scopes Service selectors to the tenant namespace and keeps the ClusterIP', () => {
    const svc = { metadata: { name: 'web', namespace: 'shop', uid: 's' }, spec: { selector: { app: 'web' }, clusterIP: '10.96.0.20', clusterIPs: ['10.96.0.20'], type: 'NodePort', ports: [{ port: 80, nodePort: 30080 }] } };
    const h = t.service(svc) as { metadata: { name: string }; spec: Record<string, any> };
    expect(h.metadata.name).toBe('web-x-shop-x-demo');
    expect(h.spec.selector).toEqual({ [hostLabelKey('app')]: 'web', 'kplex.dev/tenant': 'demo', 'kplex.dev/namespace': 'shop' });
    expect(h.spec.clusterIP).toBe('10.96.0.20');
    expect(h.spec.ports).toEqual([{ port: 80 }]);
    // The same labels on the pod side: the selector matches the mirrored pods.
    expect(Object.entries(h.spec.selector).every(([k, v]) => (t.pod(pod).metadata.labels as Record<string, string>)[k] === v)).toBe(true);
  });

  it('keeps a selector of one tenant from matching pods of another', () => {
    const other = new Translator('other');
    const sel = t.selector('shop', { matchLabels: { app: 'web' } }).matchLabels!;
    const theirs = other.labels('shop', { app: 'web' });
    expect(Object.entries(sel).every(([k, v]) => theirs[k] === v)).toBe(false);
  });

  it('names the Endpoints of a selectorless Service like its Service, without tenant pod references', () => {
    const ep = { metadata: { name: 'db', namespace: 'shop' }, subsets: [{ addresses: [{ ip: '10.0.0.5', targetRef: { kind: 'Pod', name: 'p' } }], ports: [{ port: 5432 }] }] };
    const h = t.endpoints(ep) as { metadata: { name: string }; subsets: any[] };
    expect(h.metadata.name).toBe(t.service({ metadata: { name: 'db', namespace: 'shop' }, spec: {} }).metadata.name);
    expect(h.subsets[0].addresses).toEqual([{ ip: '10.0.0.5' }]);
    expect(h.subsets[0].ports).toEqual([{ port: 5432 }]);
  });

  it('scopes NetworkPolicy pod selectors and peers to the tenant; keeps IP blocks', () => {
    const np = { metadata: { name: 'deny', namespace: 'shop' }, spec: { podSelector: { matchLabels: { app: 'db' } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: 'web' } } }, { ipBlock: { cidr: '10.0.0.0/8' } }, { namespaceSelector: {} }] }] } };
    const h = t.networkPolicy(np) as unknown as { spec: any };
    expect(h.spec.podSelector.matchLabels).toEqual({ [hostLabelKey('app')]: 'db', 'kplex.dev/tenant': 'demo', 'kplex.dev/namespace': 'shop' });
    expect(h.spec.ingress[0].from).toEqual([
      { podSelector: { matchLabels: { [hostLabelKey('app')]: 'web', 'kplex.dev/tenant': 'demo', 'kplex.dev/namespace': 'shop' } } },
      { ipBlock: { cidr: '10.0.0.0/8' } },
      // Any namespace of the tenant; never another tenant's pods or the host's.
      { podSelector: { matchLabels: { 'kplex.dev/tenant': 'demo' } } },
    ]);
  });

  it('renames Ingress backends and TLS secrets', () => {
    const ing = { metadata: { name: 'site', namespace: 'shop' }, spec: { tls: [{ secretName: 'certs' }], rules: [{ http: { paths: [{ path: '/', backend: { service: { name: 'web', port: { number: 80 } } } }] } }] } };
    const h = t.ingress(ing) as unknown as { spec: any };
    expect(h.spec.rules[0].http.paths[0].backend.service.name).toBe('web-x-shop-x-demo');
    expect(h.spec.tls[0].secretName).toBe('certs-x-shop-x-demo');
  });
});

describe('annotations on twins', () => {
  it('keep only those without a domain prefix: host components read prefixed ones', () => {
    const t = new Translator('team-a');
    const pod = t.pod({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'web',
        namespace: 'dev',
        uid: 'u1',
        annotations: {
          note: 'kept',
          'nginx.ingress.kubernetes.io/configuration-snippet': 'lua',
          'k8s.v1.cni.cncf.io/networks': 'host-net',
          'metallb.universe.tf/address-pool': 'public',
          'kplex.dev/tenant': 'forged',
          'kplex.dev/name': 'forged',
        },
      },
      spec: { containers: [{ name: 'c', image: 'nginx' }] },
    });
    expect(pod.metadata.annotations).toEqual({ note: 'kept', 'kplex.dev/name': 'web', 'kplex.dev/namespace': 'dev', 'kplex.dev/uid': 'u1' });
  });
});
