import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { packageRoot } from '../../src/paths.js';
import { findBinaries } from '../../src/controlplane/binaries.js';

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export const tmpDir = (prefix: string): string => mkdtempSync(path.join(os.tmpdir(), `kplex-${prefix}-`));

const KPLEX = path.join(packageRoot, 'bin', 'kplex.js');

/** Runs the real kplex CLI (the built dist/) and waits for it. */
export function kplex(args: string[], env: Record<string, string> = {}, timeoutMs = 240_000): Promise<Run> {
  return run(process.execPath, [KPLEX, ...args], env, timeoutMs);
}

/**
 * The kubectl the e2e tests use: the machine's own (what users have) unless KPLEX_TEST_KUBECTL names
 * another, e.g. the v1.35 kubectl built beside the server (`built`).
 */
export function kubectlPath(): string {
  const wanted = process.env.KPLEX_TEST_KUBECTL;
  if (wanted === 'built') return findBinaries().paths.kubectl;
  if (wanted) return wanted;
  const onPath = spawnSync('sh', ['-c', 'command -v kubectl'], { encoding: 'utf8' }).stdout.trim();
  return onPath || findBinaries().paths.kubectl;
}

export function kubectl(kubeconfig: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<Run> {
  return run(kubectlPath(), ['--kubeconfig', kubeconfig, ...args], {}, opts.timeoutMs ?? 60_000, opts.input);
}

export function run(command: string, args: string[], env: Record<string, string>, timeoutMs: number, input?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(input ?? '');
  });
}

/** Polls `check` until it returns a value (not undefined) or `timeoutMs` passes. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 60_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Processes whose command line mentions `needle` (a data folder): what a test must leave none of. */
export function processesMentioning(needle: string): string[] {
  const out = spawnSync('pgrep', ['-af', needle], { encoding: 'utf8' }).stdout;
  return out
    .split('\n')
    .filter((l) => l.trim() && !l.includes('pgrep'));
}

/** Environment for a kplex CLI run that must not touch the user's kubeconfig. */
export const isolatedEnv = (dir: string): Record<string, string> => ({
  KUBECONFIG: path.join(dir, 'kubeconfig'),
  KPLEX_UNSAFE_NO_FSYNC: '1',
});
