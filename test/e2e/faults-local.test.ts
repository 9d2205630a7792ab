import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accessFromKubeconfig } from '../../src/k8s/kubeconfig.js';
import { GatewayReplicas } from './gateway-replicas.js';
import { createTenant, processesMentioning, tmpDir } from './helpers.js';
import {
  expectConvergedOnce, expectHostOutageHandled, expectNothingLost, expectUnavailableNamingTenant, HostTwins, ReplicaApis, writeThroughApiServerKill, writeThroughLeaderKill, writeWhileHostPaused,
} from './tenant-writes.js';

const TENANT = 'faulty';

/**
 * Faults of the local provider's parts, each checked object by object: what a client was told was
 * written is in the tenant, and the host holds a twin of exactly the tenant's mirrored objects, one each.
 */
describe('faults of the local provider: a tenant API server, the host API server and the leading gateway lost mid-write', () => {
  const dir = tmpDir('faults');
  const set = new GatewayReplicas(dir);
  const apis = new ReplicaApis();
  const twins = new HostTwins(set.hostKubeconfig, TENANT);

  beforeAll(async () => {
    await set.upWith(['a', 'b']);
    apis.access = accessFromKubeconfig({ file: await createTenant(set.env, TENANT) });
  });

  afterAll(async () => {
    await apis.close();
    await set.down();
  });

  it('a tenant API server killed during a watch and writes: 503 naming the tenant, back by itself, every acknowledged write kept and mirrored once', async () => {
    const leader = await set.leader();
    const api = apis.through(leader.port);
    const { writer, watch } = await writeThroughApiServerKill(api, apis.access!, () => {
      const apiServer = processesMentioning(`${leader.tenantDir}/${TENANT}/pki/apiserver.crt`);
      expect(apiServer).toHaveLength(1);
      return apiServer[0]!.split(' ')[0]!;
    });
    await expectNothingLost(TENANT, writer, watch, api, twins);
  });

  it('the host API server unreachable for 30 s: tenant writes succeed, mirrored kinds made on the host first get a clear Status, and the host ends with exactly the tenant state', async () => {
    const leader = await set.leader();
    const api = apis.through(leader.port);
    const { writers, pausedAt, resumedAt } = await writeWhileHostPaused(api, set.hostApiServer());
    expect(resumedAt - pausedAt).toBeGreaterThanOrEqual(30_000);

    await expectHostOutageHandled(writers, api, twins);
    // The leader could not renew its Lease and stopped leading after the renew deadline (5 s), but the
    // tenant's control plane kept serving: writes were acknowledged long after that.
    expect(leader.lines.some((l) => l.msg === 'lost the lease' && l.time >= pausedAt), set.logOf(leader)).toBe(true);
    expect(Math.max(...writers.sa.ackedAt)).toBeGreaterThan(pausedAt + 15_000);
  });

  it('the leading gateway killed mid-write: the other replica serves and leads, with no twin duplicated or orphaned', async () => {
    const { killed, writers, survivor } = await writeThroughLeaderKill(set, apis);
    // The local provider runs one API server per tenant, beside the leader: it died with it (no orphan
    // process), and until the new leader has started it again the tenant is unavailable, and says so.
    expect(set.apiServers(killed)).toEqual([]);
    for (const w of writers) {
      expectUnavailableNamingTenant(w, TENANT);
      await expectConvergedOnce(w, survivor, twins);
    }
  });
});
