import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tenantEtcdPrefix } from '../../src/controlplane/local.js';
import { accessFromKubeconfig } from '../../src/k8s/kubeconfig.js';
import { GatewayReplicas } from './gateway-replicas.js';
import { createTenant, kubectl, processesMentioning, tmpDir } from './helpers.js';
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

  beforeAll(async () => {
    await set.upWith(['a', 'b']);
    apis.access = accessFromKubeconfig({ file: await createTenant(set.env, TENANT, { controlPlane: { provider: 'cluster' } }) });
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
});
