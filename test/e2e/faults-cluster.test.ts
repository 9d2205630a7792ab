import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tenantEtcdPrefix } from '../../src/controlplane/local.js';
import { accessFromKubeconfig } from '../../src/k8s/kubeconfig.js';
import { GatewayReplicas } from './gateway-replicas.js';
import { createTenant, eventually, kubectl, processesMentioning, tmpDir } from './helpers.js';
import {
  expectConvergedOnce, expectHostOutageHandled, expectNothingLost, HostTwins, ReplicaApis, writeThroughApiServerKill, writeThroughLeaderKill, writeWhileHostPaused,
} from './tenant-writes.js';

const TENANT = 'faulty-pods';
const CONTROL_PLANE_POD = 'kplex-control-plane-0';

interface ControlPlanePod {
  metadata: { uid: string };
  status: { containerStatuses?: { name: string; restartCount: number }[] };
}

/**
 * The faults of faults-local.test.ts for the cluster provider, checked object by object the same way:
 * the tenant's control plane is a StatefulSet pod on the host's real node, and the gateways that route
 * to it and campaign for the Lease run beside the host, as separate processes.
 */
describe('faults of the cluster provider: a tenant API server container, the host API server and the leading gateway lost mid-write', () => {
  const dir = tmpDir('faults-cluster');
  const set = new GatewayReplicas(dir, 'cluster');
  const apis = new ReplicaApis();
  const twins = new HostTwins(set.hostKubeconfig, TENANT);
  const controlPlanePod = async (): Promise<ControlPlanePod> => {
    const r = await kubectl(set.hostKubeconfig, ['get', 'pod', '-n', `kplex-${TENANT}`, CONTROL_PLANE_POD, '-o', 'json']);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as ControlPlanePod;
  };
  /** Each container's restarts, and the pod's uid: what a fault elsewhere must leave as it was. */
  const identity = (pod: ControlPlanePod): Record<string, number | string> => ({
    uid: pod.metadata.uid,
    ...Object.fromEntries((pod.status.containerStatuses ?? []).map((c) => [c.name, c.restartCount])),
  });

  let tenantKubeconfig = '';
  /** The tenant's kubeconfig with its server on replica `port` (kplex connect wrote the one that published last). */
  const kubeconfigThrough = (port: number): string => {
    const file = path.join(dir, `${TENANT}-${port}.kubeconfig`);
    writeFileSync(file, readFileSync(tenantKubeconfig, 'utf8').replace(/https:\/\/127\.0\.0\.1:\d+\//, `https://127.0.0.1:${port}/`));
    return file;
  };

  beforeAll(async () => {
    await set.upWith(['a', 'b']);
    tenantKubeconfig = await createTenant(set.env, TENANT, { controlPlane: { provider: 'cluster' } });
    apis.access = accessFromKubeconfig({ file: tenantKubeconfig });
  }, 600_000);

  afterAll(async () => {
    await apis.close();
    await set.down();
  });

  it('the kube-apiserver container killed during a watch and writes: 503 naming the tenant, the kubelet brings it back, every acknowledged write kept and mirrored once', async () => {
    const api = apis.through((await set.leader()).port);
    const before = identity(await controlPlanePod());
    const { writer, watch } = await writeThroughApiServerKill(api, apis.access!, () => {
      // The container's process, as the node that runs it sees it: its flags name the tenant's store.
      const apiServer = processesMentioning(`etcd-prefix=${tenantEtcdPrefix(TENANT)}`).filter((l) => l.includes('kube-apiserver'));
      expect(apiServer, apiServer.join('\n')).toHaveLength(1);
      return apiServer[0]!.split(' ')[0]!;
    });
    // The kubelet restarted that container in place: the same pod, its store beside it untouched.
    expect(identity(await controlPlanePod())).toEqual({ ...before, 'kube-apiserver': Number(before['kube-apiserver']) + 1 });
    await expectNothingLost(TENANT, writer, watch, api, twins);
  });

  it('the host API server unreachable for 30 s: the tenant keeps serving from its pod, mirrored kinds made on the host first get a clear Status, and the host ends with exactly the tenant state', async () => {
    const api = apis.through((await set.leader()).port);
    const before = identity(await controlPlanePod());
    const { writers, pausedAt } = await writeWhileHostPaused(api, set.hostApiServer());
    // The node kept the control-plane pod running without its API server: nothing restarted.
    expect(identity(await controlPlanePod())).toEqual(before);
    expect(Math.max(...writers.sa.ackedAt)).toBeGreaterThan(pausedAt + 15_000);
    await expectHostOutageHandled(writers, api, twins);
  });

  it('the leading gateway killed mid-write: its death does not touch the control-plane pod, the other replica serves with no write refused, and leads with no twin duplicated or orphaned', async () => {
    const before = identity(await controlPlanePod());
    const { writers, survivor } = await writeThroughLeaderKill(set, apis);
    expect(identity(await controlPlanePod())).toEqual(before);
    for (const w of writers) {
      // Any replica serves any tenant, and the control plane never went away: nothing was refused.
      expect(w.refused).toEqual([]);
      await expectConvergedOnce(w, survivor, twins);
    }
  });

  it('kubectl top through a new leader: the tenant\'s metrics adapter, which lived on the killed leader, is served by the one that takes over', async () => {
    const first = await set.leader();
    await set.start('c');
    const pod = 'measured';
    const made = await kubectl(kubeconfigThrough(first.port), ['run', pod, '--image=busybox', '--restart=Never', '--', 'sleep', '3600']);
    expect(made.code, made.stderr).toBe(0);
    /** `kubectl top pod` through `port` once it lists the pod (metrics-server answers after a scrape or two). */
    const topThrough = (port: number, what: string) =>
      eventually(async () => {
        const r = await kubectl(kubeconfigThrough(port), ['top', 'pod', pod, '--no-headers']);
        return r.code === 0 && r.stdout.startsWith(`${pod} `) ? r.stdout : undefined;
      }, 120_000, what);
    /** Where the tenant's API server sends metrics.k8s.io requests: the leader's adapter, by address and port. */
    const adapterEndpoint = async (port: number): Promise<string> => {
      const r = await kubectl(kubeconfigThrough(port), ['get', 'endpointslice', '-n', 'kube-system', 'kplex-metrics', '-o', 'jsonpath={.endpoints[*].addresses[*]}:{.ports[*].port}']);
      expect(r.code, r.stderr).toBe(0);
      return r.stdout;
    };
    await topThrough(first.port, 'kubectl top pod through the first leader');
    const before = await adapterEndpoint(first.port);

    first.proc.kill('SIGKILL');
    const next = await set.leader();
    // The new leader's first reconcile of the tenant points the tenant's EndpointSlice at its own adapter.
    await topThrough(next.port, 'kubectl top pod through the new leader');
    const after = await adapterEndpoint(next.port);
    expect(after).toMatch(/^10\.250\.0\.1:\d+$/);
    expect(after).not.toBe(before);
  });
});
