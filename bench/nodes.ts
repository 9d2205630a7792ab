// Real nodes, each figure against a baseline of the same run:
// - `dev up` until the real node is Ready (fresh data folder each time; min / median / max);
// - a pod from create until Running for an image the node has: through the gateway into a tenant vs
//   directly on the host, both with kubectl, interleaved;
// - a Deployment until all its replicas are available (`kubectl rollout status`): tenant vs host, on
//   the real node and on simulated nodes.
// Where a tenant's time goes is read from watches on both sides: when the host twin appeared, when it
// ran, and when the tenant's pod said so.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { KubeClient, core, type KubeObject } from '../src/k8s/client.js';
import { SIMULATED_NODE_ANNOTATION } from '../src/controlplane/components.js';
import { NODE_NAME } from '../src/dev/node-config.js';
import { devCluster, kubectlPath } from './dev-cluster.js';
import { firstTimes, median, percentile, sleep } from './measure.js';
import type { BenchReport, BenchRow } from './report.js';

const UP_RUNS = Number(process.env.BENCH_UP_RUNS ?? 3);
const POD_RUNS = Number(process.env.BENCH_POD_RUNS ?? 10);
const DEPLOY_RUNS = Number(process.env.BENCH_DEPLOY_RUNS ?? 2);
const REPLICAS = Number(process.env.BENCH_REPLICAS ?? 100);
const SIMULATED = 3;
const TENANT = 'bench';
/** Where the host's own pods go: a namespace of the host like the tenant's, without a tenant. */
const HOST_NS = 'baseline';

type Pod = KubeObject & { status?: { phase?: string; conditions?: { type: string; status: string }[] } };
type Node = KubeObject & { status?: { conditions?: { type: string; status: string }[] } };

const d = (s: string | undefined): string => Buffer.from(s ?? '', 'base64').toString('utf8');
const s = (ms: number): string => (ms / 1000).toFixed(2);
/** Where a long run is, on stderr: the tables go to stdout. */
const progress = (what: string): void => void process.stderr.write(`[bench nodes ${new Date().toISOString().slice(11, 19)}] ${what}\n`);

function kubectl(kubeconfig: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(kubectlPath(), ['--kubeconfig', kubeconfig, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`kubectl ${args.join(' ')} exited with ${code}: ${err.trim()}`))));
    child.stdin.end(input ?? '');
  });
}

// The image is on the node after the warm-up, and it stays the one the node has (nginx means :latest,
// which kubelet would otherwise ask the registry about every time).
const container = { name: 'c', image: 'nginx', imagePullPolicy: 'IfNotPresent' };
/** Simulated nodes take only pods that tolerate their taint, and these should go nowhere else. */
const onSimulated = { nodeSelector: { type: 'kwok' }, tolerations: [{ key: SIMULATED_NODE_ANNOTATION, operator: 'Exists', effect: 'NoSchedule' }] };

const pod = (name: string): KubeObject => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, labels: { bench: 'pod' } }, spec: { containers: [container], terminationGracePeriodSeconds: 1 } });
const deployment = (name: string, replicas: number, simulated: boolean): KubeObject => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name },
  spec: {
    replicas,
    selector: { matchLabels: { app: name } },
    template: { metadata: { labels: { app: name } }, spec: { containers: [container], terminationGracePeriodSeconds: 1, ...(simulated ? onSimulated : {}) } },
  },
});

const isRunning = (p: Pod): boolean => p.status?.phase === 'Running';
const isReady = (p: Pod): boolean => !!p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');

async function until<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs: number): Promise<T> {
  const begin = performance.now();
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (performance.now() - begin > timeoutMs) throw new Error(`${what}: not after ${timeoutMs / 1000} s`);
    await sleep(100);
  }
}

interface Side {
  what: 'tenant' | 'host';
  kubeconfig: string;
  namespace: string;
}

export async function benchNodes(): Promise<BenchReport> {
  // dev up until the real node is Ready; the last cluster stays up for the rest.
  const upMs: number[] = [];
  const downMs: number[] = [];
  let cluster: Awaited<ReturnType<typeof devCluster>> | undefined;
  for (let i = 0; i < UP_RUNS; i++) {
    progress(`dev up ${i + 1}/${UP_RUNS}`);
    const t0 = performance.now();
    cluster = await devCluster('bench-nodes', SIMULATED, 1);
    const c = cluster;
    // dev up waits for the real node; without root or containerd it starts none, and this has nothing to measure.
    await until('the real node Ready', async () => {
      const node = await c.host.find<Node>(core('nodes', undefined, NODE_NAME));
      if (!node) throw new Error(`dev up started no real node ${NODE_NAME} (it needs root, containerd and the node images: see the README)`);
      return node.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True') ? true : undefined;
    }, 120_000).catch(async (err: unknown) => {
      await c.down();
      throw err;
    });
    upMs.push(performance.now() - t0);
    if (i === UP_RUNS - 1) break;
    const t1 = performance.now();
    await cluster.down();
    downMs.push(performance.now() - t1);
  }
  const c = cluster!;
  const rows: BenchRow[] = [{ figure: 'dev up until the real node is Ready, median', unit: 's', value: median(upMs) / 1000, spread: `min ${s(Math.min(...upMs))} / max ${s(Math.max(...upMs))} over ${UP_RUNS} runs` }];
  console.log(`\ndev up with 1 real node and ${SIMULATED} simulated nodes, fresh data folder, until the real node is Ready: ${UP_RUNS} runs`);
  console.log(`  up    min ${s(Math.min(...upMs))} s  median ${s(median(upMs))} s  max ${s(Math.max(...upMs))} s`);
  if (downMs.length) console.log(`  down  min ${s(Math.min(...downMs))} s  median ${s(median(downMs))} s  max ${s(Math.max(...downMs))} s (${downMs.length} runs)`);

  const abort = new AbortController();
  /** The tenant API server without the gateway: what the tenant's pods are, for the watches. */
  let direct: KubeClient | undefined;
  try {
    await c.kplex(['create', TENANT, '--connect=false', '--context', 'kplex-host']);
    const tenantKc = path.join(c.dir, 'tenant.kubeconfig');
    writeFileSync(tenantKc, await c.kplexOut(['connect', TENANT, '--print', '--context', 'kplex-host']));
    const hostKc = path.join(c.dataDir, 'admin.kubeconfig');
    await kubectl(hostKc, ['create', 'namespace', HOST_NS]);
    const secret = await c.host.get<KubeObject & { data: Record<string, string> }>(core('secrets', `kplex-${TENANT}`, `vc-${TENANT}`));
    const tenantApi = (direct = new KubeClient({ server: d(secret.data.server), ca: d(secret.data['ca.crt']), cert: d(secret.data['tls.crt']), key: d(secret.data['tls.key']) }));
    const host: Side = { what: 'host', kubeconfig: hostKc, namespace: HOST_NS };
    const tenant: Side = { what: 'tenant', kubeconfig: tenantKc, namespace: 'default' };

    // Marks: `host:NAME` for the host's own pods, `twin:NAME` for a tenant pod's twin, `tenant:NAME` for
    // the tenant's pod as the tenant API server has it; each `seen`, `running` and `ready`.
    const stages = (side: string, name: string | undefined, p: Pod): string[] =>
      name ? [`seen:${side}:${name}`, ...(isRunning(p) ? [`running:${side}:${name}`] : []), ...(isReady(p) ? [`ready:${side}:${name}`] : [])] : [];
    const at = new Map<string, number>();
    const watched = [
      firstTimes(c.host, core('pods', HOST_NS), (o) => stages('host', o.metadata.name, o as Pod), abort.signal),
      firstTimes(c.host, core('pods', `kplex-${TENANT}`), (o) => stages('twin', o.metadata.annotations?.['kplex.dev/name'], o as Pod), abort.signal),
      firstTimes(tenantApi, core('pods', 'default'), (o) => stages('tenant', o.metadata.name, o as Pod), abort.signal),
    ];
    const mark = (m: string): number | undefined => at.get(m) ?? watched.map((w) => w.get(m)).find((t) => t !== undefined);

    /** Until no pod of either side is left on the host or in the tenant: each measure starts on a quiet machine. */
    const quiet = async (): Promise<void> => {
      await until('pods gone', async () => {
        const counts = await Promise.all([c.host.list(core('pods', HOST_NS)), c.host.list(core('pods', `kplex-${TENANT}`)), tenantApi.list(core('pods', 'default'))]);
        return counts.every((l) => l.items.length === 0) ? true : undefined;
      }, 600_000);
      await sleep(1000);
    };

    const podRunning = async (side: Side, name: string): Promise<number> => {
      const t0 = performance.now();
      await kubectl(side.kubeconfig, ['-n', side.namespace, 'create', '-f', '-'], JSON.stringify(pod(name)));
      await kubectl(side.kubeconfig, ['-n', side.namespace, 'wait', `pod/${name}`, '--for=jsonpath={.status.phase}=Running', '--timeout=120s']);
      const ms = performance.now() - t0;
      at.set(`created:${side.what}:${name}`, t0);
      await kubectl(side.kubeconfig, ['-n', side.namespace, 'delete', 'pod', name, '--wait=true', '--timeout=120s']);
      await quiet();
      return ms;
    };

    // Warm-up: the first pod pulls nginx from the local registry onto the node.
    await podRunning(host, 'warm-host');
    await podRunning(tenant, 'warm-tenant');
    const podMs: Record<Side['what'], number[]> = { host: [], tenant: [] };
    for (let i = 0; i < POD_RUNS; i++) {
      // Alternate who goes first, so that neither always follows the other's clean-up.
      progress(`pods, round ${i + 1}/${POD_RUNS}`);
      for (const side of i % 2 ? [tenant, host] : [host, tenant]) podMs[side.what].push(await podRunning(side, `p${i}-${side.what}`));
    }
    const sorted = (v: number[]) => [...v].sort((a, b) => a - b);
    const h = sorted(podMs.host);
    const t = sorted(podMs.tenant);
    console.log(`\npod create -> Running (nginx, on the node already; kubectl create + kubectl wait): ${POD_RUNS} each, interleaved`);
    console.log(`  host    p50 ${s(percentile(h, 50))} s  p90 ${s(percentile(h, 90))} s`);
    console.log(`  tenant  p50 ${s(percentile(t, 50))} s  p90 ${s(percentile(t, 90))} s   ratio p50 ${(percentile(t, 50) / percentile(h, 50)).toFixed(2)}x  p90 ${(percentile(t, 90) / percentile(h, 90)).toFixed(2)}x (target <= 1.2x)`);
    const lags = (from: string, to: string) => sorted(Array.from({ length: POD_RUNS }, (_, i) => (mark(`${to}:p${i}-tenant`) ?? NaN) - (mark(`${from}:p${i}-tenant`) ?? NaN)));
    const show = (v: number[]) => `p50 ${s(percentile(v, 50))} s  p90 ${s(percentile(v, 90))} s`;
    console.log(`  tenant's path: create -> twin seen ${show(lags('created:tenant', 'seen:twin'))}; twin seen -> twin Running ${show(lags('seen:twin', 'running:twin'))}; twin Running -> tenant Running ${show(lags('running:twin', 'running:tenant'))}`);
    rows.push(
      { figure: 'pod create -> Running, tenant, p50', unit: 's', value: percentile(t, 50) / 1000, baseline: { what: 'host', value: percentile(h, 50) / 1000 }, target: { text: '≤ 1.2x', met: percentile(t, 50) / percentile(h, 50) <= 1.2 } },
      { figure: 'pod create -> Running, tenant, p90', unit: 's', value: percentile(t, 90) / 1000, baseline: { what: 'host', value: percentile(h, 90) / 1000 }, spread: `${POD_RUNS} pods each`, target: { text: '≤ 1.2x', met: percentile(t, 90) / percentile(h, 90) <= 1.2 } },
    );
    const hostLags = sorted(Array.from({ length: POD_RUNS }, (_, i) => (mark(`running:host:p${i}-host`) ?? NaN) - (mark(`seen:host:p${i}-host`) ?? NaN)));
    console.log(`  host's own: pod seen -> Running ${show(hostLags)}`);

    for (const simulated of [false, true]) {
      const where = simulated ? `${SIMULATED} simulated nodes` : 'the real node';
      const ms: Record<Side['what'], number[]> = { host: [], tenant: [] };
      const spans: string[] = [];
      for (let i = 0; i < DEPLOY_RUNS; i++) {
        for (const side of i % 2 ? [tenant, host] : [host, tenant]) {
          const name = `d${i}-${simulated ? 'sim' : 'real'}`;
          progress(`${side.what} Deployment ${name} of ${REPLICAS}`);
          const t0 = performance.now();
          await kubectl(side.kubeconfig, ['-n', side.namespace, 'create', '-f', '-'], JSON.stringify(deployment(name, REPLICAS, simulated)));
          await kubectl(side.kubeconfig, ['-n', side.namespace, 'rollout', 'status', `deployment/${name}`, '--timeout=900s']);
          ms[side.what].push(performance.now() - t0);
          if (side.what === 'tenant') spans.push(tenantSpans(t0, name, watched));
          await kubectl(side.kubeconfig, ['-n', side.namespace, 'delete', 'deployment', name, '--wait=true', '--timeout=600s']);
          await quiet();
        }
      }
      console.log(`\nDeployment of ${REPLICAS} replicas until all available (kubectl rollout status), on ${where}: ${DEPLOY_RUNS} each, interleaved`);
      for (let i = 0; i < DEPLOY_RUNS; i++) console.log(`  run ${i + 1}: host ${s(ms.host[i]!)} s  tenant ${s(ms.tenant[i]!)} s  ratio ${(ms.tenant[i]! / ms.host[i]!).toFixed(2)}x (target <= 1.2x)`);
      for (const span of spans) console.log(`  tenant's path: ${span}`);
      const ratios = ms.tenant.map((x, i) => x / ms.host[i]!);
      rows.push({
        figure: `Deployment of ${REPLICAS} until available on ${where}, tenant, median`,
        unit: 's',
        value: median(ms.tenant) / 1000,
        baseline: { what: 'host', value: median(ms.host) / 1000 },
        spread: `ratio min ${Math.min(...ratios).toFixed(2)}x / max ${Math.max(...ratios).toFixed(2)}x over ${DEPLOY_RUNS} runs`,
        target: { text: '≤ 1.2x', met: median(ms.tenant) / median(ms.host) <= 1.2 },
      });
    }
    return { title: 'real nodes: dev up, pods and Deployments, tenant vs host', rows, notes: [`${UP_RUNS} dev ups, ${POD_RUNS} pods each side, ${DEPLOY_RUNS} Deployments each side and kind of node.`] };
  } finally {
    // Watches end first: closing a client waits for its requests, a watch included.
    abort.abort();
    await direct?.close();
    await c.down();
  }
}

/**
 * Where a tenant Deployment's time went: when the last of its pods reached each stage, from the
 * Deployment's create, and per pod the lag from one stage to the next (p50 / max).
 */
function tenantSpans(t0: number, deploymentName: string, watched: Map<string, number>[]): string {
  const times = new Map<string, number>();
  for (const w of watched) for (const [k, v] of w) if (k.split(':')[2]!.startsWith(`${deploymentName}-`)) times.set(k, v);
  const stage = (prefix: string): Map<string, number> => new Map([...times].filter(([k]) => k.startsWith(`${prefix}:`)).map(([k, v]) => [k.split(':')[2]!, v]));
  const last = (prefix: string): string => {
    const v = [...stage(prefix).values()];
    return v.length ? `${s(Math.max(...v) - t0)} s` : '-';
  };
  const lag = (from: string, to: string): string => {
    const a = stage(from);
    const v = [...stage(to)].filter(([n]) => a.has(n)).map(([n, t]) => t - a.get(n)!).sort((x, y) => x - y);
    return v.length ? `${s(percentile(v, 50))} / ${s(v[v.length - 1]!)} s` : '-';
  };
  return [
    `last tenant pod seen ${last('seen:tenant')}, twin seen ${last('seen:twin')}, twin Running ${last('running:twin')}, twin Ready ${last('ready:twin')}, tenant Ready ${last('ready:tenant')} (${stage('seen:tenant').size} pods)`,
    `per pod (p50 / max): tenant pod -> twin ${lag('seen:tenant', 'seen:twin')}, twin -> twin Ready ${lag('seen:twin', 'ready:twin')}, twin Ready -> tenant Ready ${lag('ready:twin', 'ready:tenant')}`,
  ].join('\n    ');
}
