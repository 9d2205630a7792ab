import { setTimeout as sleep } from 'node:timers/promises';
import { findBinaries, findNodeBinaries, type Program } from '../controlplane/binaries.js';
import { alive, killGroup, type ComponentError } from '../controlplane/process.js';
import { KubeClient, type ClusterAccess } from '../k8s/client.js';
import { kubeconfigFor, mergeIntoUserKubeconfig } from '../k8s/kubeconfig.js';
import { ensureSystem } from '../tenants/system.js';
import { step, seconds } from '../terminal/progress.js';
import { startHostCluster, type HostCluster } from './host-cluster.js';
import { cleanUpRealNode, realNodeSupport } from './real-node.js';
import { claimDataDir, readState, removeState, runningState, writeState, type DevState } from './state.js';

export const HOST_CONTEXT = 'kplex-host';

export interface DevUpOptions {
  dataDir: string;
  /** Real nodes: 0 or 1 (the machine runs one at most). */
  nodes: number;
  simulatedNodes: number;
  apiServerPort?: number;
  componentArgs?: Partial<Record<Program, string[]>>;
  unsafeNoFsync?: boolean;
  /** Make the host context kubectl's current one (as kind and k3d do), else only add it. */
  switchContext: boolean;
  /** Starts the gateway beside the host cluster; returns its URL and a stop function (which ends its streams cleanly first). */
  startGateway?: (host: HostCluster) => Promise<{ url: string; metricsUrl?: string; readyMs: number; stop(): Promise<void> }>;
}

export class AlreadyRunningError extends Error {
  constructor(s: DevState) {
    super(`a kplex dev cluster is already running from ${s.dataDir} (pid ${s.pid}); stop it with: kplex dev down`);
  }
}

/** kube-proxy, for its --cleanup, if it is built. */
function kubeProxyPath(): string | undefined {
  try {
    const found = findNodeBinaries(findBinaries());
    return 'paths' in found ? found.paths['kube-proxy'] : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Ends the components a dead supervisor left behind (it was killed without its cleanup), and what its
 * real node left on the machine.
 */
async function reapLeftovers(dataDir: string): Promise<void> {
  const stale = readState(dataDir);
  if (!stale) return;
  for (const c of stale.components) if (alive(-c.pid)) await killGroup(c.pid, 5_000);
  await cleanUpRealNode(dataDir, kubeProxyPath());
  removeState(dataDir);
}

/** What `dev up` did to kubectl's current context, in kubectl's words where it has them. */
export function contextLine(switched: boolean, previous: string | undefined): string {
  if (!switched) return previous ? `current context is still "${previous}" (--switch-context=false)` : 'no current context (--switch-context=false)';
  if (previous === HOST_CONTEXT) return `"${HOST_CONTEXT}" is the current context`;
  return `Switched to context "${HOST_CONTEXT}"${previous ? ` (was "${previous}"; kplex dev down switches back)` : ''}`;
}

/**
 * kplex's namespace and Tenant CRD, installed as soon as the host API server answers rather than when
 * the dev gateway starts last: the API server holds every create of a CRD's objects for 2 s after the CRD
 * is established (apiextensions-apiserver, for HA setups), so the first `kplex create` right after
 * `dev up` waited that out.
 */
async function installSystem(access: ClusterAccess): Promise<void> {
  const host = new KubeClient(access);
  try {
    await ensureSystem(host);
  } finally {
    await host.close();
  }
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
    const support = o.nodes > 0 ? realNodeSupport(binaries, o.dataDir) : undefined;
    // Where a real node cannot run, the cluster runs simulated nodes only, and says why in one line.
    if (support && !support.ok) console.log(`no real node: ${support.reason}; pods run on simulated nodes only`);
    const realNode = support?.ok ? support : undefined;
    const what = [realNode ? '1 real node' : '', `${o.simulatedNodes} simulated nodes`].filter(Boolean).join(' and ');
    host = await step(`starting host cluster with ${what}`, () =>
      startHostCluster({
        dataDir: o.dataDir,
        simulatedNodes: o.simulatedNodes,
        realNode,
        binaries,
        apiServerPort: o.apiServerPort,
        componentArgs: o.componentArgs,
        unsafeNoFsync: o.unsafeNoFsync,
        // Without the dev gateway kplex is installed another way (its Helm chart owns the CRD then).
        alongside: o.startGateway ? installSystem : undefined,
      }),
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
    const previous = mergeIntoUserKubeconfig(kubeconfigFor(HOST_CONTEXT, h.access), { switchContext: o.switchContext });
    // `dev down` makes the context that was current before current again.
    if (o.switchContext && previous !== HOST_CONTEXT) state.previousContext = previous;

    console.log(`host API server ready in ${seconds(h.timings.apiServerReadyMs)}; cluster with ${what} Ready in ${seconds(h.timings.readyMs)}`);
    console.log(`host API server: ${h.access.server}`);
    if (state.gateway) console.log(`gateway:         ${state.gateway.url}`);
    console.log(`kubeconfig:      context "${HOST_CONTEXT}" merged into your kubeconfig (also ${h.kubeconfigFile})`);
    console.log(`context:         ${contextLine(o.switchContext, previous)}`);
    console.log(`try:             kubectl ${o.switchContext ? '' : `--context ${HOST_CONTEXT} `}get nodes`);
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
    // A real node stops its pods through the CRI first: allow for that.
    const deadline = Date.now() + 60_000;
    while (alive(s.pid) && Date.now() < deadline) await sleep(100);
    if (alive(s.pid)) process.kill(s.pid, 'SIGKILL');
  }
  for (const c of s.components) if (alive(-c.pid)) await killGroup(c.pid, 5_000);
  await cleanUpRealNode(dataDir, kubeProxyPath());
  removeState(dataDir);
  return true;
}
