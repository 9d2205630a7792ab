import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { K8S_VERSION } from '../../src/controlplane/binaries.js';
import { eventually, kplex, kubectl, processesMentioning, useSharedHost, type Run } from './helpers.js';

const TENANT = 'incluster';
const ISOLATED = 'incluster-iso';
const REPLICATED = 'incluster-ha';
const NS = `kplex-${TENANT}`;

interface Pod {
  metadata: { name: string; uid: string };
  spec: { nodeName?: string; containers: { name: string; image: string }[] };
  status: { phase: string; podIP?: string };
}

/**
 * Provider `cluster`: the tenant's control plane is a StatefulSet in its host namespace (etcd on a
 * claim, kube-apiserver, kube-controller-manager and its DNS server in one pod, images by their
 * upstream names, served on the embedded host by its registry mirror), reached by the gateway at the
 * host Service its pods use too. No process of it runs beside the gateway.
 */
describe('tenant control plane as host pods (provider cluster)', () => {
  const shared = useSharedHost('cluster-provider', [TENANT, ISOLATED, REPLICATED]);
  let tenant = '';
  const host = (args: string[]): Promise<Run> => kubectl(shared.hostKubeconfig, args);
  const as = (args: string[]): Promise<Run> => kubectl(tenant, args);
  const json = <T>(r: Run): T => {
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as T;
  };
  const controlPlanePod = async (): Promise<Pod> => json<Pod>(await host(['-n', NS, 'get', 'pod', 'kplex-control-plane-0', '-o', 'json']));

  beforeAll(async () => {
    tenant = await shared.createTenant(TENANT, { controlPlane: { provider: 'cluster' } });
  });

  it('runs as a StatefulSet pod with the upstream images, its data on a claim, no process beside the gateway', async () => {
    const pod = await controlPlanePod();
    expect(pod.status.phase).toBe('Running');
    expect(Object.fromEntries(pod.spec.containers.map((c) => [c.name, c.image]))).toEqual({
      etcd: 'registry.k8s.io/etcd:3.6.5-0',
      'kube-apiserver': 'registry.k8s.io/kube-apiserver:v1.35.4',
      'kube-controller-manager': 'registry.k8s.io/kube-controller-manager:v1.35.4',
      coredns: 'registry.k8s.io/coredns/coredns:v1.15.0',
    });
    const claim = json<{ status: { phase: string } }>(await host(['-n', NS, 'get', 'pvc', 'data-kplex-control-plane-0', '-o', 'json']));
    expect(claim.status.phase).toBe('Bound');
    expect(processesMentioning(`/tenants/${TENANT}/`)).toEqual([]);
    const listed = await kplex(['list', '-o', 'json', '--context', 'kplex-host'], shared.env);
    expect((JSON.parse(listed.stdout) as { name: string; status: string }[]).find((t) => t.name === TENANT)?.status).toBe('Ready');
  });

  it('serves kubectl through the gateway: a Deployment runs on the host, with logs and exec', async () => {
    expect((await as(['create', 'deployment', 'web', '--image=nginx'])).code).toBe(0);
    const name = await eventually(async () => {
      const pods = json<{ items: Pod[] }>(await as(['get', 'pods', '-l', 'app=web', '-o', 'json'])).items;
      return pods.find((p) => p.status.phase === 'Running')?.metadata.name;
    }, 120_000, 'a Running pod of the Deployment');
    const exec = await as(['exec', name, '--', 'cat', '/etc/hostname']);
    expect(exec.code, exec.stderr).toBe(0);
    expect(exec.stdout.trim()).toBe(name);
    expect((await as(['logs', name])).code).toBe(0);
  });

  it("a pod of the tenant reaches its API server with its own token, and its DNS server, both in the control-plane pod", async () => {
    expect((await as(['run', 'kc', `--image=registry.k8s.io/kubectl:${K8S_VERSION}`, '--restart=Never', '--command', '--', 'sleep', '3600'])).code).toBe(0);
    await eventually(async () => (json<Pod>(await as(['get', 'pod', 'kc', '-o', 'json'])).status.phase === 'Running' ? true : undefined), 120_000, 'the kubectl pod to run');
    // In-cluster configuration: the Service address in KUBERNETES_SERVICE_HOST, the pod's token and the tenant's CA.
    const r = await as(['exec', 'kc', '--', 'kubectl', 'get', '--raw', '/version']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ gitVersion: K8S_VERSION });
    const who = await as(['exec', 'kc', '--', 'kubectl', 'auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}']);
    expect(who.stdout).toBe('system:serviceaccount:default:default');
    // The name resolves to the same address, answered by the DNS server in the control-plane pod.
    const serviceIP = (await as(['exec', 'kc', '--', 'printenv', 'KUBERNETES_SERVICE_HOST'])).stdout.trim();
    const lookup = await as(['exec', 'kc', '--', 'nslookup', 'kubernetes.default.svc.cluster.local']);
    expect(lookup.code, lookup.stderr).toBe(0);
    expect(lookup.stdout).toContain(`Server:\t\t${serviceIP}`);
    expect(lookup.stdout).toMatch(new RegExp(`Address: ${serviceIP.replace(/\./g, '\\.')}\\b`));
  }, 240_000);

  it('a deleted control-plane pod comes back with the tenant objects (its data is on the claim)', async () => {
    const before = await controlPlanePod();
    expect((await host(['-n', NS, 'delete', 'pod', 'kplex-control-plane-0', '--wait=true'])).code).toBe(0);
    await eventually(async () => {
      const pod = await controlPlanePod().catch(() => undefined);
      return pod && pod.metadata.uid !== before.metadata.uid && pod.status.phase === 'Running' ? pod : undefined;
    }, 120_000, 'the control-plane pod to come back');
    const deployment = await eventually(async () => {
      const r = await as(['get', 'deployment', 'web', '-o', 'name']);
      return r.code === 0 ? r.stdout.trim() : undefined;
    }, 120_000, 'the tenant API server to answer again');
    expect(deployment).toBe('deployment.apps/web');
  });

  it('an isolated tenant: the gateway and its own pods reach the control plane through the deny policy; the quota leaves it all it gives', async () => {
    // CPU and memory in the quota: the control-plane pod (210m, 272Mi requested) is admitted beside it,
    // and a tenant pod without requests gets the LimitRange's defaults (100m, 128Mi).
    const iso = await shared.createTenant(ISOLATED, { isolate: true, quota: { pods: 2, cpu: '250m', memory: '256Mi' }, controlPlane: { provider: 'cluster' } });
    const r = await kubectl(iso, ['run', 'kc', `--image=registry.k8s.io/kubectl:${K8S_VERSION}`, '--restart=Never', '--command', '--', 'sleep', '3600']);
    expect(r.code, r.stderr).toBe(0);
    await eventually(async () => (json<Pod>(await kubectl(iso, ['get', 'pod', 'kc', '-o', 'json'])).status.phase === 'Running' ? true : undefined), 120_000, 'the pod of the isolated tenant to run');
    const version = await kubectl(iso, ['exec', 'kc', '--', 'kubectl', 'get', '--raw', '/version']);
    expect(version.code, version.stderr).toBe(0);
    expect(JSON.parse(version.stdout)).toMatchObject({ gitVersion: K8S_VERSION });
    const big = { spec: { containers: [{ name: 'big', image: 'busybox', command: ['sleep', '3600'], resources: { requests: { cpu: '200m' } } }] } };
    const refused = await kubectl(iso, ['run', 'big', '--image=busybox', '--restart=Never', `--overrides=${JSON.stringify(big)}`]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('pods "big" is forbidden: exceeded quota: kplex-quota');
    expect(refused.stderr).toMatch(/requested: \S*requests\.cpu=200m/);
    expect((await kubectl(iso, ['get', 'pod', 'big'])).code, 'a refused pod is not stored').not.toBe(0);
  }, 300_000);

  it('replicas 3: three members; one pod deleted while a client writes, the tenant keeps serving and no acknowledged write is lost', async () => {
    const ha = await shared.createTenant(REPLICATED, { controlPlane: { provider: 'cluster', replicas: 3 } });
    const haNs = `kplex-${REPLICATED}`;
    const members = ['kplex-control-plane-0', 'kplex-control-plane-1', 'kplex-control-plane-2'];
    const ready = async (): Promise<string[]> => {
      const pods = json<{ items: (Pod & { status: { conditions?: { type: string; status: string }[] } })[] }>(await host(['-n', haNs, 'get', 'pods', '-l', `kplex.dev/control-plane=${REPLICATED}`, '-o', 'json'])).items;
      return pods.filter((p) => p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).map((p) => p.metadata.name).sort();
    };
    expect(await ready()).toEqual(members);

    // "Nothing lost": every ConfigMap whose create was acknowledged (kubectl exit 0) is there afterwards.
    const acknowledged: string[] = [];
    const failed: string[] = [];
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        const r = await kubectl(ha, ['create', 'configmap', `w-${i}`, `--from-literal=i=${i}`]);
        (r.code === 0 ? acknowledged : failed).push(`w-${i}`);
      }
    })();
    await eventually(async () => (acknowledged.length >= 3 ? true : undefined), 60_000, 'the first writes');
    const beforeLoss = acknowledged.length;
    expect((await host(['-n', haNs, 'delete', 'pod', members[1]!, '--wait=false'])).code).toBe(0);
    await eventually(async () => (!(await ready()).includes(members[1]!) ? true : undefined), 60_000, 'the deleted member to be gone');
    const whileDown = acknowledged.length;
    await eventually(async () => (acknowledged.length >= whileDown + 3 ? true : undefined), 60_000, 'writes served by the two remaining members');
    await eventually(async () => ((await ready()).length === 3 ? true : undefined), 240_000, 'the deleted member back');
    const afterBack = acknowledged.length;
    await eventually(async () => (acknowledged.length >= afterBack + 3 ? true : undefined), 60_000, 'writes after it rejoined');
    writing = false;
    await writer;

    const stored = new Set(json<{ items: { metadata: { name: string } }[] }>(await kubectl(ha, ['get', 'configmaps', '-o', 'json'])).items.map((c) => c.metadata.name));
    expect(acknowledged.filter((n) => !stored.has(n)), 'acknowledged writes missing').toEqual([]);
    expect(acknowledged.length).toBeGreaterThan(beforeLoss + 6);

    const file = path.join(shared.dir, 'ha-one.values.yaml');
    writeFileSync(file, 'controlPlane: {provider: cluster, replicas: 1}\n');
    const shrink = await kplex(['create', REPLICATED, '--upgrade', '-f', file, '--context', 'kplex-host'], shared.env);
    expect(shrink.code).not.toBe(0);
    expect(shrink.stderr.trim().split('\n').at(-1)).toBe("kplex: controlPlane.replicas cannot change from 3 to 1: the store's members are fixed when it is made");
  }, 600_000);

  it('the provider cannot change once the tenant has data: one clear line, nothing changed', async () => {
    const file = path.join(shared.dir, 'local.values.yaml');
    writeFileSync(file, 'controlPlane: {provider: local}\n');
    const r = await kplex(['create', TENANT, '--upgrade', '-f', file, '--context', 'kplex-host'], shared.env);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split('\n').at(-1)).toBe('kplex: controlPlane.provider cannot change from "cluster" to "local": the tenant\'s data is in the first one\'s store');
    expect((await as(['get', 'deployment', 'web', '-o', 'name'])).code).toBe(0);
  });
});
