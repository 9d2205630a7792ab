// Memory of a tenant on this machine (the local provider): proportional memory (PSS: shared pages of
// a binary split among the processes that run it) and resident memory (RSS) of each process a tenant
// runs (kube-apiserver, kube-controller-manager, and its DNS server), with min / median / max over
// TENANTS tenants after they have settled; the host's own CoreDNS, serving the whole host cluster, is
// the baseline for the DNS server. Then the CPU each used while idle over IDLE_MS, and their memory
// again at its end (BENCH_IDLE_MS=600000: after 10 minutes idle). `kplex create` times are the whole
// command's, with the tenants before it already running.
import { devCluster } from './dev-cluster.js';
import { median, sleep } from './measure.js';
import type { BenchReport, BenchRow } from './report.js';
import { cpuMs, memoryMiB, pidOf, spread } from './process-stats.js';

const TENANTS = Number(process.env.BENCH_TENANTS ?? 3);
const SETTLE_MS = Number(process.env.BENCH_SETTLE_MS ?? 30_000);
const IDLE_MS = Number(process.env.BENCH_IDLE_MS ?? 60_000);
const PROCESSES = ['kube-apiserver', 'kube-controller-manager', 'coredns'] as const;
const label = (program: string): string => (program === 'coredns' ? 'coredns (tenant DNS)' : program);

type Memory = { pss: number; rss: number };
const row = (name: string, m: Memory[]): string => `  ${name.padEnd(28)} PSS ${spread(m.map((x) => x.pss))}   RSS ${spread(m.map((x) => x.rss))}`;

/** Each process's memory, by program, and each tenant's sum (under 'all'): the table's lines and the PSS values. */
function memoryTable(pids: Record<string, number[]>): { lines: string[]; pss: Record<string, number[]> } {
  const totals = Array.from({ length: TENANTS }, () => ({ pss: 0, rss: 0 }));
  const pss: Record<string, number[]> = {};
  const lines = PROCESSES.map((program) => {
    const values = pids[program]!.map(memoryMiB);
    values.forEach((v, i) => {
      totals[i]!.pss += v.pss;
      totals[i]!.rss += v.rss;
    });
    pss[program] = values.map((v) => v.pss);
    return row(label(program), values);
  });
  pss.all = totals.map((t) => t.pss);
  return { lines: [...lines, row('all of a tenant', totals)], pss };
}

const range = (xs: number[]): string => `min ${Math.min(...xs).toFixed(1)} / max ${Math.max(...xs).toFixed(1)} over ${xs.length} tenants`;

export async function benchTenantMemory(): Promise<BenchReport> {
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
    const settled = memoryTable(pids);
    for (const line of settled.lines) console.log(line);
    const hostDnsMemory = memoryMiB(hostDns);
    console.log(row('host cluster coredns (base)', [hostDnsMemory]));

    const cpuBefore = Object.fromEntries(PROCESSES.map((p) => [p, pids[p]!.map(cpuMs)]));
    await sleep(IDLE_MS);
    const perMinute = (p: string): number[] => pids[p]!.map((pid, i) => ((cpuMs(pid) - cpuBefore[p]![i]!) * 60_000) / IDLE_MS);
    console.log(`CPU per tenant in ms per minute while idle for ${IDLE_MS / 1000} s, min / median / max`);
    for (const p of PROCESSES) console.log(`  ${label(p).padEnd(28)} ${spread(perMinute(p), 0)}`);
    const cpuAll = PROCESSES.map(perMinute).reduce((sum, xs) => sum.map((s, i) => s + xs[i]!));
    console.log(`  ${'all of a tenant'.padEnd(28)} ${spread(cpuAll, 0)}`);
    console.log(`memory per tenant in MiB after those ${IDLE_MS / 1000} s idle`);
    const idle = memoryTable(pids);
    for (const line of idle.lines) console.log(line);
    const rows: BenchRow[] = [
      { figure: '`kplex create`, median', unit: 's', value: median(createSeconds), spread: range(createSeconds) },
      ...PROCESSES.map((p): BenchRow => ({
        figure: `${label(p)} PSS, median`,
        unit: 'MiB',
        value: median(settled.pss[p]!),
        ...(p === 'coredns' ? { baseline: { what: 'the host cluster coredns', value: hostDnsMemory.pss } } : {}),
        spread: range(settled.pss[p]!),
      })),
      { figure: 'all of a tenant PSS, median', unit: 'MiB', value: median(settled.pss.all!), spread: range(settled.pss.all!), target: { text: '≤ 150 MiB', met: median(settled.pss.all!) <= 150 } },
      { figure: `all of a tenant PSS after ${IDLE_MS / 1000} s idle, median`, unit: 'MiB', value: median(idle.pss.all!), baseline: { what: 'before that idle time', value: median(settled.pss.all!) }, spread: range(idle.pss.all!) },
      { figure: 'all of a tenant CPU while idle, median', unit: 'ms/min', value: median(cpuAll), spread: range(cpuAll) },
    ];
    return { title: "an idle tenant's processes: memory and CPU", rows, notes: [`${TENANTS} tenants; memory ${SETTLE_MS / 1000} s after they were ready, CPU over the ${IDLE_MS / 1000} s after that.`] };
  } finally {
    await c.down();
  }
}
