import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { alive } from '../controlplane/process.js';
import { writePrivateFile } from '../k8s/kubeconfig.js';

/** What a running `kplex dev up` records in its data folder, so status/down/other commands find it. */
export interface DevState {
  /** The supervising process; it owns every component. */
  pid: number;
  phase: 'starting' | 'ready';
  startedAt: string;
  dataDir: string;
  kubeconfig?: string;
  server?: string;
  etcdServers?: string;
  /** The gateway's tenant-facing URL, and where its /metrics answers (loopback only). */
  gateway?: { url: string; metricsUrl?: string };
  components: { name: string; pid: number }[];
  /** The kubeconfig context that was current before `dev up` switched to the host's. */
  previousContext?: string;
  timings?: { hostApiServerReadyMs: number; hostReadyMs: number; gatewayReadyMs?: number };
}

const MARKER = '.kplex-dev';
export const stateFile = (dataDir: string): string => path.join(dataDir, 'state.json');
export const supervisorLog = (dataDir: string): string => path.join(dataDir, 'supervisor.log');

export function readState(dataDir: string): DevState | undefined {
  const file = stateFile(dataDir);
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as DevState;
  } catch {
    return undefined;
  }
}

export const writeState = (s: DevState): void => writePrivateFile(stateFile(s.dataDir), JSON.stringify(s, null, 2));

export const removeState = (dataDir: string): void => rmSync(stateFile(dataDir), { force: true });

/** The state of a dev cluster whose supervisor still runs; a leftover file of a dead one is not. */
export function runningState(dataDir: string): DevState | undefined {
  const s = readState(dataDir);
  return s && alive(s.pid) ? s : undefined;
}

export class DataDirError extends Error {}

/**
 * Claims a data folder for a dev cluster: it must be empty, missing, or one of ours. An occupied folder
 * is refused rather than written into.
 */
export function claimDataDir(dataDir: string): void {
  if (existsSync(dataDir)) {
    const entries = readdirSync(dataDir);
    if (entries.length > 0 && !entries.includes(MARKER)) {
      throw new DataDirError(`data dir ${dataDir} is not empty and was not made by kplex; choose another with --data-dir`);
    }
  }
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(path.join(dataDir, MARKER), 'kplex dev data directory\n');
}
