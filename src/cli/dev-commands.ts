import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PROGRAMS, type Program } from '../controlplane/binaries.js';
import { alive } from '../controlplane/process.js';
import { probe } from '../controlplane/health.js';
import { removeFromUserKubeconfig } from '../k8s/kubeconfig.js';
import { defaultDevDataDir } from '../paths.js';
import { AlreadyRunningError, HOST_CONTEXT, runDevCluster, stopDevCluster } from '../dev/supervisor.js';
import { termination } from '../terminal/signals.js';
import { claimDataDir, readState, runningState, supervisorLog } from '../dev/state.js';
import { startDevGateway } from '../dev/dev-gateway.js';
import { ImageLoadError, loadImage } from '../dev/image-load.js';
import { CliError } from './errors.js';

export interface UpFlags {
  nodes: string;
  simulatedNodes: string;
  dataDir?: string;
  detach?: boolean;
  apiPort?: string;
  componentArg: string[];
  gateway: boolean;
  gatewayPort?: string;
  switchContext: string;
}

function parseComponentArgs(values: string[]): Partial<Record<Program, string[]>> {
  const out: Partial<Record<Program, string[]>> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    const name = v.slice(0, eq) as Program;
    if (eq < 1 || !PROGRAMS.includes(name)) throw new CliError(`--component-arg wants NAME=FLAG with NAME one of ${PROGRAMS.join(', ')}; got "${v}"`);
    (out[name] ??= []).push(v.slice(eq + 1));
  }
  return out;
}

const dataDirOf = (flags: { dataDir?: string }): string => path.resolve(flags.dataDir ?? defaultDevDataDir());

/** Copies what a file gains to stdout until `done()` (the detached supervisor's progress). */
async function follow(file: string, done: () => boolean): Promise<void> {
  let offset = 0;
  const buf = Buffer.alloc(64 * 1024);
  for (;;) {
    const finished = done();
    if (existsSync(file) && statSync(file).size > offset) {
      const fd = openSync(file, 'r');
      try {
        let n: number;
        while ((n = readSync(fd, buf, 0, buf.length, offset)) > 0) {
          process.stdout.write(buf.subarray(0, n));
          offset += n;
        }
      } finally {
        closeSync(fd);
      }
    }
    if (finished) return;
    await sleep(100);
  }
}

async function upDetached(flags: UpFlags, dataDir: string): Promise<void> {
  const running = runningState(dataDir);
  if (running) throw new AlreadyRunningError(running);
  claimDataDir(dataDir);
  const logFile = supervisorLog(dataDir);
  writeFileSync(logFile, '');
  const args = process.argv.slice(1).filter((a) => a !== '--detach' && a !== '-d');
  const fd = openSync(logFile, 'a');
  const child = spawn(process.execPath, [...args, '--data-dir', dataDir], { detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  let exitCode: number | null | undefined;
  child.once('exit', (code) => (exitCode = code ?? 1));
  // The state of a crashed supervisor may still say ready: only the new supervisor's counts.
  await follow(logFile, () => exitCode !== undefined || (readState(dataDir)?.phase === 'ready' && readState(dataDir)?.pid === child.pid));
  if (exitCode !== undefined) throw new CliError(`kplex dev up failed (log: ${logFile})`, exitCode || 1);
  child.unref();
  console.error(`running in the background (pid ${child.pid}); stop it with: kplex dev down${flags.dataDir ? ` --data-dir ${dataDir}` : ''}`);
}

export async function up(flags: UpFlags): Promise<void> {
  const dataDir = dataDirOf(flags);
  const nodes = Number(flags.nodes);
  if (nodes !== 0 && nodes !== 1) throw new CliError(`--nodes must be 0 or 1 (a machine runs one real node; use --simulated-nodes for more); got "${flags.nodes}"`);
  const simulatedNodes = Number(flags.simulatedNodes);
  if (!Number.isInteger(simulatedNodes) || simulatedNodes < 0 || simulatedNodes > 500) throw new CliError(`--simulated-nodes must be a whole number from 0 to 500; got "${flags.simulatedNodes}"`);
  const apiServerPort = flags.apiPort === undefined ? undefined : Number(flags.apiPort);
  if (apiServerPort !== undefined && !(apiServerPort > 0 && apiServerPort < 65536)) throw new CliError(`--api-port must be a port number; got "${flags.apiPort}"`);
  const componentArgs = parseComponentArgs(flags.componentArg);
  if (flags.switchContext !== 'true' && flags.switchContext !== 'false') throw new CliError(`--switch-context must be true or false; got "${flags.switchContext}"`);
  if (flags.detach) return upDetached(flags, dataDir);
  await runDevCluster(
    {
      dataDir,
      nodes,
      simulatedNodes,
      apiServerPort,
      componentArgs,
      unsafeNoFsync: process.env.KPLEX_UNSAFE_NO_FSYNC === '1',
      switchContext: flags.switchContext === 'true',
      startGateway: flags.gateway ? (host) => startDevGateway(host, dataDir, flags.gatewayPort ? Number(flags.gatewayPort) : undefined) : undefined,
    },
    termination(),
  );
}

export async function status(flags: { dataDir?: string }): Promise<void> {
  const dataDir = dataDirOf(flags);
  const s = runningState(dataDir);
  if (!s) throw new CliError(`no kplex dev cluster is running from ${dataDir}`, 3);
  const ready = s.server ? await probe(`${s.server}/readyz`, { ca: undefined }).catch(() => false) : false;
  console.log(`supervisor  pid ${s.pid}  ${s.phase}  since ${s.startedAt}`);
  console.log(`api server  ${s.server ?? '-'}  ${ready ? 'reachable' : 'not answering'}`);
  if (s.gateway) console.log(`gateway     ${s.gateway.url}`);
  for (const c of s.components) console.log(`${c.name.padEnd(24)}pid ${c.pid}  ${alive(c.pid) ? 'running' : 'NOT RUNNING'}`);
}

export async function down(flags: { dataDir?: string }): Promise<void> {
  const dataDir = dataDirOf(flags);
  const previousContext = readState(dataDir)?.previousContext;
  const stopped = await stopDevCluster(dataDir);
  removeFromUserKubeconfig(HOST_CONTEXT, { fallback: previousContext });
  console.log(stopped ? `stopped the kplex dev cluster in ${dataDir}` : `no kplex dev cluster was running from ${dataDir}`);
}

export async function imageLoad(file: string, flags: { dataDir?: string }): Promise<void> {
  const dataDir = dataDirOf(flags);
  try {
    for (const name of await loadImage(dataDir, file)) console.log(`loaded ${name}`);
  } catch (err) {
    if (err instanceof ImageLoadError) throw new CliError(err.message, err.exitCode);
    throw err;
  }
}
