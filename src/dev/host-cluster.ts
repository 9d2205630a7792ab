import { mkdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { KubeClient, core, type ClusterAccess, type KubeObject } from '../k8s/client.js';
import type { Binaries, Program } from '../controlplane/binaries.js';
import { SIMULATED_NODE_ANNOTATION, etcdArgs, kwokArgs } from '../controlplane/components.js';
import { startControlPlane } from '../controlplane/control-plane.js';
import { probe } from '../controlplane/health.js';
import { loadAuthority, readKeyPair, writeKeyPair } from '../controlplane/pki.js';
import { freePort } from '../controlplane/ports.js';
import { ManagedProcess } from '../controlplane/process.js';
import { writeKwokStreamingConfig } from './kwok-streaming.js';
import { NODE_IP, SIMULATED_POD_CIDR } from './node-config.js';
import { RealNode, type RealNodeSupport } from './real-node.js';

export interface HostClusterOptions {
  dataDir: string;
  /** kwok's simulated nodes. */
  simulatedNodes: number;
  /** A real node (kubelet, containerd, kube-proxy, CoreDNS), when this machine can run one. */
  realNode?: Extract<RealNodeSupport, { ok: true }>;
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

/**
 * Beside a real node, simulated nodes take only pods that ask for them (kwok's own taint), so that pods
 * people create really run; scale tests tolerate it. Without a real node they take every pod.
 */
export const SIMULATED_NODE_TAINT = { key: SIMULATED_NODE_ANNOTATION, value: 'fake', effect: 'NoSchedule' };

/** A simulated node as kwok expects it: kwok fills in its status (Ready, addresses, kubelet port). */
function nodeObject(name: string, tainted: boolean): KubeObject {
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
      annotations: { [SIMULATED_NODE_ANNOTATION]: 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
    },
    spec: tainted ? { taints: [SIMULATED_NODE_TAINT] } : {},
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
 * kube-scheduler, the real node if asked for, and kwok with its simulated nodes. Anything started is
 * stopped again on failure.
 */
export async function startHostCluster(o: HostClusterOptions): Promise<HostCluster> {
  const begin = Date.now();
  const logDir = path.join(o.dataDir, 'logs');
  await mkdir(logDir, { recursive: true });
  const started: ManagedProcess[] = [];
  let stopControlPlane = async (): Promise<void> => {};
  let realNode: RealNode | undefined;
  const stop = async (): Promise<void> => {
    const [etcd, ...rest] = started;
    for (const p of rest.reverse()) await p.stop();
    await realNode?.stop();
    await stopControlPlane();
    await etcd?.stop();
  };
  try {
    // The API server listens on the node's address, so the address comes first.
    if (o.realNode) realNode = await RealNode.prepare(o.dataDir, logDir, o.realNode);
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
      address: realNode ? NODE_IP : undefined,
      componentArgs: o.componentArgs,
    });
    stopControlPlane = cp.stop;
    if (realNode) await realNode.join({ access: cp.access, pkiDir: path.join(o.dataDir, 'pki') });

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
        podCidr: SIMULATED_POD_CIDR,
        extraArgs: o.componentArgs?.kwok,
      }),
      logFile: path.join(logDir, 'kwok.log'),
    });
    started.push(kwok);

    const client = new KubeClient(cp.access);
    try {
      for (let i = 0; i < o.simulatedNodes; i++) {
        const name = `kplex-node-${i}`;
        await client.apply(core('nodes', undefined, name), nodeObject(name, !!realNode), 'kplex');
        // kwok writes the kubelet port into a node it initializes, not into one a restart finds (the
        // data folder keeps the nodes): logs and exec would go to the port of the previous run.
        await client.patch({ ...core('nodes', undefined, name), subresource: 'status' }, { status: { daemonEndpoints: { kubeletEndpoint: { Port: kubeletPort } } } });
      }
      await waitNodesReady(client, o.simulatedNodes, kwok);
    } finally {
      await client.close();
    }
    return {
      access: cp.access,
      kubeconfigFile: cp.kubeconfigFile,
      etcdServers,
      processes: [etcd, ...cp.processes, ...(realNode?.processes ?? []), kwok],
      timings: { apiServerReadyMs: cp.readyMs, readyMs: Date.now() - begin },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
