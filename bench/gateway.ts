// Gateway overhead: GET and LIST through the gateway against the same tenant API server directly, in one
// run, at 32 concurrent clients. Targets: >= 0.8x direct throughput, <= 2 ms added p99 for GET.
import { Agent } from 'undici';
import YAML from 'yaml';
import { KubeClient, core, type KubeObject } from '../src/k8s/client.js';
import { load, type LoadResult } from './load.js';
import { devCluster } from './dev-cluster.js';

const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);

interface Kubeconfig {
  clusters: { cluster: { server: string; 'certificate-authority-data': string } }[];
  users: { user: Record<string, string> }[];
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
    const rows: [string, LoadResult, LoadResult][] = [];
    const cases = [
      [`GET, ${CONCURRENCY} clients`, '/api/v1/namespaces/default/configmaps/cm-0', CONCURRENCY],
      [`LIST 100, ${CONCURRENCY} clients`, '/api/v1/namespaces/default/configmaps', CONCURRENCY],
      // Unsaturated: what the gateway adds to one request, without queueing on the shared cores.
      ['GET, 1 client', '/api/v1/namespaces/default/configmaps/cm-0', 1],
    ] as const;
    for (const [what, p, concurrency] of cases) {
      const gw = { dispatcher: gatewayAgent, headers: { authorization: `Bearer ${token}` }, concurrency };
      // Warm both paths, then measure them back to back.
      await load(`${direct.server}${p}`, { dispatcher: directAgent, concurrency, seconds: 1 });
      await load(`${gatewayServer}${p}`, { ...gw, seconds: 1 });
      const directResult = await load(`${direct.server}${p}`, { dispatcher: directAgent, concurrency, seconds: SECONDS });
      const gatewayResult = await load(`${gatewayServer}${p}`, { ...gw, seconds: SECONDS });
      rows.push([what, directResult, gatewayResult]);
    }
    await directAgent.close();
    await gatewayAgent.close();

    console.log(`\ngateway vs direct, ${SECONDS}s each (same run, same tenant API server)`);
    console.log('request               direct req/s  gateway req/s  ratio   direct p50/p99 ms   gateway p50/p99 ms   added p99 ms  errors');
    for (const [what, a, b] of rows) {
      console.log(
        `${what.padEnd(22)}${a.throughput.toFixed(0).padStart(12)}${b.throughput.toFixed(0).padStart(15)}${(b.throughput / a.throughput).toFixed(2).padStart(7)}x` +
          `${`${a.p50ms.toFixed(2)}/${a.p99ms.toFixed(2)}`.padStart(20)}${`${b.p50ms.toFixed(2)}/${b.p99ms.toFixed(2)}`.padStart(21)}${(b.p99ms - a.p99ms).toFixed(2).padStart(15)}${String(a.errors + b.errors).padStart(8)}`,
      );
    }
  } finally {
    await cluster.down();
  }
}

