import { describe, expect, it } from 'vitest';
import { tenantCorefile } from '../../src/controlplane/components.js';
import { dnsOnHost, renewAfter, tokenAction, tokenProjections, tokenSecretName, TOKEN, withApiEnv } from '../../src/sync/pod-access.js';
import { Translator } from '../../src/sync/translate.js';

type Json = Record<string, any>;
const access = { serviceIP: '10.96.12.34' };
const SEARCH = ['shop.svc.cluster.local', 'svc.cluster.local', 'cluster.local'];

describe('dnsOnHost', () => {
  it('gives ClusterFirst pods (the default) the tenant DNS server and search path, as kubelet does', () => {
    expect(dnsOnHost({}, 'shop', access)).toEqual({
      dnsPolicy: 'None',
      dnsConfig: { nameservers: ['10.96.12.34'], searches: SEARCH, options: [{ name: 'ndots', value: '5' }] },
    });
    expect(dnsOnHost({ dnsPolicy: 'ClusterFirstWithHostNet', hostNetwork: true }, 'shop', access).dnsPolicy).toBe('None');
  });

  it("adds the pod's own dnsConfig after, within the host's limits", () => {
    const own = {
      nameservers: ['1.1.1.1', '8.8.8.8', '9.9.9.9'],
      searches: Array.from({ length: 32 }, (_, i) => `s${i}.example`),
      options: [{ name: 'ndots', value: '2' }, { name: 'edns0' }],
    };
    const { dnsConfig } = dnsOnHost({ dnsConfig: own }, 'shop', access) as Json;
    expect(dnsConfig.nameservers).toEqual(['10.96.12.34', '1.1.1.1', '8.8.8.8']);
    expect(dnsConfig.searches).toHaveLength(32);
    expect(dnsConfig.searches.slice(0, 3)).toEqual(SEARCH);
    expect(dnsConfig.options).toEqual([{ name: 'ndots', value: '2' }, { name: 'edns0' }]);
  });

  it('keeps Default and None, and ClusterFirst on the host network (kubelet uses Default there)', () => {
    expect(dnsOnHost({ dnsPolicy: 'Default' }, 'shop', access)).toEqual({ dnsPolicy: 'Default' });
    const none = { dnsPolicy: 'None', dnsConfig: { nameservers: ['192.0.2.1'] } };
    expect(dnsOnHost(none, 'shop', access)).toEqual(none);
    expect(dnsOnHost({ hostNetwork: true }, 'shop', access)).toEqual({ dnsPolicy: 'ClusterFirst' });
  });
});

describe('withApiEnv', () => {
  it("names the tenant's API server the way kubelet names a cluster's, and lets the container's own win", () => {
    const env = withApiEnv([{ name: 'KUBERNETES_SERVICE_PORT', value: '6443' }, { name: 'APP', value: 'x' }], access);
    const byName = Object.fromEntries(env.map((e) => [e.name, e.value]));
    expect(byName.KUBERNETES_SERVICE_HOST).toBe('10.96.12.34');
    expect(byName.KUBERNETES_PORT_443_TCP).toBe('tcp://10.96.12.34:443');
    expect(byName.KUBERNETES_SERVICE_PORT).toBe('6443');
    expect(env.filter((e) => e.name === 'KUBERNETES_SERVICE_PORT')).toHaveLength(1);
    expect(env.at(-1)).toEqual({ name: 'APP', value: 'x' });
  });
});

describe('tokens', () => {
  const spec = {
    volumes: [
      { name: 'kube-api-access-abcde', projected: { sources: [{ serviceAccountToken: { expirationSeconds: 3607, path: 'token' } }, { configMap: { name: 'kube-root-ca.crt' } }] } },
      { name: 'vault', projected: { sources: [{ serviceAccountToken: { audience: 'vault', expirationSeconds: 600, path: 'vault-token' } }] } },
    ],
  };

  it('lists projections in volume order, each with its key', () => {
    expect(tokenProjections(spec)).toEqual([
      { audience: undefined, expirationSeconds: 3607, path: 'token', key: 'token-0' },
      { audience: 'vault', expirationSeconds: 600, path: 'vault-token', key: 'token-1' },
    ]);
  });

  it('mounts them from the token Secret in the host pod, at the paths the tenant pod has them', () => {
    const t = new Translator('tnt', access);
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web', namespace: 'shop', uid: 'u1' }, spec: { ...spec, containers: [{ name: 'c', volumeMounts: [{ name: 'kube-api-access-abcde', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' }] }] } };
    const host = t.pod(pod).spec as Json;
    const secret = tokenSecretName(t.name('shop', 'web', 'Pod'));
    expect(host.volumes[0].projected.sources).toEqual([
      { secret: { name: secret, items: [{ key: 'token-0', path: 'token' }] } },
      { configMap: { name: t.name('shop', 'kube-root-ca.crt', 'ConfigMap') } },
    ]);
    expect(host.volumes[1].projected.sources).toEqual([{ secret: { name: secret, items: [{ key: 'token-1', path: 'vault-token' }] } }]);
    expect(host.containers[0].volumeMounts).toHaveLength(1);
    expect(host.automountServiceAccountToken).toBe(false);
    expect(secret).not.toContain('-x-');
  });

  it('drops them, as before, for a tenant whose pods do not reach its API', () => {
    const host = new Translator('tnt').pod({ metadata: { name: 'web', namespace: 'shop' }, spec }).spec as Json;
    expect(host.volumes).toEqual([{ name: 'vault', projected: { sources: [] } }]);
    expect(host.dnsPolicy).toBeUndefined();
  });

  it('renews at 80% of the shortest lifetime, deletes a Secret whose pod is gone after a grace', () => {
    const now = Date.parse('2026-12-01T00:00:00Z');
    expect(renewAfter([{ key: 'token-0', token: 'a', expirationSeconds: 3600 }, { key: 'token-1', token: 'b', expirationSeconds: 600 }], now)).toBe('2026-12-01T00:08:00.000Z');
    const secret = (renew: string, created = '2026-11-30T23:00:00Z') => ({ metadata: { creationTimestamp: created, annotations: { [TOKEN.renewAfter]: renew } } });
    expect(tokenAction(secret('2026-12-01T00:08:00Z'), true, now)).toEqual({ act: 'keep' });
    expect(tokenAction(secret('2026-11-30T23:59:59Z'), true, now)).toEqual({ act: 'renew' });
    expect(tokenAction(secret('garbage'), true, now)).toEqual({ act: 'renew' });
    expect(tokenAction(secret('2026-12-01T00:08:00Z'), false, now)).toEqual({ act: 'delete' });
    expect(tokenAction(secret('2026-12-01T00:08:00Z', '2026-11-30T23:59:30Z'), false, now)).toEqual({ act: 'keep' });
  });

  it('keeps the token Secret apart from twins: no origin, so no sync rule of tenant Secrets touches it', () => {
    const t = new Translator('tnt', access);
    const s = t.tokenSecret({ metadata: { name: 'web', namespace: 'shop', uid: 'u1' } }, [{ key: 'token-0', token: 'abc', expirationSeconds: 3600 }], 0);
    expect(s.metadata.annotations?.['kplex.dev/name']).toBeUndefined();
    expect(s.metadata.labels?.[TOKEN.label]).toBe('true');
    expect(Buffer.from((s as Json).data['token-0'], 'base64').toString()).toBe('abc');
  });
});

describe('downward API', () => {
  it("gives the pod its tenant name, namespace and uid, and its labels under their host keys, wherever it reads them", () => {
    const t = new Translator('tnt', access);
    const field = (fieldPath: string) => ({ fieldRef: { fieldPath } });
    const spec = t.pod({ metadata: { name: 'web', namespace: 'shop', uid: 'u1' }, spec: {
      volumes: [
        { name: 'kube-api-access-abcde', projected: { sources: [{ downwardAPI: { items: [{ path: 'namespace', ...field('metadata.namespace') }] } }] } },
        { name: 'info', downwardAPI: { items: [{ path: 'name', ...field('metadata.name') }, { path: 'app', ...field("metadata.labels['app']") }] } },
      ],
      containers: [{ name: 'c', env: [{ name: 'UID', valueFrom: field('metadata.uid') }, { name: 'NODE', valueFrom: field('spec.nodeName') }] }],
    } }).spec as Json;
    expect(spec.volumes[0].projected.sources[0].downwardAPI.items[0].fieldRef.fieldPath).toBe("metadata.annotations['kplex.dev/namespace']");
    expect(spec.volumes[1].downwardAPI.items.map((i: Json) => i.fieldRef.fieldPath)).toEqual(["metadata.annotations['kplex.dev/name']", expect.stringMatching(/^metadata\.labels\['kplex\.dev\/l-[0-9a-f]+'\]$/)]);
    const env = Object.fromEntries(spec.containers[0].env.map((e: Json) => [e.name, e.valueFrom?.fieldRef?.fieldPath]));
    expect(env.UID).toBe("metadata.annotations['kplex.dev/uid']");
    expect(env.NODE).toBe('spec.nodeName');
  });
});

describe('a StatefulSet pod under its tenant name', () => {
  const t = new Translator('tnt', access);
  const pod = (spec: Json) => ({ metadata: { name: 'db-0', namespace: 'shop' }, spec: { hostname: 'db-0', subdomain: 'db', containers: [{ name: 'c' }], ...spec } });

  it('rewrites kubelet\'s /etc/hosts line into a file every container mounts, by a restricted init container', () => {
    const spec = t.pod(pod({})).spec as Json;
    const init = spec.initContainers[0];
    expect(init.name).toBe('kplex-hosts');
    expect(init.command[2]).toContain(`db-0\\.${t.name('shop', 'db', 'Service').replace(/\./g, '\\.')}\\.kplex-tnt\\.svc\\.cluster\\.local`);
    expect(init.command[2]).toContain('\\tdb-0.db.shop.svc.cluster.local\\tdb-0');
    expect(init.securityContext).toMatchObject({ runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    expect(spec.containers[0].volumeMounts).toContainEqual({ name: 'kplex-hosts', mountPath: '/etc/hosts', subPath: 'hosts' });
  });

  it('builds no shell command from a name that is not a DNS name: nothing a tenant writes reaches sh -c unchecked', () => {
    for (const bad of ["db'; rm -rf /; '", 'db$(id)', 'db\nx', 'DB', 'db ']) {
      expect((t.pod(pod({ subdomain: bad })).spec as Json).initContainers, bad).toBeUndefined();
      expect((t.pod(pod({ hostname: bad })).spec as Json).initContainers, bad).toBeUndefined();
    }
  });

  it('leaves pods without a subdomain, on the host network, or with their own /etc/hosts alone', () => {
    expect((t.pod(pod({ subdomain: undefined })).spec as Json).initContainers).toBeUndefined();
    expect((t.pod(pod({ hostNetwork: true })).spec as Json).initContainers).toBeUndefined();
    const own = t.pod(pod({ containers: [{ name: 'c', volumeMounts: [{ name: 'h', mountPath: '/etc/hosts' }] }], volumes: [{ name: 'h', emptyDir: {} }] })).spec as Json;
    expect(own.initContainers).toBeUndefined();
    expect((new Translator('tnt').pod(pod({})).spec as Json).initContainers).toBeUndefined();
  });
});

describe('attacks on pod tokens', () => {
  it("never lets a pod mount another pod's token Secret by naming it: every name a pod holds is translated", () => {
    const t = new Translator('tnt', access);
    const victim = tokenSecretName(t.name('shop', 'victim', 'Pod'));
    const spec = t.pod({ metadata: { name: 'thief', namespace: 'shop' }, spec: {
      volumes: [{ name: 's', secret: { secretName: victim } }, { name: 'p', projected: { sources: [{ secret: { name: victim } }] } }],
      containers: [{ name: 'c', envFrom: [{ secretRef: { name: victim } }], env: [{ name: 'T', valueFrom: { secretKeyRef: { name: victim, key: 'token-0' } } }] }],
    } }).spec as Json;
    expect(JSON.stringify(spec)).not.toContain(`"${victim}"`);
    expect(spec.volumes[0].secret.secretName).toBe(t.name('shop', victim, 'Secret'));
  });

  it('issues nothing and mounts nothing for a pod whose tenant turned its token off', () => {
    const t = new Translator('tnt', access);
    const spec = t.pod({ metadata: { name: 'quiet', namespace: 'shop' }, spec: { automountServiceAccountToken: false, containers: [{ name: 'c' }] } }).spec as Json;
    expect(spec.volumes).toEqual([]);
    expect(tokenProjections({ automountServiceAccountToken: false })).toEqual([]);
  });
});

describe('tenantCorefile', () => {
  const base = { address: '10.250.0.1', port: 40001, readyPort: 40002, kubeconfig: '/k' };
  it("answers the tenant's names only, other names from this machine's resolvers", () => {
    const c = tenantCorefile(base);
    expect(c).toContain('bind 10.250.0.1');
    expect(c).toContain('fallthrough in-addr.arpa ip6.arpa');
    expect(c).toContain('forward . /etc/resolv.conf');
  });
  it('falls back to the host DNS for every name the tenant lacks when asked to', () => {
    const c = tenantCorefile({ ...base, fallbackTo: '10.96.0.10' });
    expect(c).toMatch(/^\s+fallthrough$/m);
    expect(c).toContain('forward . 10.96.0.10');
  });
});

describe('tenantPodStatus', () => {
  it("carries the twin's status back without its QoS class or the containers kplex added", async () => {
    const { tenantPodStatus } = await import('../../src/sync/pod-status.js');
    const host = { metadata: {}, status: { phase: 'Running', qosClass: 'Burstable', podIP: '10.244.0.4', initContainerStatuses: [{ name: 'kplex-hosts' }, { name: 'migrate' }] } };
    const tenant = { metadata: {}, spec: { initContainers: [{ name: 'migrate' }] }, status: { phase: 'Pending', qosClass: 'BestEffort' } };
    expect(tenantPodStatus(host, tenant)).toEqual({ phase: 'Running', qosClass: 'BestEffort', podIP: '10.244.0.4', initContainerStatuses: [{ name: 'migrate' }] });
  });
});
