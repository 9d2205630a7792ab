import { describe, expect, it } from 'vitest';
import { ClusterProvider, configFiles, controlPlanePolicy, controlPlaneRequests, controlPlaneStatefulSet, peerService, rolledOut, UPSTREAM_IMAGES } from '../../src/controlplane/cluster.js';
import { isolationObjects } from '../../src/controller/tenant-controller.js';
import { cpuMillis, fixedAtCreation, parseValues, ValuesError } from '../../src/tenants/values.js';
import { podSecurityFor, UNRESTRICTED } from '../../src/controlplane/pod-security.js';
import { controlPlaneService } from '../../src/controller/control-plane-service.js';

const pki = { 'ca.crt': 'CA', 'admin.crt': 'ADMIN', 'admin.key': 'ADMINKEY', 'dns.crt': 'DNS', 'dns.key': 'DNSKEY' };

interface Container { name: string; image: string; args: string[]; securityContext: Record<string, unknown>; volumeMounts?: { mountPath: string }[] }
interface Sts {
  metadata: { namespace: string };
  spec: {
    selector: { matchLabels: Record<string, string> };
    template: { metadata: { labels: Record<string, string>; annotations: Record<string, string> }; spec: { securityContext: Record<string, unknown>; containers: Container[]; automountServiceAccountToken: boolean } };
    volumeClaimTemplates: { spec: { storageClassName?: string } }[];
  };
}

const sts = (files: Record<string, string>, storageClass?: string) => controlPlaneStatefulSet('t1', files, UPSTREAM_IMAGES, storageClass, { 'kplex.dev/tenant': 't1' }) as unknown as Sts;
const container = (s: Sts, name: string) => s.spec.template.spec.containers.find((c) => c.name === name)!;

describe('the control plane of provider cluster', () => {
  it('runs in the tenant host namespace as the restricted pod security standard allows, with no host token mounted', () => {
    const s = sts(configFiles('t1', pki, { podSecurity: UNRESTRICTED }, '10.96.0.10'));
    expect(s.metadata.namespace).toBe('kplex-t1');
    expect(s.spec.template.spec.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    for (const c of s.spec.template.spec.containers) expect(c.securityContext, c.name).toEqual({ allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    expect(s.spec.template.spec.automountServiceAccountToken).toBe(false);
    expect(s.spec.selector.matchLabels).toEqual({ 'kplex.dev/control-plane': 't1' });
    expect(s.spec.template.metadata.labels).toMatchObject(s.spec.selector.matchLabels);
  });

  it('the API server listens on every pod address, advertises the pod IP and stores in the pod etcd under the tenant prefix', () => {
    const args = container(sts(configFiles('t1', pki, { podSecurity: UNRESTRICTED }, '10.96.0.10')), 'kube-apiserver').args;
    expect(args).toEqual(expect.arrayContaining(['--bind-address=0.0.0.0', '--advertise-address=$(POD_IP)', '--etcd-servers=http://127.0.0.1:2379', '--etcd-prefix=/kplex/tenants/t1', '--secure-port=6443']));
    expect(args.some((a) => a.startsWith('--admission-control-config-file'))).toBe(false);
  });

  it('pod security is read from the admission file, present only when something is enforced', () => {
    const files = configFiles('t1', pki, { podSecurity: podSecurityFor('baseline') }, '10.96.0.10');
    expect(files['admission.yaml']).toContain('PodSecurity');
    expect(container(sts(files), 'kube-apiserver').args).toContain('--admission-control-config-file=/etc/kplex/admission.yaml');
  });

  it('the DNS server answers on 1053 of every pod address and asks the host DNS only when the values fall back to it', () => {
    const own = configFiles('t1', pki, { podSecurity: UNRESTRICTED, pods: { serviceIP: '10.96.5.5', fallbackToHost: false } }, '10.96.0.10').Corefile!;
    expect(own).toMatch(/^\.:1053 \{/);
    expect(own).toContain('bind 0.0.0.0');
    expect(own).not.toContain('10.96.0.10');
    const fallback = configFiles('t1', pki, { podSecurity: UNRESTRICTED, pods: { serviceIP: '10.96.5.5', fallbackToHost: true } }, '10.96.0.10').Corefile!;
    expect(fallback).toContain('forward . 10.96.0.10');
  });

  it('a changed file (a renewed certificate, another admission setting) changes the pod template, so the pod rolls', () => {
    const a = sts(configFiles('t1', pki, { podSecurity: UNRESTRICTED }, '10.96.0.10'));
    const b = sts(configFiles('t1', { ...pki, 'admin.crt': 'RENEWED' }, { podSecurity: UNRESTRICTED }, '10.96.0.10'));
    expect(a.spec.template.metadata.annotations['kplex.dev/spec-hash']).not.toEqual(b.spec.template.metadata.annotations['kplex.dev/spec-hash']);
    expect(sts(configFiles('t1', pki, { podSecurity: UNRESTRICTED }, '10.96.0.10')).spec.template.metadata.annotations).toEqual(a.spec.template.metadata.annotations);
  });

  it('the etcd claim uses the class asked for, else the host default', () => {
    const files = configFiles('t1', pki, { podSecurity: UNRESTRICTED }, '10.96.0.10');
    expect(sts(files).spec.volumeClaimTemplates[0]!.spec.storageClassName).toBeUndefined();
    expect(sts(files, 'fast').spec.volumeClaimTemplates[0]!.spec.storageClassName).toBe('fast');
  });

  it('the control-plane Service selects the pods and targets their ports; without pods it has no selector', () => {
    const withPods = controlPlaneService('kplex-t1', {}, { selector: { 'kplex.dev/control-plane': 't1' }, apiPort: 6443, dnsPort: 1053 }) as unknown as { spec: { selector?: object; ports: { name: string; port: number; targetPort: number }[] } };
    expect(withPods.spec.selector).toEqual({ 'kplex.dev/control-plane': 't1' });
    expect(withPods.spec.ports.map((p) => [p.name, p.port, p.targetPort])).toEqual([['https', 443, 6443], ['dns', 53, 1053], ['dns-tcp', 53, 1053]]);
    const without = controlPlaneService('kplex-t1', {}) as unknown as { spec: { selector?: object; ports: { port: number; targetPort: number }[] } };
    expect(without.spec.selector).toBeUndefined();
    expect(without.spec.ports.every((p) => p.port === p.targetPort)).toBe(true);
  });
});

describe('what the control-plane pod requests, and the isolated quota around it', () => {
  const MiB = 1024 ** 2;
  interface WithResources { resources: { requests: { cpu: string; memory: string } } }

  it('every container requests CPU and memory; the API server as much memory as its Go memory limit', () => {
    const s = controlPlaneStatefulSet('t1', configFiles('t1', pki, { podSecurity: UNRESTRICTED }, '10.96.0.10'), UPSTREAM_IMAGES, undefined, {}, { apiServer: 160 * MiB });
    const containers = (s as unknown as Sts).spec.template.spec.containers as unknown as (Container & WithResources)[];
    for (const c of containers) expect(Object.keys(c.resources.requests).sort(), c.name).toEqual(['cpu', 'memory']);
    expect(containers.find((c) => c.name === 'kube-apiserver')!.resources.requests).toEqual({ cpu: '100m', memory: '160Mi' });
    expect(controlPlaneRequests({ apiServer: 160 * MiB })).toEqual({ cpuMillis: 210, memoryBytes: (64 + 160 + 48 + 32) * MiB });
  });

  it('other requests roll the pod: the template hash covers the pod spec, not only the files', () => {
    const files = configFiles('t1', pki, { podSecurity: UNRESTRICTED }, '10.96.0.10');
    const hash = (limits: { apiServer: number }) => (controlPlaneStatefulSet('t1', files, UPSTREAM_IMAGES, undefined, {}, limits) as unknown as Sts).spec.template.metadata.annotations['kplex.dev/spec-hash'];
    expect(hash({ apiServer: 128 * MiB })).not.toBe(hash({ apiServer: 256 * MiB }));
    expect(hash({ apiServer: 128 * MiB })).toBe(hash({ apiServer: 128 * MiB }));
  });

  const quotaOf = (values: unknown, own = { services: 1, pods: 1, requests: controlPlaneRequests() }) => {
    const objects = isolationObjects('kplex-t1', parseValues(values), own);
    const byKind = (kind: string) => objects.find((o) => o.obj.kind === kind)!;
    return { quota: byKind('ResourceQuota'), limits: byKind('LimitRange'), policy: byKind('NetworkPolicy') };
  };

  it("the quota adds kplex's own pod, Service and control-plane requests to what the values give the tenant", () => {
    const { quota, limits } = quotaOf({ isolate: true, quota: { pods: 3, cpu: '1', memory: '1Gi' } });
    expect((quota.obj as unknown as { spec: unknown }).spec).toEqual({ hard: { pods: '4', services: '51', 'requests.cpu': '1210m', 'requests.memory': '1296Mi' } });
    expect(quota.wanted).toBe(true);
    expect(limits.wanted).toBe(true);
    expect((limits.obj as unknown as { spec: unknown }).spec).toEqual({ limits: [{ type: 'Container', defaultRequest: { cpu: '100m', memory: '128Mi' } }] });
  });

  it('no CPU or memory in the quota: no default requests; not isolated: nothing wanted, so all of it is removed', () => {
    const counted = quotaOf({ isolate: true, quota: { pods: 3 } });
    expect(Object.keys((counted.quota.obj as unknown as { spec: { hard: object } }).spec.hard).sort()).toEqual(['pods', 'services']);
    expect(counted.limits.wanted).toBe(false);
    const lifted = quotaOf({ isolate: false, quota: { cpu: '2' } });
    expect([lifted.quota.wanted, lifted.limits.wanted, lifted.policy.wanted]).toEqual([false, false, false]);
  });

  it('quota CPU and memory must be quantities, so a typo never reaches the host as a refused quota', () => {
    expect(cpuMillis('250m')).toBe(250);
    expect(cpuMillis('0.5')).toBe(500);
    expect(cpuMillis('2')).toBe(2000);
    for (const bad of ['', '0', '-1', '1e3', '2 cores', '0.0001']) expect(cpuMillis(bad), bad).toBeUndefined();
    expect(() => parseValues({ quota: { cpu: 'lots' } })).toThrow(ValuesError);
    expect(() => parseValues({ quota: { memory: '16GB' } })).toThrow(/quota.memory: not a memory size/);
  });
});

describe('a replicated control plane (controlPlane.replicas 3)', () => {
  const files = configFiles('t1', pki, { podSecurity: UNRESTRICTED }, '10.96.0.10');
  const peers = [0, 1, 2].map((i) => ({ name: `kplex-control-plane-${i}`, address: `10.96.7.${i + 1}` }));
  interface Replicated { metadata: { annotations: Record<string, string> }; spec: { replicas: number; podManagementPolicy?: string; template: { spec: { hostAliases?: { ip: string; hostnames: string[] }[] } } } }
  const replicated = controlPlaneStatefulSet('t1', files, UPSTREAM_IMAGES, undefined, {}, {}, peers) as unknown as Sts & Replicated;
  const single = controlPlaneStatefulSet('t1', files, UPSTREAM_IMAGES, undefined, {}) as unknown as Sts & Replicated;

  it('starts all members at once, each finding the others by name in /etc/hosts (the pod uses the node resolver)', () => {
    expect(replicated.spec.replicas).toBe(3);
    expect(replicated.spec.podManagementPolicy).toBe('Parallel');
    expect(replicated.metadata.annotations['kplex.dev/store-members']).toBe('3');
    expect(replicated.spec.template.spec.hostAliases).toEqual(peers.map((p) => ({ ip: p.address, hostnames: [p.name] })));
    expect(single.spec.replicas).toBe(1);
    expect(single.spec.podManagementPolicy, 'a field that cannot change on existing single-member tenants').toBeUndefined();
    expect(single.spec.template.spec.hostAliases).toBeUndefined();
  });

  it('etcd members talk TLS with client certificates from their own CA; clients stay on loopback', () => {
    const args = container(replicated, 'etcd').args;
    expect(args).toEqual(expect.arrayContaining([
      '--name=$(POD_NAME)',
      '--listen-client-urls=http://127.0.0.1:2379',
      '--listen-peer-urls=https://0.0.0.0:2380',
      '--initial-advertise-peer-urls=https://$(POD_NAME):2380',
      `--initial-cluster=${peers.map((p) => `${p.name}=https://${p.name}:2380`).join(',')}`,
      '--initial-cluster-token=kplex-t1',
      '--peer-client-cert-auth=true',
      '--peer-trusted-ca-file=/etc/kplex/etcd-ca.crt',
      '--peer-client-cert-file=/etc/kplex/etcd-peer-client.crt',
    ]));
    expect(container(single, 'etcd').args).toEqual(expect.arrayContaining(['--listen-peer-urls=http://127.0.0.1:2380', '--initial-cluster=kplex=http://127.0.0.1:2380']));
  });

  it('every file a member names is in a folder mounted in its container', () => {
    const etcd = container(replicated, 'etcd');
    const files = etcd.args.map((a) => a.split('=')[1]!).filter((v) => v.startsWith('/etc/'));
    expect(files.length).toBeGreaterThan(4);
    for (const f of files) expect(etcd.volumeMounts?.some((m) => f.startsWith(`${m.mountPath}/`)), f).toBe(true);
  });

  it('the controller managers elect a leader; a single one does not need to', () => {
    const leaderElect = (s: Sts) => container(s, 'kube-controller-manager').args.filter((a) => a.startsWith('--leader-elect')).at(-1);
    expect(leaderElect(replicated)).toBe('--leader-elect=true');
    expect(leaderElect(single)).toBe('--leader-elect=false');
  });

  it("each member's peer Service has a fixed address before its pod is ready, selecting that pod only", () => {
    const svc = peerService('t1', 2, { 'kplex.dev/tenant': 't1' }) as { metadata: { name: string; namespace: string }; spec: Record<string, unknown> };
    expect(svc.metadata).toMatchObject({ name: 'kplex-control-plane-2', namespace: 'kplex-t1' });
    expect(svc.spec).toMatchObject({ selector: { 'statefulset.kubernetes.io/pod-name': 'kplex-control-plane-2' }, publishNotReadyAddresses: true, ports: [{ port: 2380 }] });
    expect(svc.spec.clusterIP).toBeUndefined();
  });

  it("the store's peer port is open to the tenant's control-plane pods only", () => {
    const policy = controlPlanePolicy('t1', {}) as unknown as { spec: { ingress: { from?: unknown[]; ports: { port: number }[] }[] } };
    const peerRule = policy.spec.ingress.find((r) => r.ports.some((p) => p.port === 2380))!;
    expect(peerRule.from).toEqual([{ podSelector: { matchLabels: { 'kplex.dev/control-plane': 't1' } } }]);
    expect(policy.spec.ingress.filter((r) => !r.from).flatMap((r) => r.ports.map((p) => p.port))).not.toContain(2380);
  });

  it("three members count three times in an isolated tenant's quota, with their peer Services", () => {
    const provider = new ClusterProvider({ host: undefined as never, hostDnsIP: '10.96.0.10' });
    const footprint = provider.hostFootprint({ podSecurity: UNRESTRICTED, replicas: 3 });
    expect(footprint).toEqual({ pods: 3, services: 3, requests: { cpuMillis: 630, memoryBytes: 3 * 272 * 1024 ** 2 } });
    expect(provider.hostFootprint({ podSecurity: UNRESTRICTED })).toMatchObject({ pods: 1, services: 0 });
  });
});

describe('what is fixed once a tenant exists', () => {
  const v = (controlPlane: object) => parseValues({ controlPlane });
  it('the provider and the number of store members; other values may change', () => {
    expect(fixedAtCreation(undefined, v({ replicas: 3 }))).toBeUndefined();
    expect(fixedAtCreation({ provider: 'cluster', controlPlaneReplicas: 3 }, v({ replicas: 3 }))).toBeUndefined();
    expect(fixedAtCreation({ provider: 'cluster', controlPlaneReplicas: 1 }, v({ replicas: 3 }))).toBe('controlPlane.replicas cannot change from 1 to 3: the store\'s members are fixed when it is made');
    expect(fixedAtCreation({ provider: 'cluster' }, v({ replicas: 3 })), 'made before replicas were recorded: one').toMatch(/from 1 to 3/);
    expect(fixedAtCreation({ provider: 'local' }, v({ provider: 'cluster' }))).toMatch(/controlPlane.provider cannot change from "local" to "cluster"/);
    expect(() => v({ replicas: 2 })).toThrow(/controlPlane.replicas/);
  });
});

describe('when a control plane has rolled out', () => {
  const ready = { readyReplicas: 1, updatedReplicas: 1, currentRevision: 'r1', updateRevision: 'r1' };
  it('not while the status describes an older spec: the pod about to be replaced is still ready', () => {
    expect(rolledOut({ metadata: { generation: 3 }, status: { ...ready, observedGeneration: 2 } }, 1)).toBe(false);
    expect(rolledOut({ metadata: { generation: 3 }, status: { ...ready, observedGeneration: 3 } }, 1)).toBe(true);
  });
  it('not while pods of the old revision remain, fewer are ready, or there is no StatefulSet', () => {
    expect(rolledOut({ metadata: { generation: 2 }, status: { ...ready, observedGeneration: 2, updateRevision: 'r2' } }, 1)).toBe(false);
    expect(rolledOut({ metadata: { generation: 2 }, status: { ...ready, observedGeneration: 2, readyReplicas: 2, updatedReplicas: 3 } }, 3)).toBe(false);
    expect(rolledOut(undefined, 1)).toBe(false);
  });
});
