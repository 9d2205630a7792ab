import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ORIGIN } from '../../src/sync/translate.js';
import { eventually, helmPath, kubectl, run, useSharedHost, type Run } from './helpers.js';

interface Listed {
  items: { kind: string; metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> } }[];
}

/**
 * Helm, the client platform teams use most after kubectl, through the gateway into a tenant whose pods
 * run on a real node: a chart made by `helm create` installs and upgrades with --wait, passes
 * `helm test` and uninstalls, leaving nothing of the release in the tenant or on the host.
 */
describe('helm through the gateway', () => {
  const shared = useSharedHost('helm', ['team']);
  const dir = shared.dir;
  const hostKc = shared.hostKubeconfig;
  let tenantKc = '';
  const chart = path.join(dir, 'demo');
  const ns = 'shop';
  const host = (args: string[]) => kubectl(hostKc, args);
  const tenant = (args: string[]) => kubectl(tenantKc, args);
  // helm keeps its repositories, cache and plugins under these folders: the test's own, not the user's.
  const helmEnv = { HELM_CONFIG_HOME: path.join(dir, 'helm', 'config'), HELM_CACHE_HOME: path.join(dir, 'helm', 'cache'), HELM_DATA_HOME: path.join(dir, 'helm', 'data') };
  const helm = (args: string[], timeoutMs = 240_000) => run(helmPath(), ['--kubeconfig', tenantKc, ...args], helmEnv, timeoutMs);
  const ok = (r: Run): string => {
    expect(r.code, r.stderr + r.stdout).toBe(0);
    return r.stdout;
  };
  // The chart's image is nginx at the chart's appVersion tag (1.16.0), which no node here has and no
  // registry serves: the node has the nginx scripts/node-images.sh builds, as nginx:latest. A user of
  // this cluster sets the tag as for any private image; IfNotPresent (the chart's default, said here so
  // the test does not lean on it) runs what the node has.
  const image = ['--set', 'image.tag=latest', '--set', 'image.pullPolicy=IfNotPresent'];

  beforeAll(async () => {
    tenantKc = await shared.createTenant('team');
    ok(await run(helmPath(), ['create', chart], helmEnv, 30_000));
  });

  it('installs the chart with --wait: the Deployment is available and its Service has its ClusterIP on both sides', async () => {
    ok(await helm(['install', 'demo', chart, '-n', ns, '--create-namespace', ...image, '--wait', '--timeout', '3m']));
    expect(ok(await helm(['status', 'demo', '-n', ns, '-o', 'json']))).toContain('"status":"deployed"');
    expect(ok(await tenant(['-n', ns, 'get', 'deployment', 'demo', '-o', 'jsonpath={.status.readyReplicas}']))).toBe('1');
    const ip = ok(await tenant(['-n', ns, 'get', 'service', 'demo', '-o', 'jsonpath={.spec.clusterIP}']));
    const twins = JSON.parse(ok(await host(['-n', 'kplex-team', 'get', 'services', '-l', `${ORIGIN.tenant}=team,${ORIGIN.namespaceLabel}=${ns}`, '-o', 'json']))) as Listed;
    const twin = twins.items.find((s) => s.metadata.annotations?.[ORIGIN.name] === 'demo');
    expect(twin, 'the Service twin').toBeDefined();
    expect(ok(await host(['-n', 'kplex-team', 'get', 'service', twin!.metadata.name, '-o', 'jsonpath={.spec.clusterIP}']))).toBe(ip);
  });

  it('upgrades to 2 replicas with --wait: both pods ready when helm returns', async () => {
    ok(await helm(['upgrade', 'demo', chart, '-n', ns, ...image, '--set', 'replicaCount=2', '--wait', '--timeout', '3m']));
    expect(ok(await tenant(['-n', ns, 'get', 'deployment', 'demo', '-o', 'jsonpath={.status.readyReplicas}']))).toBe('2');
    const history = JSON.parse(ok(await helm(['history', 'demo', '-n', ns, '-o', 'json']))) as { revision: number; status: string }[];
    expect(history.map((h) => [h.revision, h.status])).toEqual([[1, 'superseded'], [2, 'deployed']]);
  });

  it("passes helm test: the chart's test pod fetches the Service by its DNS name", async () => {
    const r = await helm(['test', 'demo', '-n', ns, '--logs', '--timeout', '2m'], 180_000);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toMatch(/TEST SUITE:\s+demo-test-connection[\s\S]*Phase:\s+Succeeded/);
    expect(r.stdout).toContain("saving to 'index.html'");
  });

  it('uninstalls: nothing of the release is left in the tenant, and no twin of it on the host', async () => {
    ok(await helm(['uninstall', 'demo', '-n', ns, '--wait', '--timeout', '3m']));
    expect(ok(await helm(['list', '-A', '-q']))).toBe('');
    // Helm leaves a test hook pod without a delete policy behind in any cluster (it is not part of the
    // release's manifest); a user removes it by hand, as here.
    ok(await tenant(['-n', ns, 'delete', 'pod', 'demo-test-connection', '--ignore-not-found', '--wait=true', '--timeout=90s']));
    // What the namespace itself brings stays: its default ServiceAccount and the root CA ConfigMap.
    const namespaceOwn = new Set(['serviceaccount/default', 'configmap/kube-root-ca.crt']);
    // Each check throws what is still there, so a timeout names it.
    await eventually(async () => {
      const names = ok(await tenant(['-n', ns, 'get', 'all,configmaps,secrets,serviceaccounts,endpoints,ingresses,roles,rolebindings,persistentvolumeclaims', '-o', 'name']))
        .split('\n')
        .filter((n) => n && !namespaceOwn.has(n));
      if (names.length) throw new Error(`left in the tenant: ${names.join(', ')}`);
      return true;
    }, 90_000, `the release gone from tenant namespace ${ns}`);
    await eventually(async () => {
      const twins = JSON.parse(ok(await host(['-n', 'kplex-team', 'get', 'pods,services,endpoints,configmaps,secrets,serviceaccounts', '-l', `${ORIGIN.tenant}=team,${ORIGIN.namespaceLabel}=${ns}`, '-o', 'json']))) as Listed;
      const names = twins.items.map((o) => `${o.kind.toLowerCase()}/${o.metadata.annotations?.[ORIGIN.name] ?? o.metadata.name}`).filter((n) => !namespaceOwn.has(n));
      if (names.length) throw new Error(`twins left on the host: ${names.join(', ')}`);
      return true;
    }, 90_000, `no twin of ${ns}'s release objects on the host`);
  });
});
