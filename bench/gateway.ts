// Gateway overhead: GET and LIST through the gateway against the same tenant API server directly, in one
// run. Targets: >= 0.8x direct throughput at 32 concurrent clients, <= 2 ms added p99 for GET.
// Direct and gateway runs alternate for a few rounds so that drift of a noisy machine hits both alike,
// and the CPU each process spends per request shows where the difference goes.
import { Agent } from 'undici';
import YAML from 'yaml';
import { KubeClient, core, type KubeObject } from '../src/k8s/client.js';
import { combine, load, type LoadResult } from './load.js';
import { addCpu, sampleCpu, type CpuSample } from './cpu.js';
import { devCluster } from './dev-cluster.js';

const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** Long enough for the JIT to have compiled the gateway's request path: steady state is what is measured. */
const WARMUP_SECONDS = 3;
const ROLES = ['client', 'gateway', 'tenant API server', 'etcd'];

interface Kubeconfig {
  clusters: { cluster: { server: string; 'certificate-authority-data': string } }[];
  users: { user: Record<string, string> }[];
}

interface Measured {
  result: LoadResult;
  /** CPU µs per request, by role. */
  cpuPerRequest: Map<string, number>;
}

const d = (s: string | undefined): string => Buffer.from(s ?? '', 'base64').toString('utf8');

export async function benchGateway(): Promise<void> {
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

    const directAgent = new Agent({ connections: CONCURRENCY, connect: { ca: direct.ca, cert: direct.cert, key: direct.key } });
    const gatewayAgent = new Agent({ connections: CONCURRENCY, connect: { ca: gatewayCa } });
    const cases = [
      [`GET, ${CONCURRENCY} clients`, '/api/v1/namespaces/default/configmaps/cm-0', CONCURRENCY],
      [`LIST 100, ${CONCURRENCY} clients`, '/api/v1/namespaces/default/configmaps', CONCURRENCY],
      // Unsaturated: what the gateway adds to one request, without queueing on the shared cores.
      ['GET, 1 client', '/api/v1/namespaces/default/configmaps/cm-0', 1],
    ] as const;
    const rows: [string, Measured, Measured][] = [];
    for (const [what, p, concurrency] of cases) {
      const paths = {
        direct: (seconds: number) => load(`${direct.server}${p}`, { dispatcher: directAgent, concurrency, seconds }),
        gateway: (seconds: number) => load(`${gatewayServer}${p}`, { dispatcher: gatewayAgent, headers: { authorization: `Bearer ${token}` }, concurrency, seconds }),
      };
      await paths.direct(WARMUP_SECONDS);
      await paths.gateway(WARMUP_SECONDS);
      const runs = { direct: [] as LoadResult[], gateway: [] as LoadResult[] };
      const cpu: Record<'direct' | 'gateway', CpuSample> = { direct: new Map(), gateway: new Map() };
      for (let round = 0; round < ROUNDS; round++) {
        for (const which of ['direct', 'gateway'] as const) {
          const before = sampleCpu(cluster.dataDir);
          runs[which].push(await paths[which](SECONDS));
          addCpu(cpu[which], before, sampleCpu(cluster.dataDir));
        }
      }
      const measured = (which: 'direct' | 'gateway'): Measured => {
        const result = combine(runs[which]);
        const perRequest = [...cpu[which]].map(([role, ms]): [string, number] => [role, (ms * 1000) / Math.max(1, result.requests)]);
        return { result, cpuPerRequest: new Map(perRequest) };
      };
      rows.push([what, measured('direct'), measured('gateway')]);
    }
    await directAgent.close();
    await gatewayAgent.close();
    report(rows);
  } finally {
    await cluster.down();
  }
}

function report(rows: [string, Measured, Measured][]): void {
  console.log(`\ngateway vs direct: ${ROUNDS} alternating rounds of ${SECONDS}s each (same run, same tenant API server)`);
  console.log('request               direct req/s  gateway req/s  ratio   direct p50/p99 ms   gateway p50/p99 ms   added p99 ms  errors');
  for (const [what, { result: a }, { result: b }] of rows) {
    console.log(
      `${what.padEnd(22)}${a.throughput.toFixed(0).padStart(12)}${b.throughput.toFixed(0).padStart(15)}${(b.throughput / a.throughput).toFixed(2).padStart(7)}x` +
        `${`${a.p50ms.toFixed(2)}/${a.p99ms.toFixed(2)}`.padStart(20)}${`${b.p50ms.toFixed(2)}/${b.p99ms.toFixed(2)}`.padStart(21)}${(b.p99ms - a.p99ms).toFixed(2).padStart(15)}${String(a.errors + b.errors).padStart(8)}`,
    );
  }
  console.log('\nCPU per request, µs (direct → through the gateway); on 2 shared cores, throughput follows their sum');
  console.log(`request               ${ROLES.map((r) => r.padStart(22)).join('')}`);
  for (const [what, a, b] of rows) {
    const cell = (role: string) => `${(a.cpuPerRequest.get(role) ?? 0).toFixed(0)} → ${(b.cpuPerRequest.get(role) ?? 0).toFixed(0)}`.padStart(22);
    console.log(`${what.padEnd(22)}${ROLES.map(cell).join('')}`);
  }
}
