// Wake time: the first request through the gateway on a sleeping tenant (which wakes it and waits for
// it) against the first request on the same tenant awake, over WAKES rounds of `kplex sleep`, each
// request on a new TLS connection, as a client that starts up sends it. Also the control plane's own
// start (kube-apiserver until /readyz), which the tenant reports. Target: p99 first request on a
// sleeping tenant ≤ 5 s on this machine.
import https from 'node:https';
import YAML from 'yaml';
import type { Tenant } from '../src/tenants/resources.js';
import { tenantsRef } from '../src/tenants/resources.js';
import { devCluster } from './dev-cluster.js';
import { percentile } from './measure.js';
import type { BenchReport } from './report.js';

const WAKES = Number(process.env.BENCH_WAKES ?? 20);
const TARGET_P99_MS = 5_000;

export interface Kubeconfig {
  clusters: { cluster: { server: string; 'certificate-authority-data': string } }[];
  users: { user: { token: string } }[];
}

/** Milliseconds until a whole 200 answer to GET `path` of the tenant, on a connection of its own. */
export function firstRequest(kubeconfig: Kubeconfig, path: string): Promise<number> {
  const c = kubeconfig.clusters[0]!.cluster;
  const server = new URL(c.server);
  const ca = Buffer.from(c['certificate-authority-data'], 'base64').toString('utf8');
  const begin = performance.now();
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: server.hostname, port: server.port, path: `${server.pathname}${path}`, ca, agent: false, headers: { authorization: `Bearer ${kubeconfig.users[0]!.user.token}` } },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.once('end', () => (res.statusCode === 200 ? resolve(performance.now() - begin) : reject(new Error(`answered ${res.statusCode}: ${body}`))));
      },
    );
    req.once('error', reject);
    req.end();
  });
}

const row = (label: string, ms: number[]): string => {
  const sorted = [...ms].sort((a, b) => a - b);
  return `  ${label.padEnd(44)} p50 ${percentile(sorted, 50).toFixed(0).padStart(6)} ms   p99 ${percentile(sorted, 99).toFixed(0).padStart(6)} ms`;
};

export async function benchSleep(): Promise<BenchReport> {
  const c = await devCluster('bench-sleep', 1);
  try {
    await c.kplex(['create', 'sleepy', '--connect=false', '--context', 'kplex-host']);
    const kubeconfig = YAML.parse(await c.kplexOut(['connect', 'sleepy', '--print', '--context', 'kplex-host'])) as Kubeconfig;
    const path = '/api/v1/namespaces/default';
    const awake: number[] = [];
    const sleeping: number[] = [];
    const controlPlane: number[] = [];
    // One request first: the gateway's caches (the token, the route) are warm in every round alike.
    await firstRequest(kubeconfig, path);
    for (let i = 0; i < WAKES; i++) {
      awake.push(await firstRequest(kubeconfig, path));
      await c.kplex(['sleep', 'sleepy', '--context', 'kplex-host']);
      sleeping.push(await firstRequest(kubeconfig, path));
      const t = await c.host.get<Tenant>(tenantsRef('sleepy'));
      if (t.status?.controlPlaneReadyMs) controlPlane.push(t.status.controlPlaneReadyMs);
    }
    console.log(`\nfirst request through the gateway (GET ${path}, new TLS connection), ${WAKES} wakes`);
    console.log(row('awake tenant', awake));
    console.log(row('sleeping tenant (wakes it, then answers)', sleeping));
    console.log(row('  of which the API server start (to /readyz)', controlPlane));
    const p99 = percentile([...sleeping].sort((a, b) => a - b), 99);
    console.log(`  target: p99 on a sleeping tenant ≤ ${TARGET_P99_MS} ms: ${p99 <= TARGET_P99_MS ? 'met' : 'NOT met'}`);
    const sorted = (ms: number[]) => [...ms].sort((a, b) => a - b);
    const range = (ms: number[]) => `min ${Math.min(...ms).toFixed(0)} / max ${Math.max(...ms).toFixed(0)} over ${ms.length} wakes`;
    const awakeSorted = sorted(awake);
    return {
      title: 'first request through the gateway on a sleeping tenant vs the same tenant awake',
      rows: [
        { figure: 'first request on a sleeping tenant, p50', unit: 'ms', value: percentile(sorted(sleeping), 50), baseline: { what: 'awake', value: percentile(awakeSorted, 50) }, spread: range(sleeping) },
        { figure: 'first request on a sleeping tenant, p99', unit: 'ms', value: p99, baseline: { what: 'awake', value: percentile(awakeSorted, 99) }, target: { text: `≤ ${TARGET_P99_MS} ms`, met: p99 <= TARGET_P99_MS } },
        ...(controlPlane.length ? [{ figure: 'of which the API server start (to /readyz), p50', unit: 'ms', value: percentile(sorted(controlPlane), 50), spread: range(controlPlane) }] : []),
      ],
      notes: [`GET ${path} on a new TLS connection, ${WAKES} wakes.`],
    };
  } finally {
    await c.down();
  }
}
