import { mkdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { KubeClient, core, type ClusterAccess, type KubeObject, type ResourceRef } from '../k8s/client.js';
import type { Binaries, Program } from '../controlplane/binaries.js';
import { SIMULATED_NODE_ANNOTATION, SIMULATED_NODE_IP, etcdArgs, kwokArgs } from '../controlplane/components.js';
import { startControlPlane } from '../controlplane/control-plane.js';
import { probe } from '../controlplane/health.js';
import { loadAuthority, readKeyPair, writeKeyPair } from '../controlplane/pki.js';
import { freePort } from '../controlplane/ports.js';
import { ManagedProcess } from '../controlplane/process.js';
import { writeKwokStages } from './kwok-stages.js';
import { writeKwokStreamingConfig } from './kwok-streaming.js';
import { CLUSTER_DNS_IP, NODE_IP, SIMULATED_POD_CIDR } from './node-config.js';
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
  /** What to install as soon as the API server answers, while the rest of the cluster starts. */
  alongside?: (access: ClusterAccess) => Promise<void>;
}

export interface HostCluster {
  access: ClusterAccess;
  kubeconfigFile: string;
  etcdServers: string;
  processes: ManagedProcess[];
  /** Milliseconds until the host API server's /readyz answered, and until nodes were Ready. */
  timings: { apiServerReadyMs: number; readyMs: number };
  /** With a real node: where its pods reach this machine, and the cluster's DNS server. */
  podNetwork?: { address: string; hostDnsIP: string };
  stop(): Promise<void>;
}

export const NODE_LABEL = 'kplex.dev/simulated-node';

/**
 * Beside a real node, simulated nodes take only pods that ask for them (kwok's own taint), so that pods
 * people create really run; scale tests tolerate it. Without a real node they take every pod.
 */
export const SIMULATED_NODE_TAINT = { key: SIMULATED_NODE_ANNOTATION, value: 'fake', effect: 'NoSchedule' };

/** A simulated node as kwok expects it: kwok fills in the rest of its status (conditions, node info). */
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

/**
 * The status kplex sets on a simulated node at every start. Both addresses: kwok's node-initialize
 * stage adds only missing ones, and when the Hostname is missing but the InternalIP is not it writes an
 * empty `addresses:`, so with the InternalIP alone every re-initialization (a restart, a node the
 * lifecycle controller marked NotReady) dropped the addresses, and logs and exec failed with "no
 * preferred addresses found". The kubelet port is this run's: kwok writes it only into a node it
 * initializes, not into one a restart finds (the data folder keeps the nodes).
 */
export function simulatedNodeStatus(name: string, kubeletPort: number): { status: Record<string, unknown> } {
  return {
    status: {
      addresses: [
        { type: 'InternalIP', address: SIMULATED_NODE_IP },
        { type: 'Hostname', address: name },
      ],
      daemonEndpoints: { kubeletEndpoint: { Port: kubeletPort } },
    },
  };
}

const NODE_LEASE_NAMESPACE = 'kube-node-lease';
const nodeLease = (name?: string): ResourceRef => ({ group: 'coordination.k8s.io', version: 'v1', resource: 'leases', namespace: NODE_LEASE_NAMESPACE, name });

type NodeWithConditions = KubeObject & { status?: { conditions?: { type: string; status: string }[] } };

/**
 * Waits until kwok manages every simulated node: Ready, with a Lease. kwok takes a node only once it
 * holds its Lease, so a node that still shows the Ready status of a previous run is not enough.
 */
async function waitNodesManaged(client: KubeClient, names: string[], kwok: ManagedProcess): Promise<void> {
  await kwok.waitReady(async () => {
    const [nodes, leases] = await Promise.all([client.list<NodeWithConditions>(core('nodes'), { labelSelector: NODE_LABEL }), client.list(nodeLease())]);
    const ready = new Set(nodes.items.filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).map((n) => n.metadata.name));
    const leased = new Set(leases.items.map((l) => l.metadata.name));
    const managed = names.every((n) => ready.has(n) && leased.has(n));
    if (!managed) await sleep(200);
    return managed;
  }, 60_000);
}

/**
 * Ready means usable: a first `kubectl run` needs the default ServiceAccount (admission refuses a pod
 * without it) and the root CA ConfigMap its token volume mounts. The controller manager makes both
 * shortly after it starts.
 */
async function waitUsable(client: KubeClient): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (const [ref, what] of [
    [core('serviceaccounts', 'default', 'default'), 'the default ServiceAccount'],
    [core('configmaps', 'default', 'kube-root-ca.crt'), 'the kube-root-ca.crt ConfigMap'],
  ] as const) {
    while (!(await client.find(ref))) {
      if (Date.now() > deadline) throw new Error(`the host controller manager did not create ${what} in namespace default within 60s`);
      await sleep(100);
    }
  }
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
      alongside: o.alongside,
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
    const configs = [...o.binaries.kwokStages, await writeKwokStages(o.dataDir), await writeKwokStreamingConfig(o.dataDir)];
    const kubeletPort = await freePort();
    const names = Array.from({ length: o.simulatedNodes }, (_, i) => `kplex-node-${i}`);
    const client = new KubeClient(cp.access);
    let kwok: ManagedProcess;
    try {
      for (const name of names) {
        await client.apply(core('nodes', undefined, name), nodeObject(name, !!realNode), 'kplex');
        await client.patch({ ...core('nodes', undefined, name), subresource: 'status' }, simulatedNodeStatus(name, kubeletPort));
      }
      // The Leases of a previous run name its kwok, which is gone; this kwok would leave the nodes alone
      // until they expire.
      for (const node of (await client.list(core('nodes'), { labelSelector: NODE_LABEL })).items) await client.delete(nodeLease(node.metadata.name));
      kwok = ManagedProcess.start({
        name: 'kwok',
        command: o.binaries.paths.kwok,
        args: kwokArgs({
          kubeconfig: cp.kubeconfigFile,
          configs,
          serverPort: kubeletPort,
          tlsCert: kwokFiles.cert,
          tlsKey: kwokFiles.key,
          podCidr: SIMULATED_POD_CIDR,
          extraArgs: o.componentArgs?.kwok,
        }),
        logFile: path.join(logDir, 'kwok.log'),
      });
      started.push(kwok);
      await waitNodesManaged(client, names, kwok);
      await waitUsable(client);
    } finally {
      await client.close();
    }
    return {
      access: cp.access,
      kubeconfigFile: cp.kubeconfigFile,
      etcdServers,
      processes: [etcd, ...cp.processes, ...(realNode?.processes ?? []), kwok],
      timings: { apiServerReadyMs: cp.readyMs, readyMs: Date.now() - begin },
      ...(realNode ? { podNetwork: { address: NODE_IP, hostDnsIP: CLUSTER_DNS_IP } } : {}),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
