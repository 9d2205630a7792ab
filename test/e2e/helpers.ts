/**
 * Helpers of the e2e tests, and the host cluster they share.
 *
 * ## The shared host cluster
 * Starting a host cluster (`kplex dev up`) and stopping it again costs a file tens of seconds, a real
 * node the most. Files that need only "a host, its gateway and tenants of their own" share one:
 * 1 real node (kplex-real-0) and 3 simulated nodes (kplex-node-0..2, which beside the real node carry
 * kwok's taint), with the gateway, started by the first file that asks for it and stopped after the
 * last (the globalSetup in shared-host.setup.ts, which hands its folder over with vitest's provide/inject).
 *
 * To use it in a file:
 * 1. add the file to SHARED_HOST_FILES in vitest.config.ts (the e2e-shared project: it runs after the
 *    files with clusters of their own, one file at a time);
 * 2. in the describe block, `const shared = useSharedHost('prefix', ['my-tenant', ...])`, naming every
 *    tenant the file may create: they are deleted after the file (all at once), and a tenant the file
 *    leaves that it did not name fails it. Run `kplex` with `shared.env` (this file's own KUBECONFIG,
 *    holding the host context kplex-host) and the host's kubectl with `shared.hostKubeconfig`;
 * 3. in beforeAll, `const kc = await shared.createTenant('my-tenant', { isolate: true })`: the tenant's
 *    admin kubeconfig (through the gateway). Tenants start faster together: `Promise.all` of creates.
 *
 * Rules that keep files independent on one cluster: whatever a file creates outside its tenants (a host
 * PriorityClass, a pod in the host's default namespace) it deletes again; it does not stop or restart
 * the host (such tests keep a cluster of their own, as real-node-lifecycle.test.ts does); it expects no
 * more of the host than its own objects (another file's tenants may show in `kplex list` or node counts);
 * and a pod that must run on a simulated node says so with `onSimulatedNodes` (kwok answers its logs,
 * exec and port-forward; busybox without a command keeps running there). Tenant names may repeat across
 * files: each file's cleanup waits until its tenants' host namespaces are gone.
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, inject } from 'vitest';
import YAML from 'yaml';
import { packageRoot } from '../../src/paths.js';
import { findBinaries } from '../../src/controlplane/binaries.js';
import { freePort } from '../../src/controlplane/ports.js';
import { NODE_LABEL, SIMULATED_NODE_TAINT } from '../../src/dev/host-cluster.js';
import { runningState } from '../../src/dev/state.js';

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

/** helm, a client the tests drive as users do: KPLEX_TEST_HELM if it names one, else the one scripts/k8s-binaries.sh builds beside kubectl. */
export function helmPath(): string {
  const wanted = process.env.KPLEX_TEST_HELM;
  if (wanted) return wanted;
  const built = path.join(path.dirname(findBinaries().paths.kubectl), 'helm');
  if (!existsSync(built)) throw new Error(`helm is not built in ${path.dirname(built)}; build it with: npm run binaries`);
  return built;
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
    // A command that exits before reading its input (kill, pkill) closes the pipe first: not an error.
    child.stdin.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') reject(err);
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

/**
 * Creates tenant `name` (`kplex create`, not connecting) on the host context kplex-host of `env`, with
 * `values` as its values file, and writes its admin kubeconfig (`kplex connect --print`) beside env's
 * KUBECONFIG, as `NAME.kubeconfig`; returns that file.
 */
export async function createTenant(env: Record<string, string>, name: string, values?: Record<string, unknown>): Promise<string> {
  const dir = path.dirname(env.KUBECONFIG!);
  const flags = ['--connect=false', '--context', 'kplex-host'];
  if (values) {
    const file = path.join(dir, `${name}.values.yaml`);
    writeFileSync(file, YAML.stringify(values));
    flags.push('-f', file);
  }
  const created = await kplex(['create', name, ...flags], env);
  expect(created.code, created.stderr).toBe(0);
  const printed = await kplex(['connect', name, '--print', '--context', 'kplex-host'], env);
  expect(printed.code, printed.stderr).toBe(0);
  const kubeconfig = path.join(dir, `${name}.kubeconfig`);
  writeFileSync(kubeconfig, printed.stdout);
  return kubeconfig;
}

const tenantNames = async (env: Record<string, string>): Promise<string[]> => {
  const r = await kplex(['list', '-o', 'json', '--context', 'kplex-host'], env);
  if (r.code !== 0) throw new Error(`kplex list: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { name: string }[]).map((t) => t.name);
};

/** Deletes the tenants that exist of `names`, all at once (`kplex delete` waits until each host namespace is gone). */
export async function deleteTenants(env: Record<string, string>, names: string[]): Promise<void> {
  const present = new Set(await tenantNames(env));
  const gone = await Promise.all(names.filter((n) => present.has(n)).map(async (n) => [n, await kplex(['delete', n, '--context', 'kplex-host'], env)] as const));
  const failed = gone.filter(([, r]) => r.code !== 0).map(([n, r]) => `${n}: ${r.stderr.trim()}`);
  if (failed.length) throw new Error(`could not delete tenants:\n${failed.join('\n')}`);
}

/** Where the shared host cluster of the folder `dir` keeps its data, and the environment it was started with. */
export const sharedHostPaths = (dir: string) => ({ dataDir: path.join(dir, 'data'), env: isolatedEnv(dir) });

/** Starts the shared host cluster unless it runs. */
async function ensureSharedHost(dir: string): Promise<void> {
  const { dataDir, env } = sharedHostPaths(dir);
  if (runningState(dataDir)?.phase === 'ready') return;
  // Three simulated nodes: scheduling.test.ts spreads pods over exactly three.
  const flags = ['--nodes', '1', '--simulated-nodes', '3', '--detach', '--gateway-port', String(await freePort())];
  const up = await kplex(['dev', 'up', ...flags, '--data-dir', dataDir], env, 300_000);
  if (up.code !== 0) throw new Error(`the shared host cluster did not start: ${up.stderr}${up.stdout}`);
}

export interface SharedHost {
  /** This file's own folder: its kubeconfig, the tenants' kubeconfigs and values files. */
  dir: string;
  /** The shared cluster's data folder (state.json, tenants/, kwok/, node/). */
  dataDir: string;
  /** The host's admin kubeconfig, for kubectl. */
  hostKubeconfig: string;
  /** Environment for kplex runs of this file: its own KUBECONFIG, holding the host context kplex-host. */
  env: Record<string, string>;
  /** createTenant on the shared host, with this file's environment. */
  createTenant(name: string, values?: Record<string, unknown>): Promise<string>;
}

/**
 * The shared host cluster for the file whose describe block calls it (see the top of this file).
 * `tenants`: every tenant the file may create, deleted after it.
 */
export function useSharedHost(prefix: string, tenants: string[]): SharedHost {
  const sharedDir = inject('sharedHostDir');
  if (!sharedDir) throw new Error('no shared host cluster: add this file to SHARED_HOST_FILES in vitest.config.ts');
  const { dataDir, env: sharedEnv } = sharedHostPaths(sharedDir);
  const dir = tmpDir(prefix);
  const env = isolatedEnv(dir);
  let before: string[] = [];
  beforeAll(async () => {
    await ensureSharedHost(sharedDir);
    copyFileSync(sharedEnv.KUBECONFIG!, env.KUBECONFIG!);
    before = await tenantNames(env);
  }, 300_000);
  afterAll(async () => {
    await deleteTenants(env, tenants);
    const left = (await tenantNames(env)).filter((n) => !before.includes(n));
    if (left.length) throw new Error(`tenants left on the shared host: ${left.join(', ')}; name them in useSharedHost`);
  }, 180_000);
  return {
    dir,
    dataDir,
    hostKubeconfig: path.join(dataDir, 'admin.kubeconfig'),
    env,
    createTenant: (name, values) => {
      if (!tenants.includes(name)) throw new Error(`tenant ${name} is not among those useSharedHost deletes: ${tenants.join(', ')}`);
      return createTenant(env, name, values);
    },
  };
}

/**
 * What puts a pod on the simulated nodes of a host that also has a real node: their label, and a
 * toleration of kwok's taint. One line each, for a pod spec in YAML flow style or as JSON.
 */
export const onSimulatedNodes = {
  nodeSelector: { [NODE_LABEL]: 'true' },
  tolerations: [{ key: SIMULATED_NODE_TAINT.key, operator: 'Exists', effect: SIMULATED_NODE_TAINT.effect }],
};
