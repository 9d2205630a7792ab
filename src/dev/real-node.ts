import { accessSync, constants, existsSync, mkdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { findNodeBinaries, type Binaries, type NodeProgram } from '../controlplane/binaries.js';
import { probe } from '../controlplane/health.js';
import { loadAuthority, readKeyPair, writeKeyPair, type CertificateAuthority } from '../controlplane/pki.js';
import { freePort } from '../controlplane/ports.js';
import { alive, ManagedProcess } from '../controlplane/process.js';
import { KubeClient, core, type ClusterAccess, type KubeObject } from '../k8s/client.js';
import { kubeconfigFor, toYaml, writePrivateFile } from '../k8s/kubeconfig.js';
import { command, mustRun } from './command.js';
import { ImageRegistry } from './image-registry.js';
import { setNodeSysctls, sweepRealNode } from './node-cleanup.js';
import {
  CLUSTER_DNS_IP,
  CNI_BIN_DIR,
  NODE_IP,
  NODE_LINK,
  NODE_LINK_PEER,
  NODE_NAME,
  POLICY_AGENT_CHAIN,
  DEFAULT_STORAGE_CLASS,
  PROVISIONER_NAME,
  STORAGE_CONFIGMAP,
  STORAGE_NAMESPACE,
  STORAGE_SCRIPTS,
  STORAGE_SERVICE_ACCOUNT,
  cniConfig,
  containerdConfig,
  corefile,
  kubeletArgs,
  kubeletConfig,
  kubeProxyArgs,
  metricsServerArgs,
  nodePaths,
  policyAgentArgs,
  provisionerArgs,
  provisionerConfig,
  provisionerHelperPod,
  type NodePaths,
} from './node-config.js';

export const REAL_NODE_LABEL = 'kplex.dev/real-node';

/** The machine runs one real node at a time: kube-proxy's chains, the bridge and kubelet's sockets are global. */
const LOCK_FILE = '/run/kplex/real-node.json';

interface Lock {
  pid: number;
  dataDir: string;
}

function readLock(): Lock | undefined {
  try {
    return JSON.parse(readFileSync(LOCK_FILE, 'utf8')) as Lock;
  } catch {
    return undefined;
  }
}

/** A command's path from $PATH, if it is there. */
const which = (cmd: string): string | undefined =>
  (process.env.PATH ?? '')
    .split(path.delimiter)
    .map((d) => path.join(d, cmd))
    .find((f) => {
      try {
        accessSync(f, constants.X_OK);
        return true;
      } catch {
        return false;
      }
    });

/** What the node needs from the machine, with the Debian package that provides it. */
const MACHINE_COMMANDS: [string, string][] = [
  ['containerd', 'containerd'],
  ['containerd-shim-runc-v2', 'containerd'],
  ['ctr', 'containerd'],
  ['runc', 'runc'],
  ['iptables', 'iptables'],
  ['iptables-save', 'iptables'],
  ['iptables-restore', 'iptables'],
  ['ip6tables', 'iptables'],
  ['conntrack', 'conntrack'],
  ['ip', 'iproute2'],
  ['ipset', 'ipset'],
];

export type RealNodeSupport = { ok: true; programs: Record<NodeProgram, string>; images: string[]; served: string[] } | { ok: false; reason: string };

/** Whether a real node can run here, and if not, why (one line for the user). */
export function realNodeSupport(binaries: Binaries, dataDir: string): RealNodeSupport {
  if (process.getuid?.() !== 0) return { ok: false, reason: 'real nodes need root (containerd, network namespaces, iptables)' };
  for (const [cmd, pkg] of MACHINE_COMMANDS) if (!which(cmd)) return { ok: false, reason: `${cmd} is not installed (Debian package ${pkg}; scripts/setup.sh installs it)` };
  for (const plugin of ['bridge', 'host-local', 'portmap', 'loopback']) {
    if (!existsSync(path.join(CNI_BIN_DIR, plugin))) return { ok: false, reason: `CNI plugin ${plugin} is not in ${CNI_BIN_DIR} (Debian package containernetworking-plugins)` };
  }
  if (!existsSync('/sys/fs/cgroup/memory') && !existsSync('/sys/fs/cgroup/cgroup.controllers')) return { ok: false, reason: 'no cgroup hierarchy under /sys/fs/cgroup' };
  const lock = readLock();
  if (lock && lock.pid !== process.pid && alive(lock.pid) && lock.dataDir !== dataDir) {
    return { ok: false, reason: `the kplex dev cluster of ${lock.dataDir} (pid ${lock.pid}) runs this machine's real node` };
  }
  const found = findNodeBinaries(binaries);
  if ('missing' in found) return { ok: false, reason: found.missing };
  return { ok: true, programs: found.paths, images: found.images, served: found.served };
}

/**
 * Removes a real node's leftovers for `dev down` or after a crash, unless another live cluster owns the
 * machine's real node (its bridge and chains must stay).
 */
export async function cleanUpRealNode(dataDir: string, kubeProxy?: string): Promise<void> {
  const lock = readLock();
  if (lock && lock.dataDir !== dataDir && alive(lock.pid)) return;
  if (!existsSync(nodePaths(dataDir).dir) && !lock) return;
  await sweepRealNode(dataDir, kubeProxy);
  if (lock && lock.dataDir !== dataDir) await sweepRealNode(lock.dataDir, kubeProxy);
  if (!lock || lock.dataDir === dataDir || !alive(lock.pid)) {
    rmSync(LOCK_FILE, { force: true });
    try {
      rmdirSync(path.dirname(LOCK_FILE));
    } catch {
      // absent, or holds something else
    }
  }
}

interface NodeCertificates {
  kubelet: ClusterAccess;
  proxy: ClusterAccess;
  coredns: ClusterAccess;
  policyAgent: ClusterAccess;
  provisioner: ClusterAccess;
  metricsServer: ClusterAccess;
}

/**
 * The node's certificates from the host CA, made once and kept in the data folder: kubelet's serving
 * pair (kubelet reads its files) and the client credentials of kubelet, kube-proxy and CoreDNS.
 */
async function nodeCertificates(p: NodePaths, ca: CertificateAuthority, server: string): Promise<NodeCertificates> {
  const issued = async (name: string, req: Parameters<CertificateAuthority['sign']>[0]) => {
    const kept = await readKeyPair(p.pkiDir, name);
    if (kept) return kept;
    const made = await ca.sign(req);
    await writeKeyPair(p.pkiDir, name, made);
    return made;
  };
  const access = (kp: { cert: string; key: string }): ClusterAccess => ({ server, ca: ca.cert, ...kp });
  await issued('kubelet-serving', { commonName: NODE_NAME, server: true, dnsNames: [NODE_NAME], ipAddresses: [NODE_IP] });
  // The host API server reaches metrics-server through its Service's endpoint and checks this name.
  await issued('metrics-server-serving', { commonName: 'metrics-server', server: true, dnsNames: [`${METRICS_SERVICE}.kube-system.svc`], ipAddresses: [NODE_IP] });
  return {
    // The Node authorizer knows a kubelet by this name and group; kube-proxy's is bound by the default RBAC.
    kubelet: access(await issued('kubelet-client', { commonName: `system:node:${NODE_NAME}`, organizations: ['system:nodes'], client: true })),
    proxy: access(await issued('kube-proxy', { commonName: 'system:kube-proxy', client: true })),
    coredns: access(await issued('coredns', { commonName: 'kplex:coredns', client: true })),
    policyAgent: access(await issued('policy-agent', { commonName: POLICY_AGENT_USER, client: true })),
    provisioner: access(await issued('local-path-provisioner', { commonName: PROVISIONER_USER, client: true })),
    metricsServer: access(await issued('metrics-server', { commonName: METRICS_SERVER_USER, client: true })),
  };
}

const POLICY_AGENT_USER = 'kplex:policy-agent';
const PROVISIONER_USER = 'kplex:local-path-provisioner';
const METRICS_SERVER_USER = 'kplex:metrics-server';
const METRICS_SERVICE = 'metrics-server';
/** The port of metrics-server's Service; the aggregation layer connects to the endpoint's own port. */
const METRICS_SERVICE_PORT = 443;

type Applied = { ref: Parameters<KubeClient['apply']>[0]; obj: KubeObject };

/** A ClusterRole with `rules` bound to the user of a node component's client certificate. */
function readerRole(user: string, rules: unknown[]): Applied[] {
  const rbac = (resource: string) => ({ group: 'rbac.authorization.k8s.io', version: 'v1', resource, name: user });
  return [
    { ref: rbac('clusterroles'), obj: { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: user }, rules } },
    {
      ref: rbac('clusterrolebindings'),
      obj: {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name: user },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: user },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user }],
      },
    },
  ];
}

/**
 * metrics-server as an aggregated API server: it reads the front-proxy CA the host API server publishes
 * in kube-system and asks the host whether each caller may do what it asks (what its own manifests grant).
 */
function metricsServerObjects(port: number, ca: string): Applied[] {
  const rbac = (resource: string, name: string, namespace?: string) => ({ group: 'rbac.authorization.k8s.io', version: 'v1', resource, name, namespace });
  const subjects = [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: METRICS_SERVER_USER }];
  return [
    ...readerRole(METRICS_SERVER_USER, [
      { apiGroups: [''], resources: ['nodes/metrics'], verbs: ['get'] },
      { apiGroups: [''], resources: ['pods', 'nodes'], verbs: ['get', 'list', 'watch'] },
    ]),
    {
      ref: rbac('clusterrolebindings', `${METRICS_SERVER_USER}:auth-delegator`),
      obj: {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name: `${METRICS_SERVER_USER}:auth-delegator` },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:auth-delegator' },
        subjects,
      },
    },
    {
      ref: rbac('rolebindings', `${METRICS_SERVER_USER}:auth-reader`, 'kube-system'),
      obj: {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name: `${METRICS_SERVER_USER}:auth-reader`, namespace: 'kube-system' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'extension-apiserver-authentication-reader' },
        subjects,
      },
    },
    {
      ref: core('services', 'kube-system', METRICS_SERVICE),
      obj: {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: METRICS_SERVICE, namespace: 'kube-system', labels: { 'k8s-app': 'metrics-server' } },
        spec: { ports: [{ name: 'https', port: METRICS_SERVICE_PORT, protocol: 'TCP', targetPort: port }] },
      },
    },
    {
      ref: { group: 'discovery.k8s.io', version: 'v1', resource: 'endpointslices', namespace: 'kube-system', name: `${METRICS_SERVICE}-kplex` },
      obj: {
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: {
          name: `${METRICS_SERVICE}-kplex`,
          namespace: 'kube-system',
          labels: { 'kubernetes.io/service-name': METRICS_SERVICE, 'endpointslice.kubernetes.io/managed-by': 'kplex.dev' },
        },
        addressType: 'IPv4',
        endpoints: [{ addresses: [NODE_IP], conditions: { ready: true }, nodeName: NODE_NAME }],
        ports: [{ name: 'https', port, protocol: 'TCP' }],
      },
    },
    {
      ref: { group: 'apiregistration.k8s.io', version: 'v1', resource: 'apiservices', name: 'v1beta1.metrics.k8s.io' },
      obj: {
        apiVersion: 'apiregistration.k8s.io/v1',
        kind: 'APIService',
        metadata: { name: 'v1beta1.metrics.k8s.io', labels: { 'k8s-app': 'metrics-server' } },
        spec: {
          group: 'metrics.k8s.io',
          version: 'v1beta1',
          service: { namespace: 'kube-system', name: METRICS_SERVICE, port: METRICS_SERVICE_PORT },
          caBundle: Buffer.from(ca).toString('base64'),
          groupPriorityMinimum: 100,
          versionPriority: 100,
        },
      },
    },
  ];
}

/**
 * The real node's storage: the namespace of local-path-provisioner's helper pods with their
 * ServiceAccount and scripts, the provisioner's rights (what its own manifests grant, with pods only in
 * that namespace, no pods/log), and the default StorageClass. The class allows only the real node: a simulated node
 * has no disk, so the scheduler puts a pod with such a claim on the real node.
 */
function storageObjects(): Applied[] {
  const rbac = (resource: string, namespace?: string) => ({ group: 'rbac.authorization.k8s.io', version: 'v1', resource, namespace, name: PROVISIONER_USER });
  const subjects = [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: PROVISIONER_USER }];
  return [
    { ref: core('namespaces', undefined, STORAGE_NAMESPACE), obj: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: STORAGE_NAMESPACE } } },
    {
      ref: core('serviceaccounts', STORAGE_NAMESPACE, STORAGE_SERVICE_ACCOUNT),
      obj: { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: STORAGE_SERVICE_ACCOUNT, namespace: STORAGE_NAMESPACE }, automountServiceAccountToken: false },
    },
    { ref: core('configmaps', STORAGE_NAMESPACE, STORAGE_CONFIGMAP), obj: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: STORAGE_CONFIGMAP, namespace: STORAGE_NAMESPACE }, data: STORAGE_SCRIPTS } },
    ...readerRole(PROVISIONER_USER, [
      { apiGroups: [''], resources: ['nodes', 'persistentvolumeclaims'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: [''], resources: ['persistentvolumes'], verbs: ['get', 'list', 'watch', 'create', 'patch', 'update', 'delete'] },
      { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
      { apiGroups: ['storage.k8s.io'], resources: ['storageclasses'], verbs: ['get', 'list', 'watch'] },
    ]),
    {
      ref: rbac('roles', STORAGE_NAMESPACE),
      obj: {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'Role',
        metadata: { name: PROVISIONER_USER, namespace: STORAGE_NAMESPACE },
        // No pods/log: v0.0.30 reads helper pods' logs only with an in-cluster configuration, which a
        // process on the machine lacks (it logs that it could not, and goes on).
        rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch', 'create', 'patch', 'update', 'delete'] }],
      },
    },
    {
      ref: rbac('rolebindings', STORAGE_NAMESPACE),
      obj: {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name: PROVISIONER_USER, namespace: STORAGE_NAMESPACE },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: PROVISIONER_USER },
        subjects,
      },
    },
    {
      ref: { group: 'storage.k8s.io', version: 'v1', resource: 'storageclasses', name: DEFAULT_STORAGE_CLASS },
      obj: {
        apiVersion: 'storage.k8s.io/v1',
        kind: 'StorageClass',
        metadata: { name: DEFAULT_STORAGE_CLASS, annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } },
        provisioner: PROVISIONER_NAME,
        // The provisioner makes the directory on the node the pod was scheduled to.
        volumeBindingMode: 'WaitForFirstConsumer',
        reclaimPolicy: 'Delete',
        allowedTopologies: [{ matchLabelExpressions: [{ key: REAL_NODE_LABEL, values: ['true'] }] }],
      },
    },
  ];
}

/**
 * What the node's host processes read besides kubelet's and kube-proxy's (bound by the default RBAC):
 * CoreDNS (the kubernetes plugin), with the kube-dns Service that points at it on the node IP, and the
 * NetworkPolicy agent (what kube-router's own manifests grant its policy controller).
 */
function nodeObjects(): Applied[] {
  const read = ['get', 'list', 'watch'];
  return [
    ...readerRole('kplex:coredns', [
      { apiGroups: [''], resources: ['endpoints', 'services', 'pods', 'namespaces'], verbs: ['list', 'watch'] },
      { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'] },
    ]),
    ...readerRole(POLICY_AGENT_USER, [
      { apiGroups: [''], resources: ['namespaces', 'pods', 'services', 'nodes', 'endpoints'], verbs: read },
      { apiGroups: ['networking.k8s.io'], resources: ['networkpolicies'], verbs: read },
      { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: read },
    ]),
    {
      ref: core('services', 'kube-system', 'kube-dns'),
      obj: {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'kube-dns', namespace: 'kube-system', labels: { 'k8s-app': 'kube-dns', 'kubernetes.io/name': 'CoreDNS' } },
        spec: {
          clusterIP: CLUSTER_DNS_IP,
          ports: [
            { name: 'dns', port: 53, protocol: 'UDP', targetPort: 53 },
            { name: 'dns-tcp', port: 53, protocol: 'TCP', targetPort: 53 },
          ],
        },
      },
    },
    {
      ref: { group: 'discovery.k8s.io', version: 'v1', resource: 'endpointslices', namespace: 'kube-system', name: 'kube-dns-kplex' },
      obj: {
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: {
          name: 'kube-dns-kplex',
          namespace: 'kube-system',
          labels: { 'kubernetes.io/service-name': 'kube-dns', 'endpointslice.kubernetes.io/managed-by': 'kplex.dev' },
        },
        addressType: 'IPv4',
        endpoints: [{ addresses: [NODE_IP], conditions: { ready: true }, nodeName: NODE_NAME }],
        ports: [
          { name: 'dns', port: 53, protocol: 'UDP' },
          { name: 'dns-tcp', port: 53, protocol: 'TCP' },
        ],
      },
    },
  ];
}

interface NodeStatus extends KubeObject {
  status?: { conditions?: { type: string; status: string; lastHeartbeatTime?: string }[] };
}

/**
 * The embedded cluster's real node: containerd (with runc and the CNI bridge), kubelet, kube-proxy,
 * CoreDNS as cluster DNS, kube-router as NetworkPolicy agent, local-path-provisioner as the dynamic
 * provisioner of the default StorageClass and metrics-server. `prepare` gives the machine the node's
 * address before the API server starts (it listens there); `start` joins the node once the control plane runs. `stop` leaves nothing behind.
 */
export class RealNode {
  readonly processes: ManagedProcess[] = [];
  readonly paths: NodePaths;
  private registry?: ImageRegistry;

  private constructor(
    private readonly dataDir: string,
    private readonly logDir: string,
    private readonly support: Extract<RealNodeSupport, { ok: true }>,
  ) {
    this.paths = nodePaths(dataDir);
  }

  /** Takes the machine's real-node lock, removes a crashed run's leftovers and adds the node's address. */
  static async prepare(dataDir: string, logDir: string, support: Extract<RealNodeSupport, { ok: true }>): Promise<RealNode> {
    const node = new RealNode(dataDir, logDir, support);
    await cleanUpRealNode(dataDir, support.programs['kube-proxy']);
    mkdirSync(path.dirname(LOCK_FILE), { recursive: true });
    writeFileSync(LOCK_FILE, JSON.stringify({ pid: process.pid, dataDir } satisfies Lock));
    try {
      await mkdir(node.paths.dir, { recursive: true });
      await mustRun('ip', ['link', 'add', NODE_LINK, 'type', 'veth', 'peer', 'name', NODE_LINK_PEER]);
      await mustRun('ip', ['addr', 'add', `${NODE_IP}/32`, 'dev', NODE_LINK]);
      await mustRun('ip', ['link', 'set', NODE_LINK, 'up']);
      await mustRun('ip', ['link', 'set', NODE_LINK_PEER, 'up']);
      setNodeSysctls(node.paths);
    } catch (err) {
      await node.stop();
      throw err;
    }
    return node;
  }

  private run(name: string, command: string, args: string[]): ManagedProcess {
    const p = ManagedProcess.start({ name, command, args, logFile: path.join(this.logDir, `${name}.log`) });
    this.processes.push(p);
    return p;
  }

  /** Starts containerd, imports the images, and joins kubelet, kube-proxy, CoreDNS, the policy agent and metrics-server to the cluster. */
  async join(host: { access: ClusterAccess; pkiDir: string }): Promise<void> {
    const p = this.paths;
    const bin = this.support.programs;
    const ca = await loadAuthority((await readKeyPair(host.pkiDir, 'ca'))!);
    const certs = await nodeCertificates(p, ca, host.access.server);
    await mkdir(p.cniConfDir, { recursive: true });
    this.registry = await ImageRegistry.start([...this.support.images, ...this.support.served], { containerdSocket: p.containerdSocket, contentDir: p.containerdBlobs });
    await writeFile(p.containerdConfig, containerdConfig(p, this.registry.url));
    await writeFile(path.join(p.cniConfDir, '10-kplex.conflist'), cniConfig(p));

    const containerd = this.run('containerd', which('containerd')!, ['--config', p.containerdConfig]);
    const ctr = (args: string[], timeoutMs?: number) => mustRun('ctr', ['--address', p.containerdSocket, '-n', 'k8s.io', ...args], timeoutMs);
    await containerd.waitReady(async () => (await command('ctr', ['--address', p.containerdSocket, 'version'], 5_000)).code === 0, 30_000);
    // Sandboxes of an earlier run (a crash) would be taken over by kubelet half-working: start clean.
    await this.removePods();
    for (const image of this.support.images) await ctr(['images', 'import', image], 60_000);

    const servingFiles = { cert: path.join(p.pkiDir, 'kubelet-serving.crt'), key: path.join(p.pkiDir, 'kubelet-serving.key') };
    const caFile = path.join(host.pkiDir, 'ca.crt');
    writePrivateFile(p.kubeletKubeconfig, toYaml(kubeconfigFor('kubelet', certs.kubelet)));
    writePrivateFile(p.proxyKubeconfig, toYaml(kubeconfigFor('kube-proxy', certs.proxy)));
    writePrivateFile(p.corednsKubeconfig, toYaml(kubeconfigFor('coredns', certs.coredns)));
    writePrivateFile(p.policyAgentKubeconfig, toYaml(kubeconfigFor('kube-router', certs.policyAgent)));
    writePrivateFile(p.provisionerKubeconfig, toYaml(kubeconfigFor('local-path-provisioner', certs.provisioner)));
    writePrivateFile(p.metricsServerKubeconfig, toYaml(kubeconfigFor('metrics-server', certs.metricsServer)));
    await writeFile(p.provisionerConfig, provisionerConfig(p));
    await writeFile(p.provisionerHelperPod, provisionerHelperPod());
    const healthzPort = await freePort();
    await writeFile(
      p.kubeletConfig,
      kubeletConfig(p, { port: await freePort(), healthzPort, clientCaFile: caFile, tlsCertFile: servingFiles.cert, tlsKeyFile: servingFiles.key }),
    );
    const client = new KubeClient(host.access);
    try {
      for (const { ref, obj } of [...nodeObjects(), ...storageObjects()]) await client.apply(ref, obj, 'kplex');
      // A kept data folder holds the Ready condition of the previous run: only a newer heartbeat counts.
      const since = Math.floor(Date.now() / 1000) * 1000;
      const kubelet = this.run('kubelet', bin.kubelet, kubeletArgs(p, p.kubeletKubeconfig, { [REAL_NODE_LABEL]: 'true' }));
      const proxyHealth = await freePort();
      const proxy = this.run('kube-proxy', bin['kube-proxy'], kubeProxyArgs(p.proxyKubeconfig, proxyHealth, await freePort()));
      const dnsReady = await freePort();
      await writeFile(p.corefile, corefile(p, await freePort(), dnsReady));
      const coredns = this.run('coredns', bin.coredns, ['-conf', p.corefile]);
      await kubelet.waitReady(async () => {
        const n = await client.find<NodeStatus>(core('nodes', undefined, NODE_NAME));
        const ready = n?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True' && Date.parse(c.lastHeartbeatTime ?? '') >= since) ?? false;
        if (!ready) await sleep(250);
        return ready;
      }, 120_000);
      // The agent finds the node's address on its Node object, so it starts once kubelet registered it.
      const policyAgent = this.run('kube-router', bin['kube-router'], policyAgentArgs(p.policyAgentKubeconfig));
      // It has no health endpoint; a claim made before it watches is provisioned once it has listed.
      this.run('local-path-provisioner', bin['local-path-provisioner'], provisionerArgs(p));
      const metricsPort = await freePort();
      for (const { ref, obj } of metricsServerObjects(metricsPort, ca.cert)) await client.apply(ref, obj, 'kplex');
      const metricsServer = this.run('metrics-server', bin['metrics-server'], metricsServerArgs({
        kubeconfig: p.metricsServerKubeconfig,
        port: metricsPort,
        tlsCertFile: path.join(p.pkiDir, 'metrics-server-serving.crt'),
        tlsKeyFile: path.join(p.pkiDir, 'metrics-server-serving.key'),
        kubeletCaFile: caFile,
        nodeSelector: `${REAL_NODE_LABEL}=true`,
      }));
      await Promise.all([
        proxy.waitReady(() => probe(`http://127.0.0.1:${proxyHealth}/healthz`), 60_000),
        coredns.waitReady(() => probe(`http://127.0.0.1:${dnsReady}/ready`), 60_000),
        // Live, not ready: it is ready after its first scrape, which `kubectl top` waits for anyway.
        metricsServer.waitReady(() => probe(`https://${NODE_IP}:${metricsPort}/livez`), 60_000),
        policyAgent.waitReady(async () => {
          const synced = (await command('iptables', ['-w', '5', '-S', POLICY_AGENT_CHAIN], 10_000)).code === 0;
          if (!synced) await sleep(250);
          return synced;
        }, 60_000),
      ]);
    } finally {
      await client.close();
    }
  }

  /** Stops and removes every pod sandbox through the CRI, so the network plugin releases its interfaces. */
  private async removePods(): Promise<void> {
    const endpoint = ['--runtime-endpoint', `unix://${this.paths.containerdSocket}`, '--timeout', '20s'];
    await command(this.support.programs.crictl, [...endpoint, 'rmp', '--all', '--force'], 60_000);
  }

  /**
   * Stops the node: pods first (through the CRI, so the network plugin releases their interfaces and
   * addresses), then its processes, then whatever is left on the machine.
   */
  async stop(): Promise<void> {
    const [containerd, ...rest] = this.processes;
    for (const p of rest.reverse()) await p.stop(5_000);
    if (containerd) {
      await this.removePods();
      await containerd.stop(10_000);
    }
    await this.registry?.stop();
    await cleanUpRealNode(this.dataDir, this.support.programs['kube-proxy']);
  }
}
