// Memory of a tenant on this machine (the local provider): proportional memory (PSS: shared pages of
// a binary split among the processes that run it) and resident memory (RSS) of each process a tenant
// runs (kube-apiserver, kube-controller-manager, and its DNS server), with min / median / max over
// TENANTS tenants after they have settled; the host's own CoreDNS, serving the whole host cluster, is
// the baseline for the DNS server.
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { devCluster } from './dev-cluster.js';
import { median, sleep } from './measure.js';

const TENANTS = Number(process.env.BENCH_TENANTS ?? 3);
const SETTLE_MS = Number(process.env.BENCH_SETTLE_MS ?? 30_000);
const PROCESSES = ['kube-apiserver', 'kube-controller-manager', 'coredns'] as const;

/** Proportional and resident memory of a process in MiB (smaps_rollup). */
function memoryMiB(pid: number): { pss: number; rss: number } {
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kB = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(rollup)?.[1] ?? NaN) / 1024;
  return { pss: kB('Pss'), rss: kB('Rss') };
}

/** The pid of `program` whose command line mentions `needle`. */
function pidOf(program: string, needle: string): number {
  const lines = spawnSync('pgrep', ['-af', program], { encoding: 'utf8' }).stdout.split('\n');
  const line = lines.find((l) => l.includes(needle) && l.split(' ')[1]?.endsWith(`/${program}`));
  if (!line) throw new Error(`no ${program} process mentioning ${needle}`);
  return Number(line.split(' ')[0]);
}

const spread = (values: number[]): string => `${Math.min(...values).toFixed(1).padStart(6)} ${median(values).toFixed(1).padStart(6)} ${Math.max(...values).toFixed(1).padStart(6)}`;
const row = (label: string, m: { pss: number; rss: number }[]): string =>
  `  ${label.padEnd(28)} PSS ${spread(m.map((x) => x.pss))}   RSS ${spread(m.map((x) => x.rss))}`;

export async function benchTenantMemory(): Promise<void> {
  const c = await devCluster('bench-memory', 1, 1);
  try {
    for (let i = 0; i < TENANTS; i++) await c.kplex(['create', `mem-${i}`, '--connect=false', '--context', 'kplex-host']);
    await sleep(SETTLE_MS);
    console.log(`\nmemory per tenant in MiB, min / median / max over ${TENANTS} tenants, ${SETTLE_MS / 1000} s after they were ready`);
    const totals = Array.from({ length: TENANTS }, () => ({ pss: 0, rss: 0 }));
    for (const program of PROCESSES) {
      const values = Array.from({ length: TENANTS }, (_, i) => memoryMiB(pidOf(program, `/tenants/mem-${i}/`)));
      values.forEach((v, i) => {
        totals[i]!.pss += v.pss;
        totals[i]!.rss += v.rss;
      });
      console.log(row(program === 'coredns' ? 'coredns (tenant DNS)' : program, values));
    }
    console.log(row('all of a tenant', totals));
    console.log(row('host cluster coredns (base)', [memoryMiB(pidOf('coredns', `${c.dataDir}/node`))]));
  } finally {
    await c.down();
  }
}
