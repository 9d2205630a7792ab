import { mkdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { KubeClient, core, type ClusterAccess, type KubeObject } from '../k8s/client.js';
import type { Binaries, Program } from '../controlplane/binaries.js';
import { etcdArgs, kwokArgs } from '../controlplane/components.js';
import { startControlPlane } from '../controlplane/control-plane.js';
import { probe } from '../controlplane/health.js';
import { loadAuthority, readKeyPair, writeKeyPair } from '../controlplane/pki.js';
import { freePort } from '../controlplane/ports.js';
import { ManagedProcess } from '../controlplane/process.js';
import { writeKwokStreamingConfig } from './kwok-streaming.js';

export interface HostClusterOptions {
  dataDir: string;
  nodes: number;
  binaries: Binaries;
  apiServerPort?: number;
  componentArgs?: Partial<Record<Program, string[]>>;
  unsafeNoFsync?: boolean;
}

export interface HostCluster {
  access: ClusterAccess;
  kubeconfigFile: string;
  etcdServers: string;
  processes: ManagedProcess[];
  /** Milliseconds until the host API server's /readyz answered, and until nodes were Ready. */
  timings: { apiServerReadyMs: number; readyMs: number };
  stop(): Promise<void>;
}

export const NODE_LABEL = 'kplex.dev/simulated-node';

/** A simulated node as kwok expects it: kwok fills in its status (Ready, addresses, kubelet port). */
function nodeObject(name: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      labels: {
        [NODE_LABEL]: 'true',
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        'node.kubernetes.io/instance-type': 'kwok',
        type: 'kwok',
      },
      annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
    },
    spec: {},
    status: {
      allocatable: { cpu: '32', memory: '256Gi', pods: '110' },
      capacity: { cpu: '32', memory: '256Gi', pods: '110' },
      nodeInfo: { architecture: 'amd64', operatingSystem: 'linux', kubeletVersion: 'kwok', kubeProxyVersion: 'kwok' },
    },
  };
}

async function waitNodesReady(client: KubeClient, count: number, kwok: ManagedProcess): Promise<void> {
  let ready = 0;
  await kwok.waitReady(async () => {
    const nodes = await client.list<KubeObject & { status?: { conditions?: { type: string; status: string }[] } }>(core('nodes'), {
      labelSelector: NODE_LABEL,
    });
    ready = nodes.items.filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).length;
    if (ready < count) await sleep(200);
    return ready >= count;
  }, 60_000);
}

/**
 * Starts a whole host cluster on this machine: etcd, kube-apiserver, kube-controller-manager,
 * kube-scheduler and kwok with `nodes` simulated nodes. Anything started is stopped again on failure.
 */
export async function startHostCluster(o: HostClusterOptions): Promise<HostCluster> {
  const begin = Date.now();
  const logDir = path.join(o.dataDir, 'logs');
  await mkdir(logDir, { recursive: true });
  const started: ManagedProcess[] = [];
  let stopControlPlane = async (): Promise<void> => {};
  const stop = async (): Promise<void> => {
    const [etcd, ...rest] = started;
    for (const p of rest.reverse()) await p.stop();
    await stopControlPlane();
    await etcd?.stop();
  };
  try {
    const clientPort = await freePort();
    const etcd = ManagedProcess.start({
      name: 'etcd',
      command: o.binaries.paths.etcd,
      args: [...etcdArgs({ dataDir: path.join(o.dataDir, 'etcd'), clientPort, peerPort: await freePort(), unsafeNoFsync: o.unsafeNoFsync }), ...(o.componentArgs?.etcd ?? [])],
      logFile: path.join(logDir, 'etcd.log'),
    });
    started.push(etcd);
    const etcdServers = `http://127.0.0.1:${clientPort}`;
    await etcd.waitReady(() => probe(`${etcdServers}/health`), 30_000);

    const cp = await startControlPlane({
      name: 'host',
      dir: o.dataDir,
      binaries: o.binaries,
      etcdServers,
      etcdPrefix: '/registry',
      authorizationModes: 'Node,RBAC',
      controllers: '*',
      withScheduler: true,
      apiServerPort: o.apiServerPort,
      componentArgs: o.componentArgs,
    });
    stopControlPlane = cp.stop;

    // kwok serves logs/exec/attach/port-forward as the nodes' kubelet, with a certificate of the host CA.
    const pkiDir = path.join(o.dataDir, 'pki');
    let kwokPair = await readKeyPair(pkiDir, 'kwok');
    if (!kwokPair) {
      const ca = await loadAuthority((await readKeyPair(pkiDir, 'ca'))!);
      kwokPair = await ca.sign({ commonName: 'kwok', server: true, dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    }
    const kwokFiles = await writeKeyPair(pkiDir, 'kwok', kwokPair);
    const streamingConfig = await writeKwokStreamingConfig(o.dataDir);
    const kubeletPort = await freePort();
    const kwok = ManagedProcess.start({
      name: 'kwok',
      command: o.binaries.paths.kwok,
      args: kwokArgs({
        kubeconfig: cp.kubeconfigFile,
        configs: [...o.binaries.kwokStages, streamingConfig],
        serverPort: kubeletPort,
        tlsCert: kwokFiles.cert,
        tlsKey: kwokFiles.key,
        extraArgs: o.componentArgs?.kwok,
      }),
      logFile: path.join(logDir, 'kwok.log'),
    });
    started.push(kwok);

    const client = new KubeClient(cp.access);
    try {
      for (let i = 0; i < o.nodes; i++) {
        const name = `kplex-node-${i}`;
        await client.apply(core('nodes', undefined, name), nodeObject(name), 'kplex');
        // kwok writes the kubelet port into a node it initializes, not into one a restart finds (the
        // data folder keeps the nodes): logs and exec would go to the port of the previous run.
        await client.patch({ ...core('nodes', undefined, name), subresource: 'status' }, { status: { daemonEndpoints: { kubeletEndpoint: { Port: kubeletPort } } } });
      }
      await waitNodesReady(client, o.nodes, kwok);
    } finally {
      await client.close();
    }
    return {
      access: cp.access,
      kubeconfigFile: cp.kubeconfigFile,
      etcdServers,
      processes: [etcd, ...cp.processes, kwok],
      timings: { apiServerReadyMs: cp.readyMs, readyMs: Date.now() - begin },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
