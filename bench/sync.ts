// Sync benchmarks, each against a baseline of the same run:
// - inline mirror: creating a pod through the gateway vs directly on the tenant API server, and whether
//   its host twin exists when the create returns (lag 0);
// - syncer throughput: a tenant Deployment scaled 0 -> N until N host pods exist, vs the host making N
//   pods of its own Deployment; lag from tenant pod to host pod (p50/p99), measured with watches.
import YAML from 'yaml';
import { KubeClient, core, type KubeObject } from '../src/k8s/client.js';
import { devCluster } from './dev-cluster.js';
import { firstTimes, percentile, sleep } from './measure.js';
import type { BenchReport } from './report.js';

const REPLICAS = Number(process.env.BENCH_REPLICAS ?? 500);
const CREATES = Number(process.env.BENCH_CREATES ?? 30);

const d = (s: string | undefined): string => Buffer.from(s ?? '', 'base64').toString('utf8');

const pod = (name: string): KubeObject => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name }, spec: { containers: [{ name: 'c', image: 'nginx' }] } });
const deployment = (name: string, replicas: number): KubeObject => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name },
  spec: { replicas, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'c', image: 'nginx' }] } } },
});

/** When each pod of a namespace first appears (by a key), with this process's clock. */
const watchArrivals = (client: KubeClient, namespace: string, key: (o: KubeObject) => string | undefined, signal: AbortSignal): Map<string, number> =>
  firstTimes(client, core('pods', namespace), (o) => [key(o)].filter((k): k is string => !!k), signal);

async function until(check: () => boolean, timeoutMs: number): Promise<number> {
  const begin = performance.now();
  while (!check()) {
    if (performance.now() - begin > timeoutMs) throw new Error('timed out');
    await sleep(20);
  }
  return performance.now() - begin;
}

export async function benchSync(): Promise<BenchReport> {
  const nodes = Math.ceil(REPLICAS / 100) + 1;
  const cluster = await devCluster('bench-sync', nodes);
  try {
    await cluster.kplex(['create', 'bench', '--connect=false', '--context', 'kplex-host']);
    const secret = await cluster.host.get<KubeObject & { data: Record<string, string> }>(core('secrets', 'kplex-bench', 'vc-bench'));
    const direct = new KubeClient({ server: d(secret.data.server), ca: d(secret.data['ca.crt']), cert: d(secret.data['tls.crt']), key: d(secret.data['tls.key']) });
    const via = YAML.parse(await cluster.kplexOut(['connect', 'bench', '--print', '--context', 'kplex-host'])) as { clusters: { cluster: Record<string, string> }[]; users: { user: { token: string } }[] };
    const gateway = new KubeClient({ server: via.clusters[0]!.cluster.server!, ca: d(via.clusters[0]!.cluster['certificate-authority-data']), token: via.users[0]!.user.token });
    await direct.create(core('namespaces'), { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'bench' } });

    // Inline mirror.
    const timesDirect: number[] = [];
    const timesGateway: number[] = [];
    let presentAtReturn = 0;
    // Each create is timed on a quiet machine: the syncer's work for the pod before it (mirror, binding,
    // status) is let finish first, so neither side pays for the other's (2 cores).
    const settled = async (name: string): Promise<void> => {
      const begin = performance.now();
      while (performance.now() - begin < 30_000) {
        const p = await direct.find<KubeObject & { status?: { phase?: string } }>(core('pods', 'bench', name));
        if (p?.status?.phase === 'Running') return;
        await sleep(50);
      }
      throw new Error(`pod ${name} not Running after 30 s`);
    };
    for (let i = 0; i < CREATES; i++) {
      let t0 = performance.now();
      await direct.create(core('pods', 'bench'), pod(`direct-${i}`));
      timesDirect.push(performance.now() - t0);
      await settled(`direct-${i}`);
      t0 = performance.now();
      await gateway.create(core('pods', 'bench'), pod(`gw-${i}`));
      timesGateway.push(performance.now() - t0);
      if (await cluster.host.find(core('pods', 'kplex-bench', `gw-${i}-x-bench-x-bench`))) presentAtReturn++;
      await settled(`gw-${i}`);
    }
    timesDirect.sort((a, b) => a - b);
    timesGateway.sort((a, b) => a - b);
    console.log(`\ninline mirror: pod create, ${CREATES} creates each (same run, same tenant API server)`);
    console.log(`  direct  p50 ${percentile(timesDirect, 50).toFixed(1)} ms  p99 ${percentile(timesDirect, 99).toFixed(1)} ms`);
    console.log(`  gateway p50 ${percentile(timesGateway, 50).toFixed(1)} ms  p99 ${percentile(timesGateway, 99).toFixed(1)} ms  (ratio p50 ${(percentile(timesGateway, 50) / percentile(timesDirect, 50)).toFixed(2)}x)`);
    console.log(`  host pod present when the create returned: ${presentAtReturn}/${CREATES}`);
    for (const p of (await direct.list(core('pods', 'bench'))).items) await direct.delete(core('pods', 'bench', p.metadata.name));

    // Baseline: the host makes REPLICAS pods of its own Deployment.
    const abort = new AbortController();
    await cluster.host.create(core('namespaces'), { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'baseline' } });
    const baselineSeen = watchArrivals(cluster.host, 'baseline', (o) => o.metadata.name, abort.signal);
    await sleep(500);
    const apps = (ns: string) => ({ group: 'apps', version: 'v1', resource: 'deployments', namespace: ns });
    let t0 = performance.now();
    await cluster.host.create(apps('baseline'), deployment('load', REPLICAS));
    await until(() => baselineSeen.size >= REPLICAS, 600_000);
    const baselineMs = performance.now() - t0;
    await cluster.host.patch({ ...apps('baseline'), name: 'load' }, { spec: { replicas: 0 } });

    // Tenant: the same Deployment, scaled from 0; its pods are made by the tenant's controllers, never
    // through the gateway, so every host pod comes from the syncer.
    const tenantSeen = watchArrivals(direct, 'bench', (o) => o.metadata.name, abort.signal);
    const hostSeen = watchArrivals(cluster.host, 'kplex-bench', (o) => o.metadata.annotations?.['kplex.dev/name'], abort.signal);
    await direct.create(apps('bench'), deployment('load', 0));
    await sleep(500);
    t0 = performance.now();
    await direct.patch({ ...apps('bench'), name: 'load' }, { spec: { replicas: REPLICAS } });
    await until(() => [...hostSeen.keys()].filter((k) => k.startsWith('load-')).length >= REPLICAS, 900_000);
    const tenantMs = performance.now() - t0;
    const lags = [...hostSeen.entries()]
      .filter(([k]) => k.startsWith('load-') && tenantSeen.has(k))
      .map(([k, t]) => t - tenantSeen.get(k)!)
      .sort((a, b) => a - b);
    abort.abort();
    console.log(`\nsyncer: 0 -> ${REPLICAS} replicas (same run)`);
    console.log(`  host Deployment, ${REPLICAS} pods directly:    ${(baselineMs / 1000).toFixed(1)} s`);
    console.log(`  tenant Deployment, ${REPLICAS} host pods:      ${(tenantMs / 1000).toFixed(1)} s   ratio ${(tenantMs / baselineMs).toFixed(2)}x (target <= 1.5x)`);
    console.log(`  lag tenant pod -> host pod: p50 ${percentile(lags, 50).toFixed(0)} ms, p99 ${percentile(lags, 99).toFixed(0)} ms (${lags.length} pods)`);
    await direct.close();
    await gateway.close();
    const ms = (v: number[]) => `min ${v[0]!.toFixed(1)} / max ${v[v.length - 1]!.toFixed(1)} over ${v.length} creates`;
    return {
      title: 'inline mirror and syncer throughput, tenant vs host or direct',
      rows: [
        { figure: 'pod create through the gateway, p50', unit: 'ms', value: percentile(timesGateway, 50), baseline: { what: 'direct to the tenant API server', value: percentile(timesDirect, 50) }, spread: ms(timesGateway) },
        { figure: 'pod create through the gateway, p99', unit: 'ms', value: percentile(timesGateway, 99), baseline: { what: 'direct to the tenant API server', value: percentile(timesDirect, 99) } },
        { figure: 'host twin present when the create returned', unit: 'pods', value: presentAtReturn, target: { text: `all ${CREATES}`, met: presentAtReturn === CREATES } },
        { figure: `tenant Deployment 0 -> ${REPLICAS}: until all host pods exist`, unit: 's', value: tenantMs / 1000, baseline: { what: 'a host Deployment of as many pods', value: baselineMs / 1000 }, target: { text: '≤ 1.5x', met: tenantMs / baselineMs <= 1.5 } },
        { figure: 'lag tenant pod -> host pod, p50', unit: 'ms', value: percentile(lags, 50), spread: `p99 ${percentile(lags, 99).toFixed(0)} ms over ${lags.length} pods` },
      ],
      notes: [`${CREATES} creates each way; ${REPLICAS} replicas, one run.`],
    };
  } finally {
    await cluster.down();
  }
}

