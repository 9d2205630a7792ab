// CPU time per process, read from /proc: where a request's cost goes (client, gateway, API server, etcd)
// says more on a noisy 2-core machine than throughput alone, since it does not depend on who got a core.
import { readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';

/** CPU milliseconds used so far, by role, for this process and every process whose command line names `dataDir`. */
export type CpuSample = Map<string, number>;

const TICK_MS = 1000 / 100; // USER_HZ is 100 on Linux

function roleOf(pid: number, cmdline: string[]): string {
  if (pid === process.pid) return 'client';
  const exe = cmdline[0]?.split('/').pop() ?? '';
  if (exe === 'node' && cmdline.some((a) => a.endsWith('reference-proxy.js'))) return 'reference proxy';
  if (exe === 'node' && cmdline.includes('dev')) return 'gateway';
  if (exe === 'kube-apiserver') return cmdline.some((a) => a.includes('/tenants/')) ? 'tenant API server' : 'host API server';
  return exe;
}

export function sampleCpu(dataDir: string): CpuSample {
  const sample: CpuSample = new Map();
  if (os.platform() !== 'linux') return sample;
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (pid !== process.pid && !cmdline.some((a) => a.includes(dataDir))) continue;
      // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      const role = roleOf(pid, cmdline);
      sample.set(role, (sample.get(role) ?? 0) + (Number(fields[11]) + Number(fields[12])) * TICK_MS);
    } catch {
      // The process ended between listing and reading.
    }
  }
  return sample;
}

/** Adds the CPU milliseconds each role spent between two samples to `total`. */
export function addCpu(total: CpuSample, before: CpuSample, after: CpuSample): void {
  for (const [role, ms] of after) total.set(role, (total.get(role) ?? 0) + ms - (before.get(role) ?? 0));
}
