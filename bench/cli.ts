// How long kplex commands take as whole processes, start-up included, next to what they cannot beat
// (`node -e 0`: a Node process that does nothing) and what users compare them with (kubectl).
import { spawn } from 'node:child_process';
import path from 'node:path';
import { packageRoot } from '../src/paths.js';
import { devCluster, kubectlPath } from './dev-cluster.js';
import { median } from './measure.js';
import type { BenchReport } from './report.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 9);

interface Case {
  what: string;
  command: string;
  args: string[];
  env?: Record<string, string>;
  /** What the command should take at most (median), if it has a target. */
  targetMs?: number;
}

/** Wall milliseconds from spawn to exit; a failing command fails the benchmark, since its time means nothing. */
function timeOnce(c: Case): Promise<number> {
  return new Promise((resolve, reject) => {
    const begin = performance.now();
    const child = spawn(c.command, c.args, { cwd: packageRoot, env: { ...process.env, ...c.env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => {
      if (code === 0) resolve(performance.now() - begin);
      else reject(new Error(`${c.what} exited with ${code}: ${stderr.trim()}`));
    });
  });
}

export async function benchCli(): Promise<BenchReport> {
  const cli = path.join(packageRoot, 'bin', 'kplex.js');
  const node = process.execPath;
  const cluster = await devCluster('bench-cli', 1);
  try {
    const cases: Case[] = [
      { what: 'node -e 0', command: node, args: ['-e', '0'] },
      { what: 'kubectl version --client', command: kubectlPath(), args: ['version', '--client'] },
      { what: 'kubectl get namespaces', command: kubectlPath(), args: ['--context', 'kplex-host', 'get', 'namespaces'], env: cluster.env },
      { what: 'kplex --version', command: node, args: [cli, '--version'], targetMs: 300 },
      { what: 'kplex --help', command: node, args: [cli, '--help'], targetMs: 300 },
      { what: 'kplex list', command: node, args: [cli, 'list', '--context', 'kplex-host'], env: cluster.env, targetMs: 600 },
      // npm's own start-up comes first here; it is what `npx kplex` costs users all the same.
      { what: 'npx kplex --version', command: 'npx', args: ['--no', '--', 'kplex', '--version'] },
    ];
    const times = new Map<Case, number[]>(cases.map((c) => [c, []]));
    for (const c of cases) await timeOnce(c);
    // Round by round, so that the machine's load at any moment weighs on every command alike.
    for (let run = 0; run < RUNS; run++) for (const c of cases) times.get(c)!.push(await timeOnce(c));
    return report(cases, times);
  } finally {
    await cluster.down();
  }
}

function report(cases: Case[], times: Map<Case, number[]>): BenchReport {
  const floor = median(times.get(cases[0]!)!);
  const s = (ms: number): string => (ms / 1000).toFixed(2);
  console.log(`\nCLI commands, wall seconds of the whole process: ${RUNS} runs each, round by round, after one warm-up (same run, same machine)`);
  console.log(`${'command'.padEnd(28)}${['median', 'min', 'max', 'over node -e 0', 'target'].map((t) => t.padStart(16)).join('')}`);
  for (const c of cases) {
    const t = times.get(c)!;
    const m = median(t);
    const target = c.targetMs === undefined ? '' : `≤ ${s(c.targetMs)} ${m <= c.targetMs ? 'met' : 'MISSED'}`;
    console.log(`${c.what.padEnd(28)}${[s(m), s(Math.min(...t)), s(Math.max(...t)), `+${s(m - floor)}`, target].map((x) => x.padStart(16)).join('')}`);
  }
  return {
    title: 'CLI commands, wall time of the whole process',
    rows: cases.map((c, i) => {
      const t = times.get(c)!;
      const m = median(t);
      return {
        figure: `${c.what}, median`,
        unit: 's',
        value: m / 1000,
        ...(i === 0 ? {} : { baseline: { what: cases[0]!.what, value: floor / 1000 } }),
        spread: `min ${s(Math.min(...t))} / max ${s(Math.max(...t))} over ${RUNS} runs`,
        ...(c.targetMs === undefined ? {} : { target: { text: `≤ ${s(c.targetMs)} s`, met: m <= c.targetMs } }),
      };
    }),
    notes: [`${RUNS} runs each, round by round, after one warm-up.`],
  };
}
