import { setTimeout as sleep } from 'node:timers/promises';
import { findBinaries, type Program } from '../controlplane/binaries.js';
import { alive, killGroup, type ComponentError } from '../controlplane/process.js';
import { kubeconfigFor, mergeIntoUserKubeconfig } from '../k8s/kubeconfig.js';
import { step, seconds } from '../terminal/progress.js';
import { startHostCluster, type HostCluster } from './host-cluster.js';
import { claimDataDir, readState, removeState, runningState, writeState, type DevState } from './state.js';

export const HOST_CONTEXT = 'kplex-host';

export interface DevUpOptions {
  dataDir: string;
  nodes: number;
  apiServerPort?: number;
  componentArgs?: Partial<Record<Program, string[]>>;
  unsafeNoFsync?: boolean;
  /** Starts the gateway beside the host cluster; returns its URL and a stop function. */
  startGateway?: (host: HostCluster) => Promise<{ url: string; metricsUrl?: string; readyMs: number; stop(): Promise<void> }>;
}

export class AlreadyRunningError extends Error {
  constructor(s: DevState) {
    super(`a kplex dev cluster is already running from ${s.dataDir} (pid ${s.pid}); stop it with: kplex dev down`);
  }
}

/** Ends the components a dead supervisor left behind (it was killed without its cleanup). */
async function reapLeftovers(dataDir: string): Promise<void> {
  const stale = readState(dataDir);
  if (!stale) return;
  for (const c of stale.components) if (alive(-c.pid)) await killGroup(c.pid, 5_000);
  removeState(dataDir);
}

/**
 * Runs the embedded host cluster in this process until `until` resolves or a component dies; everything
 * it started is stopped before it returns.
 */
export async function runDevCluster(o: DevUpOptions, until: Promise<unknown>): Promise<void> {
  const running = runningState(o.dataDir);
  if (running && running.pid !== process.pid) throw new AlreadyRunningError(running);
  await reapLeftovers(o.dataDir);
  const binaries = findBinaries();
  claimDataDir(o.dataDir);
  const state: DevState = { pid: process.pid, phase: 'starting', startedAt: new Date().toISOString(), dataDir: o.dataDir, components: [] };
  writeState(state);

  let host: HostCluster | undefined;
  let gateway: { stop(): Promise<void> } | undefined;
  try {
    host = await step(`starting host cluster with ${o.nodes} simulated nodes`, () =>
      startHostCluster({ dataDir: o.dataDir, nodes: o.nodes, binaries, apiServerPort: o.apiServerPort, componentArgs: o.componentArgs, unsafeNoFsync: o.unsafeNoFsync }),
    );
    const h = host;
    state.components = h.processes.map((p) => ({ name: p.name, pid: p.pid }));
    state.kubeconfig = h.kubeconfigFile;
    state.server = h.access.server;
    state.etcdServers = h.etcdServers;
    state.timings = { hostApiServerReadyMs: h.timings.apiServerReadyMs, hostReadyMs: h.timings.readyMs };
    writeState(state);
    if (o.startGateway) {
      const gw = await step('starting gateway', () => o.startGateway!(h));
      gateway = gw;
      state.gateway = { url: gw.url, metricsUrl: gw.metricsUrl };
      state.timings.gatewayReadyMs = gw.readyMs;
    }
    mergeIntoUserKubeconfig(kubeconfigFor(HOST_CONTEXT, h.access), { switchContext: false });

    console.log(`host API server ready in ${seconds(h.timings.apiServerReadyMs)}; cluster with ${o.nodes} Ready nodes in ${seconds(h.timings.readyMs)}`);
    console.log(`host API server: ${h.access.server}`);
    if (state.gateway) console.log(`gateway:         ${state.gateway.url}`);
    console.log(`kubeconfig:      context "${HOST_CONTEXT}" merged into your kubeconfig (also ${h.kubeconfigFile})`);
    console.log(`try:             kubectl --context ${HOST_CONTEXT} get nodes`);
    // After the summary: a detached `dev up` stops copying this log once it reads "ready".
    state.phase = 'ready';
    writeState(state);

    const crashed = new Promise<ComponentError>((resolve) => {
      for (const p of h.processes) p.onCrash(resolve);
    });
    const outcome = await Promise.race([until.then(() => undefined), crashed]);
    if (outcome) {
      console.error(`kplex dev: ${outcome.message}`);
      throw outcome;
    }
  } finally {
    await gateway?.stop();
    await host?.stop();
    removeState(o.dataDir);
  }
}


/** Stops the dev cluster of a data folder: asks its supervisor, then makes sure no component is left. */
export async function stopDevCluster(dataDir: string): Promise<boolean> {
  const s = readState(dataDir);
  if (!s) return false;
  if (alive(s.pid)) {
    process.kill(s.pid, 'SIGTERM');
    const deadline = Date.now() + 30_000;
    while (alive(s.pid) && Date.now() < deadline) await sleep(100);
    if (alive(s.pid)) process.kill(s.pid, 'SIGKILL');
  }
  for (const c of s.components) if (alive(-c.pid)) await killGroup(c.pid, 5_000);
  removeState(dataDir);
  return true;
}
