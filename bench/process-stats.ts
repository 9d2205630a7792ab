// Memory and CPU time of one process, from /proc: what a tenant's processes cost while idle.
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { median } from './measure.js';

/**
 * Proportional, resident and private memory of a process in MiB (smaps_rollup). Private memory (pages
 * no other process maps) does not move when other processes start or stop mapping the same binary, as
 * PSS does: it is what a growth trend of one process is read from.
 */
export function memoryMiB(pid: number): { pss: number; rss: number; private: number } {
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kB = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(rollup)?.[1] ?? NaN) / 1024;
  return { pss: kB('Pss'), rss: kB('Rss'), private: kB('Private_Clean') + kB('Private_Dirty') };
}

const TICK_MS = 1000 / 100; // USER_HZ is 100 on Linux

/** CPU milliseconds (user and system) a process has used so far. */
export function cpuMs(pid: number): number {
  // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
}

/** The `pgrep -af` lines (pid, then command line) of the processes running `program`. */
const commandLines = (program: string): string[] =>
  spawnSync('pgrep', ['-af', program], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.split(' ')[1]?.endsWith(`/${program}`));

/** The pid of `program` whose command line mentions `needle`. */
export const pidOf = (program: string, needle: string): number => pidsOf(program, [needle])[0]!;

/** The pid of `program` for each of `needles`, with one look at the process table however many there are. */
export function pidsOf(program: string, needles: string[]): number[] {
  const lines = commandLines(program);
  return needles.map((needle) => {
    const line = lines.find((l) => l.includes(needle));
    if (!line) throw new Error(`no ${program} process mentioning ${needle}`);
    return Number(line.split(' ')[0]);
  });
}

/** How many processes of `program` mention `needle`: none, for tenants that must not run. */
export const countMentioning = (program: string, needle: string): number => commandLines(program).filter((l) => l.includes(needle)).length;

/** Memory the kernel says can be given to new work without swapping (MemAvailable), in GiB. */
export function memAvailableGiB(): number {
  const kB = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1];
  if (!kB) throw new Error('no MemAvailable in /proc/meminfo');
  return Number(kB) / 2 ** 20;
}

/** Heap used of the gateway's process, from its own /metrics (garbage not yet collected included). */
export async function gatewayHeapMiB(metricsUrl: string): Promise<number | undefined> {
  const text = await (await fetch(metricsUrl)).text();
  const m = /^kplex_gateway_nodejs_heap_size_used_bytes (\S+)$/m.exec(text);
  return m ? Number(m[1]) / 2 ** 20 : undefined;
}

/** min / median / max, right-aligned. */
export const spread = (values: number[], digits = 1): string =>
  [Math.min(...values), median(values), Math.max(...values)].map((v) => v.toFixed(digits).padStart(6)).join(' ');
