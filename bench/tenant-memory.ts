// Memory of a tenant on this machine (the local provider): proportional memory (PSS: shared pages of
// a binary split among the processes that run it) and resident memory (RSS) of each process a tenant
// runs (kube-apiserver, kube-controller-manager, and its DNS server), with min / median / max over
// TENANTS tenants after they have settled; the host's own CoreDNS, serving the whole host cluster, is
// the baseline for the DNS server. Then the CPU each used while idle over IDLE_MS, and their memory
// again at its end (BENCH_IDLE_MS=600000: after 10 minutes idle). `kplex create` times are the whole
// command's, with the tenants before it already running.
import { devCluster } from './dev-cluster.js';
import { sleep } from './measure.js';
import { cpuMs, memoryMiB, pidOf, spread } from './process-stats.js';

const TENANTS = Number(process.env.BENCH_TENANTS ?? 3);
const SETTLE_MS = Number(process.env.BENCH_SETTLE_MS ?? 30_000);
const IDLE_MS = Number(process.env.BENCH_IDLE_MS ?? 60_000);
const PROCESSES = ['kube-apiserver', 'kube-controller-manager', 'coredns'] as const;
const label = (program: string): string => (program === 'coredns' ? 'coredns (tenant DNS)' : program);

type Memory = { pss: number; rss: number };
const row = (name: string, m: Memory[]): string => `  ${name.padEnd(28)} PSS ${spread(m.map((x) => x.pss))}   RSS ${spread(m.map((x) => x.rss))}`;

/** Each process's memory, by program, and each tenant's sum. */
function memoryTable(pids: Record<string, number[]>): string[] {
  const totals = Array.from({ length: TENANTS }, () => ({ pss: 0, rss: 0 }));
  const lines = PROCESSES.map((program) => {
    const values = pids[program]!.map(memoryMiB);
    values.forEach((v, i) => {
      totals[i]!.pss += v.pss;
      totals[i]!.rss += v.rss;
    });
    return row(label(program), values);
  });
  return [...lines, row('all of a tenant', totals)];
}

export async function benchTenantMemory(): Promise<void> {
  const c = await devCluster('bench-memory', 1, 1);
  try {
    const createSeconds: number[] = [];
    for (let i = 0; i < TENANTS; i++) {
      const start = performance.now();
      await c.kplex(['create', `mem-${i}`, '--connect=false', '--context', 'kplex-host']);
      createSeconds.push((performance.now() - start) / 1000);
    }
    await sleep(SETTLE_MS);
    const pids = Object.fromEntries(PROCESSES.map((p) => [p, Array.from({ length: TENANTS }, (_, i) => pidOf(p, `/tenants/mem-${i}/`))]));
    const hostDns = pidOf('coredns', `${c.dataDir}/node`);
    console.log(`\n\`kplex create\` in s, min / median / max over ${TENANTS} tenants: ${spread(createSeconds)}`);
    console.log(`memory per tenant in MiB, min / median / max over ${TENANTS} tenants, ${SETTLE_MS / 1000} s after they were ready`);
    for (const line of memoryTable(pids)) console.log(line);
    console.log(row('host cluster coredns (base)', [memoryMiB(hostDns)]));

    const cpuBefore = Object.fromEntries(PROCESSES.map((p) => [p, pids[p]!.map(cpuMs)]));
    await sleep(IDLE_MS);
    const perMinute = (p: string): number[] => pids[p]!.map((pid, i) => ((cpuMs(pid) - cpuBefore[p]![i]!) * 60_000) / IDLE_MS);
    console.log(`CPU per tenant in ms per minute while idle for ${IDLE_MS / 1000} s, min / median / max`);
    for (const p of PROCESSES) console.log(`  ${label(p).padEnd(28)} ${spread(perMinute(p), 0)}`);
    console.log(`  ${'all of a tenant'.padEnd(28)} ${spread(PROCESSES.map(perMinute).reduce((sum, xs) => sum.map((s, i) => s + xs[i]!)), 0)}`);
    console.log(`memory per tenant in MiB after those ${IDLE_MS / 1000} s idle`);
    for (const line of memoryTable(pids)) console.log(line);
  } finally {
    await c.down();
  }
}
