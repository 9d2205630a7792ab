// Gateway overhead: GET and LIST through the gateway against the same tenant API server directly, in one
// run. Targets: >= 0.8x direct throughput at 32 concurrent clients, <= 2 ms added p99 for GET.
// A reference proxy (bench/reference-proxy.ts: TLS and forwarding only) runs beside them, so the same run
// shows what any Node proxy hop costs here. Direct, reference and gateway runs alternate for a few rounds
// so that drift of a noisy machine hits all alike, and the CPU each process spends per request shows
// where the difference goes.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent } from 'undici';
import YAML from 'yaml';
import { KubeClient, core, type KubeObject } from '../src/k8s/client.js';
import { combine, load, type LoadResult } from './load.js';
import { addCpu, sampleCpu, type CpuSample } from './cpu.js';
import { devCluster } from './dev-cluster.js';
import type { ReferenceProxyConfig } from './reference-proxy.js';
import { formatNumber, type BenchReport, type BenchRow } from './report.js';

const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** Long enough for the JIT to have compiled the gateway's request path: steady state is what is measured. */
const WARMUP_SECONDS = 3;
const ROLES = ['client', 'reference proxy', 'gateway', 'tenant API server', 'etcd'];
const PATHS = ['direct', 'reference', 'gateway'] as const;
type Path = (typeof PATHS)[number];

interface Kubeconfig {
  clusters: { cluster: { server: string; 'certificate-authority-data': string } }[];
  users: { user: Record<string, string> }[];
}

interface Measured {
  result: LoadResult;
  /** CPU µs per request, by role. */
  cpuPerRequest: Map<string, number>;
  /** Throughput of each round, for the run-to-run spread. */
  roundThroughputs: number[];
}

const d = (s: string | undefined): string => Buffer.from(s ?? '', 'base64').toString('utf8');

export async function benchGateway(): Promise<BenchReport> {
  const cluster = await devCluster('bench-gateway');
  try {
    await cluster.kplex(['create', 'bench', '--connect=false', '--context', 'kplex-host']);
    const tenantSecret = await cluster.host.get<{ data: Record<string, string> } & KubeObject>(core('secrets', 'kplex-bench', 'vc-bench'));
    const direct = { server: d(tenantSecret.data.server), ca: d(tenantSecret.data['ca.crt']), cert: d(tenantSecret.data['tls.crt']), key: d(tenantSecret.data['tls.key']) };
    const viaGateway = YAML.parse(await cluster.kplexOut(['connect', 'bench', '--print', '--context', 'kplex-host'])) as Kubeconfig;
    const gatewayServer = viaGateway.clusters[0]!.cluster.server;
    const token = viaGateway.users[0]!.user.token!;
    const gatewayCa = d(viaGateway.clusters[0]!.cluster['certificate-authority-data']);

    // 100 configmaps of ~1 KiB to list, one to get.
    const tenant = new KubeClient(direct);
    for (let i = 0; i < 100; i++) {
      await tenant.create(core('configmaps', 'default'), { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `cm-${i}` }, data: { v: 'x'.repeat(1024) } });
    }
    await tenant.close();

    const reference = await startReferenceProxy(cluster.dataDir, {
      ...direct,
      servingCert: readFileSync(path.join(cluster.dataDir, 'gateway', 'gateway.crt'), 'utf8'),
      servingKey: readFileSync(path.join(cluster.dataDir, 'gateway', 'gateway.key'), 'utf8'),
      prefix: '/tenants/bench',
    });
    const directAgent = new Agent({ connections: CONCURRENCY, connect: { ca: direct.ca, cert: direct.cert, key: direct.key } });
    // The reference proxy serves the gateway's certificate, so one agent trusts both.
    const gatewayAgent = new Agent({ connections: CONCURRENCY, connect: { ca: gatewayCa } });
    try {
      const cases = [
        [`GET, ${CONCURRENCY} clients`, '/api/v1/namespaces/default/configmaps/cm-0', CONCURRENCY],
        [`LIST 100, ${CONCURRENCY} clients`, '/api/v1/namespaces/default/configmaps', CONCURRENCY],
        // Unsaturated: what the gateway adds to one request, without queueing on the shared cores.
        ['GET, 1 client', '/api/v1/namespaces/default/configmaps/cm-0', 1],
      ] as const;
      const rows: Row[] = [];
      for (const [what, p, concurrency] of cases) {
        const paths: Record<Path, (seconds: number) => Promise<LoadResult>> = {
          direct: (seconds) => load(`${direct.server}${p}`, { dispatcher: directAgent, concurrency, seconds }),
          reference: (seconds) => load(`https://127.0.0.1:${reference.port}/tenants/bench${p}`, { dispatcher: gatewayAgent, concurrency, seconds }),
          gateway: (seconds) => load(`${gatewayServer}${p}`, { dispatcher: gatewayAgent, headers: { authorization: `Bearer ${token}` }, concurrency, seconds }),
        };
        for (const which of PATHS) await paths[which](WARMUP_SECONDS);
        const runs: Record<Path, LoadResult[]> = { direct: [], reference: [], gateway: [] };
        const cpu: Record<Path, CpuSample> = { direct: new Map(), reference: new Map(), gateway: new Map() };
        for (let round = 0; round < ROUNDS; round++) {
          for (const which of PATHS) {
            const before = sampleCpu(cluster.dataDir);
            runs[which].push(await paths[which](SECONDS));
            addCpu(cpu[which], before, sampleCpu(cluster.dataDir));
          }
        }
        const measured = (which: Path): Measured => {
          const result = combine(runs[which]);
          const perRequest = [...cpu[which]].map(([role, ms]): [string, number] => [role, (ms * 1000) / Math.max(1, result.requests)]);
          return { result, cpuPerRequest: new Map(perRequest), roundThroughputs: runs[which].map((r) => r.throughput) };
        };
        rows.push({ what, direct: measured('direct'), reference: measured('reference'), gateway: measured('gateway') });
      }
      return report(rows);
    } finally {
      await directAgent.close();
      await gatewayAgent.close();
      reference.process.kill('SIGTERM');
    }
  } finally {
    await cluster.down();
  }
}

/** Starts bench/reference-proxy.js as a child whose command line names `dataDir`, so its CPU is sampled. */
async function startReferenceProxy(dataDir: string, config: ReferenceProxyConfig): Promise<{ process: ChildProcess; port: number }> {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'reference-proxy.js');
  const child = spawn(process.execPath, [script, dataDir], { stdio: ['pipe', 'pipe', 'inherit'] });
  child.stdin!.end(JSON.stringify(config));
  const [line] = (await Promise.race([once(child.stdout!, 'data'), once(child, 'exit').then(() => { throw new Error('the reference proxy exited at start'); })])) as [Buffer];
  return { process: child, port: Number(line.toString().trim()) };
}

interface Row {
  what: string;
  direct: Measured;
  reference: Measured;
  gateway: Measured;
}

function report(rows: Row[]): BenchReport {
  const ratio = (m: Measured, base: Measured) => `${(m.result.throughput / base.result.throughput).toFixed(2)}x`;
  const latency = (m: Measured) => `${m.result.p50ms.toFixed(2)}/${m.result.p99ms.toFixed(2)}`;
  const columns: [string, number, (row: Row) => string][] = [
    ['direct req/s', 14, (r) => r.direct.result.throughput.toFixed(0)],
    ['reference req/s', 17, (r) => r.reference.result.throughput.toFixed(0)],
    ['ratio', 7, (r) => ratio(r.reference, r.direct)],
    ['gateway req/s', 15, (r) => r.gateway.result.throughput.toFixed(0)],
    ['ratio', 7, (r) => ratio(r.gateway, r.direct)],
    ['direct p50/p99 ms', 19, (r) => latency(r.direct)],
    ['reference p50/p99', 19, (r) => latency(r.reference)],
    ['gateway p50/p99', 17, (r) => latency(r.gateway)],
    ['gateway added p99', 19, (r) => (r.gateway.result.p99ms - r.direct.result.p99ms).toFixed(2)],
    ['errors', 8, (r) => String(r.direct.result.errors + r.reference.result.errors + r.gateway.result.errors)],
  ];
  console.log(`\ndirect, reference proxy and gateway: ${ROUNDS} alternating rounds of ${SECONDS}s each (same run, same tenant API server)`);
  console.log(`${'request'.padEnd(22)}${columns.map(([title, width]) => title.padStart(width)).join('')}`);
  for (const row of rows) console.log(`${row.what.padEnd(22)}${columns.map(([, width, cell]) => cell(row).padStart(width)).join('')}`);
  console.log('\nCPU per request, µs (direct / reference proxy / gateway); on 2 shared cores, throughput follows their sum');
  console.log(`request               ${ROLES.map((r) => r.padStart(22)).join('')}`);
  for (const row of rows) {
    const cell = (role: string) => PATHS.map((which) => (row[which].cpuPerRequest.get(role) ?? 0).toFixed(0)).join(' / ').padStart(22);
    console.log(`${row.what.padEnd(22)}${ROLES.map(cell).join('')}`);
  }
  return { title: 'gateway overhead: GET and LIST through the gateway vs directly to the tenant API server', rows: rows.flatMap(figures), notes: [`${ROUNDS} alternating rounds of ${SECONDS} s per path (direct, reference proxy, gateway) after ${WARMUP_SECONDS} s of warm-up; the 2 ms added-p99 target is held to the unsaturated GET (1 client).`] };
}

const roundSpread = (m: Measured): string => `min ${formatNumber(Math.min(...m.roundThroughputs))} / max ${formatNumber(Math.max(...m.roundThroughputs))} over ${m.roundThroughputs.length} rounds`;

/** A case's figures as data: throughput of the gateway and the reference proxy, and the gateway's p99, each against direct. */
function figures(row: Row): BenchRow[] {
  const direct = { what: 'direct', value: row.direct.result.throughput };
  const saturated = row.what.includes(`${CONCURRENCY} clients`);
  const ratio = row.gateway.result.throughput / row.direct.result.throughput;
  const added = row.gateway.result.p99ms - row.direct.result.p99ms;
  return [
    { figure: `${row.what}: gateway throughput`, unit: 'req/s', value: row.gateway.result.throughput, baseline: direct, spread: roundSpread(row.gateway), ...(saturated ? { target: { text: '≥ 0.8x direct', met: ratio >= 0.8 } } : {}) },
    { figure: `${row.what}: reference proxy throughput`, unit: 'req/s', value: row.reference.result.throughput, baseline: direct, spread: roundSpread(row.reference) },
    {
      figure: `${row.what}: gateway p99`,
      unit: 'ms',
      value: row.gateway.result.p99ms,
      baseline: { what: 'direct', value: row.direct.result.p99ms },
      ...(row.what === 'GET, 1 client' ? { target: { text: '≤ 2 ms added', met: added <= 2 } } : {}),
    },
    { figure: `${row.what}: errors, all paths`, unit: 'requests', value: row.direct.result.errors + row.reference.result.errors + row.gateway.result.errors, target: { text: '0', met: row.direct.result.errors + row.reference.result.errors + row.gateway.result.errors === 0 } },
  ];
}
