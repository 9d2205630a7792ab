// Memory of a tenant on this machine (the local provider): resident memory of each process a tenant
// runs (kube-apiserver, kube-controller-manager, and its DNS server) with min / median / max over
// TENANTS tenants, after they have settled; the host's own CoreDNS, serving the whole host cluster, is
// the baseline for the DNS server.
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { devCluster } from './dev-cluster.js';
import { median, sleep } from './measure.js';

const TENANTS = Number(process.env.BENCH_TENANTS ?? 3);
const SETTLE_MS = Number(process.env.BENCH_SETTLE_MS ?? 30_000);
const PROCESSES = ['kube-apiserver', 'kube-controller-manager', 'coredns'] as const;

/** Resident memory of a process in MiB (VmRSS). */
const rssMiB = (pid: number): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;

/** The pid of `program` whose command line mentions `needle`. */
function pidOf(program: string, needle: string): number {
  const lines = spawnSync('pgrep', ['-af', program], { encoding: 'utf8' }).stdout.split('\n');
  const line = lines.find((l) => l.includes(needle) && l.split(' ')[1]?.endsWith(`/${program}`));
  if (!line) throw new Error(`no ${program} process mentioning ${needle}`);
  return Number(line.split(' ')[0]);
}

const row = (label: string, values: number[]): string =>
  `  ${label.padEnd(26)} min ${Math.min(...values).toFixed(1).padStart(6)}  median ${median(values).toFixed(1).padStart(6)}  max ${Math.max(...values).toFixed(1).padStart(6)} MiB`;

export async function benchTenantMemory(): Promise<void> {
  const c = await devCluster('bench-memory', 1, 1);
  try {
    for (let i = 0; i < TENANTS; i++) await c.kplex(['create', `mem-${i}`, '--connect=false', '--context', 'kplex-host']);
    await sleep(SETTLE_MS);
    console.log(`\nresident memory per tenant (${TENANTS} tenants, ${SETTLE_MS / 1000} s after they were ready)`);
    const totals: number[] = Array.from({ length: TENANTS }, () => 0);
    for (const program of PROCESSES) {
      const values = Array.from({ length: TENANTS }, (_, i) => rssMiB(pidOf(program, `/tenants/mem-${i}/`)));
      values.forEach((v, i) => (totals[i]! += v));
      console.log(row(program === 'coredns' ? 'coredns (tenant DNS)' : program, values));
    }
    console.log(row('all of a tenant', totals));
    console.log(row('host cluster coredns (base)', [rssMiB(pidOf('coredns', `${c.dataDir}/node`))]));
  } finally {
    await c.down();
  }
}
