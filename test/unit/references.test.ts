import { describe, expect, it } from 'vitest';
import { prerequisitesOf, referencesOf, Usage } from '../../src/sync/references.js';

const pod = (name: string, spec: Record<string, unknown>) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'shop' }, spec });

describe('referencesOf', () => {
  it('finds every ConfigMap and Secret a pod uses, once each, with its API access volume\'s CA', () => {
    const refs = referencesOf('Pod', pod('web', {
      imagePullSecrets: [{ name: 'regcred' }],
      volumes: [
        { name: 'cfg', configMap: { name: 'settings' } },
        { name: 'tls', secret: { secretName: 'certs' } },
        { name: 'mix', projected: { sources: [{ configMap: { name: 'a' } }, { secret: { name: 'b' } }, { serviceAccountToken: { path: 't' } }] } },
        { name: 'kube-api-access-x1y2z', projected: { sources: [{ configMap: { name: 'kube-root-ca.crt' } }] } },
        { name: 'data', persistentVolumeClaim: { claimName: 'db' } },
      ],
      initContainers: [{ name: 'init', envFrom: [{ secretRef: { name: 'init-env' } }] }],
      containers: [{
        name: 'app',
        env: [{ name: 'X', valueFrom: { configMapKeyRef: { name: 'settings', key: 'x' } } }, { name: 'Y', valueFrom: { secretKeyRef: { name: 'certs', key: 'y' } } }, { name: 'Z', value: 'z' }],
        envFrom: [{ configMapRef: { name: 'env' } }],
      }],
    }));
    expect(refs.map((r) => `${r.kind}/${r.namespace}/${r.name}`).sort()).toEqual([
      'ConfigMap/shop/a', 'ConfigMap/shop/env', 'ConfigMap/shop/kube-root-ca.crt', 'ConfigMap/shop/settings',
      'Secret/shop/b', 'Secret/shop/certs', 'Secret/shop/init-env', 'Secret/shop/regcred',
    ]);
  });

  it('finds the TLS Secrets of an Ingress, and nothing for other kinds', () => {
    const ing = { metadata: { name: 'site', namespace: 'shop' }, spec: { tls: [{ secretName: 'site-tls' }, { hosts: ['a'] }] } };
    expect(referencesOf('Ingress', ing)).toEqual([{ kind: 'Secret', namespace: 'shop', name: 'site-tls' }]);
    expect(referencesOf('Service', { metadata: { name: 's', namespace: 'shop' }, spec: { selector: { app: 'x' } } })).toEqual([]);
  });
});

describe('prerequisitesOf', () => {
  it("puts a pod's ServiceAccount before the ConfigMaps and Secrets it uses", () => {
    const p = pod('web', { serviceAccountName: 'app', volumes: [{ name: 'cfg', configMap: { name: 'settings' } }], containers: [{ name: 'c' }] });
    expect(prerequisitesOf(p)).toEqual([
      { kind: 'ServiceAccount', namespace: 'shop', name: 'app' },
      { kind: 'ConfigMap', namespace: 'shop', name: 'settings' },
    ]);
    expect(prerequisitesOf(pod('bare', { containers: [{ name: 'c' }] }))).toEqual([]);
  });
});

describe('Usage', () => {
  it('tells whether anything still uses a ConfigMap, and which references changed', () => {
    const usage = new Usage();
    const a = pod('a', { containers: [{ name: 'c', envFrom: [{ configMapRef: { name: 'env' } }] }] });
    const b = pod('b', { containers: [{ name: 'c', envFrom: [{ configMapRef: { name: 'env' } }, { secretRef: { name: 'key' } }] }] });
    expect(usage.set('Pod', a)).toEqual([{ kind: 'ConfigMap', namespace: 'shop', name: 'env' }]);
    expect(usage.set('Pod', b).map((r) => r.name).sort()).toEqual(['env', 'key']);
    expect(usage.set('Pod', a)).toEqual([]);
    expect(usage.remove('Pod', a)).toEqual([{ kind: 'ConfigMap', namespace: 'shop', name: 'env' }]);
    expect(usage.isUsed('ConfigMap', 'shop', 'env')).toBe(true);
    usage.set('Pod', pod('b', { containers: [{ name: 'c' }] }));
    expect(usage.isUsed('ConfigMap', 'shop', 'env')).toBe(false);
    expect(usage.isUsed('Secret', 'shop', 'key')).toBe(false);
    expect(usage.isUsed('ConfigMap', 'other', 'env')).toBe(false);
  });
});
