// The configuration files of the embedded cluster's real node: pure functions, so the settings this
// machine needs (../shared/real-nodes.md) are read in one place.
import path from 'node:path';
import YAML from 'yaml';
import { POD_CIDR, SERVICE_CIDR } from '../controlplane/components.js';

/**
 * The node's own address. kubelet refuses a loopback node IP and the kernel has no dummy links, so one
 * end of a veth pair carries it; the host API server listens there too (pods reach it through the
 * `kubernetes` Service), which keeps it off the outside interface.
 */
export const NODE_IP = '10.250.0.1';
export const NODE_LINK = 'kplex-node0';
export const NODE_LINK_PEER = 'kplex-node1';
export const NODE_NAME = 'kplex-real-0';
/** The real node's pods; simulated pods get addresses from the rest of the pod range (kwok's --cidr). */
export const REAL_POD_CIDR = '10.244.0.0/24';
export const SIMULATED_POD_CIDR = '10.244.128.0/17';
export const BRIDGE = 'kplex0';
export const CLUSTER_DNS_IP = '10.96.0.10';
export const CLUSTER_DOMAIN = 'cluster.local';
export const PAUSE_IMAGE = 'registry.k8s.io/pause:3.10.1';
export const CNI_BIN_DIR = '/usr/lib/cni';

/** Where a data folder keeps its real node. */
export function nodePaths(dataDir: string) {
  const dir = path.join(dataDir, 'node');
  return {
    dir,
    containerdConfig: path.join(dir, 'containerd.toml'),
    containerdRoot: path.join(dir, 'containerd', 'root'),
    /** containerd's content store: each blob a file named by its sha256. */
    containerdBlobs: path.join(dir, 'containerd', 'root', 'io.containerd.content.v1.content', 'blobs', 'sha256'),
    containerdState: path.join(dir, 'containerd', 'state'),
    containerdSocket: path.join(dir, 'containerd.sock'),
    runcRoot: path.join(dir, 'runc'),
    cniConfDir: path.join(dir, 'cni', 'net.d'),
    cniIpamDir: path.join(dir, 'cni', 'ipam'),
    kubeletRoot: path.join(dir, 'kubelet'),
    kubeletConfig: path.join(dir, 'kubelet.yaml'),
    kubeletKubeconfig: path.join(dir, 'kubelet.kubeconfig'),
    proxyKubeconfig: path.join(dir, 'kube-proxy.kubeconfig'),
    corednsKubeconfig: path.join(dir, 'coredns.kubeconfig'),
    policyAgentKubeconfig: path.join(dir, 'kube-router.kubeconfig'),
    provisionerKubeconfig: path.join(dir, 'local-path-provisioner.kubeconfig'),
    metricsServerKubeconfig: path.join(dir, 'metrics-server.kubeconfig'),
    provisionerConfig: path.join(dir, 'local-path-config.json'),
    provisionerHelperPod: path.join(dir, 'local-path-helper-pod.yaml'),
    /** The volumes of the real node's storage class, one directory each; kept with the data folder. */
    volumesDir: path.join(dir, 'volumes'),
    corefile: path.join(dir, 'Corefile'),
    pkiDir: path.join(dir, 'pki'),
    sysctls: path.join(dir, 'sysctls.json'),
  };
}
export type NodePaths = ReturnType<typeof nodePaths>;

/**
 * The registries whose images the node's local registry stands in for: all of them (`*`), since no
 * registry is reachable here and a loaded image may carry any registry's name.
 */
export const MIRRORED_REGISTRIES = ['*'];

/**
 * containerd 1.6 with its CRI plugin, everything it keeps under the data folder, pulling from the local
 * image registry at `registryUrl`.
 */
export function containerdConfig(p: NodePaths, registryUrl: string): string {
  const q = JSON.stringify;
  return `version = 2
root = ${q(p.containerdRoot)}
state = ${q(p.containerdState)}
# Plugins that would look at the machine's own disks or need kernel modules this node does not use.
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = ${q(p.containerdSocket)}

[plugins."io.containerd.internal.v1.opt"]
  path = ${q(path.join(p.dir, 'containerd', 'opt'))}

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = ${q(PAUSE_IMAGE)}
  # The VM lacks CAP_SYS_RESOURCE: runc cannot lower oom_score_adj below its own.
  restrict_oom_score_adj = true
  disable_apparmor = true
  # Pod network namespaces under the state folder rather than /run/netns: all of them are this node's.
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = ${q(p.runcRoot)}
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = ${q(CNI_BIN_DIR)}
    conf_dir = ${q(p.cniConfDir)}
    max_conf_num = 1
${MIRRORED_REGISTRIES.map((r) => `  [plugins."io.containerd.grpc.v1.cri".registry.mirrors.${q(r)}]\n    endpoint = [${q(registryUrl)}]`).join('\n')}
`;
}

/** The pod network: one bridge, addresses from host-local (kept under the data folder), host ports. */
export function cniConfig(p: NodePaths): string {
  return JSON.stringify(
    {
      cniVersion: '1.0.0',
      name: 'kplex',
      plugins: [
        {
          type: 'bridge',
          bridge: BRIDGE,
          isGateway: true,
          // A pod reaching itself through a Service comes back over its own bridge port.
          hairpinMode: true,
          ipam: { type: 'host-local', ranges: [[{ subnet: REAL_POD_CIDR }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: p.cniIpamDir },
        },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    },
    null,
    2,
  );
}

export interface KubeletSettings {
  port: number;
  healthzPort: number;
  clientCaFile: string;
  tlsCertFile: string;
  tlsKeyFile: string;
}

export function kubeletConfig(p: NodePaths, s: KubeletSettings): string {
  return YAML.stringify({
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    // The machines run cgroup v1 (their infrastructure needs it); kubelet 1.35 refuses it unless told.
    failCgroupV1: false,
    cgroupDriver: 'cgroupfs',
    failSwapOn: false,
    containerRuntimeEndpoint: `unix://${p.containerdSocket}`,
    address: NODE_IP,
    port: s.port,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort: s.healthzPort,
    tlsCertFile: s.tlsCertFile,
    tlsPrivateKeyFile: s.tlsKeyFile,
    authentication: { anonymous: { enabled: false }, webhook: { enabled: true }, x509: { clientCAFile: s.clientCaFile } },
    authorization: { mode: 'Webhook' },
    clusterDNS: [CLUSTER_DNS_IP],
    clusterDomain: CLUSTER_DOMAIN,
    volumePluginDir: path.join(p.kubeletRoot, 'volume-plugins'),
    // The machine is shared and busy: evict only when it is really out of memory or disk.
    evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '1%', 'imagefs.available': '1%', 'nodefs.inodesFree': '1%' },
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    // Pods start within a second here; status should not lag behind.
    syncFrequency: '10s',
    serializeImagePulls: false,
  });
}

export function kubeletArgs(p: NodePaths, kubeconfig: string, labels: Record<string, string>): string[] {
  return [
    `--config=${p.kubeletConfig}`,
    `--kubeconfig=${kubeconfig}`,
    `--root-dir=${p.kubeletRoot}`,
    `--hostname-override=${NODE_NAME}`,
    `--node-ip=${NODE_IP}`,
    `--node-labels=${Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',')}`,
    '--v=1',
  ];
}

export function kubeProxyArgs(kubeconfig: string, healthzPort: number, metricsPort: number): string[] {
  return [
    `--kubeconfig=${kubeconfig}`,
    `--hostname-override=${NODE_NAME}`,
    `--bind-address=${NODE_IP}`,
    '--proxy-mode=iptables',
    `--cluster-cidr=${POD_CIDR}`,
    `--healthz-bind-address=127.0.0.1:${healthzPort}`,
    `--metrics-bind-address=127.0.0.1:${metricsPort}`,
    // Leave the machine's conntrack and localnet sysctls as they are.
    '--conntrack-max-per-core=0',
    '--conntrack-tcp-timeout-established=0',
    '--conntrack-tcp-timeout-close-wait=0',
    '--iptables-localhost-nodeports=false',
  ];
}

/**
 * The NetworkPolicy agent: kube-router's network policy controller alone (no routing, no service proxy,
 * no CNI setup), as iptables chains and ipsets on this node. Its health server would listen on every
 * interface, so it is off: the agent is ready when its chains exist (POLICY_AGENT_CHAIN).
 */
export function policyAgentArgs(kubeconfig: string): string[] {
  return [
    `--kubeconfig=${kubeconfig}`,
    `--hostname-override=${NODE_NAME}`,
    '--run-firewall=true',
    '--run-router=false',
    '--run-service-proxy=false',
    '--enable-cni=false',
    `--service-cluster-ip-range=${SERVICE_CIDR}`,
    '--health-port=0',
    '--metrics-port=0',
  ];
}

export interface MetricsServerSettings {
  kubeconfig: string;
  port: number;
  tlsCertFile: string;
  tlsKeyFile: string;
  /** The host CA, which signed kubelet's serving certificate. */
  kubeletCaFile: string;
  /** Scrapes only the nodes with this label: the real ones (kwok's simulated kubelets serve no metrics). */
  nodeSelector: string;
}

/**
 * metrics-server for the real node: scrapes kubelet's /metrics/resource on the Node's InternalIP and the
 * port the Node reports (kubelet's port is picked per run), and serves metrics.k8s.io on the node IP.
 * A short resolution so `kubectl top` answers within seconds of a pod starting.
 */
export function metricsServerArgs(s: MetricsServerSettings): string[] {
  return [
    `--kubeconfig=${s.kubeconfig}`,
    `--authentication-kubeconfig=${s.kubeconfig}`,
    `--authorization-kubeconfig=${s.kubeconfig}`,
    `--bind-address=${NODE_IP}`,
    `--secure-port=${s.port}`,
    `--tls-cert-file=${s.tlsCertFile}`,
    `--tls-private-key-file=${s.tlsKeyFile}`,
    `--kubelet-certificate-authority=${s.kubeletCaFile}`,
    '--kubelet-preferred-address-types=InternalIP',
    '--kubelet-use-node-status-port',
    `--node-selector=${s.nodeSelector}`,
    '--metric-resolution=15s',
  ];
}

/** The chain the agent hooks into FORWARD once it has synced: traffic between pods passes it. */
export const POLICY_AGENT_CHAIN = 'KUBE-ROUTER-FORWARD';

/** CoreDNS answers the cluster's names on the node IP; the kube-dns Service points there. */
export function corefile(p: NodePaths, healthPort: number, readyPort: number): string {
  return `.:53 {
    bind ${NODE_IP}
    errors
    health 127.0.0.1:${healthPort}
    ready 127.0.0.1:${readyPort}
    kubernetes ${CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {
        kubeconfig ${p.corednsKubeconfig}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    forward . /etc/resolv.conf
    cache 30
}
`;
}

/** The real node's storage: local-path-provisioner's name, the host namespace of its helper pods and the default class. */
export const PROVISIONER_NAME = 'rancher.io/local-path';
export const STORAGE_NAMESPACE = 'local-path-storage';
export const STORAGE_SERVICE_ACCOUNT = 'local-path-provisioner';
export const STORAGE_CONFIGMAP = 'local-path-config';
export const DEFAULT_STORAGE_CLASS = 'standard';
/** What a helper pod runs, with the volume's directory in $VOL_DIR (local-path-provisioner's own scripts). */
export const STORAGE_SCRIPTS = { setup: '#!/bin/sh\nset -eu\nmkdir -m 0777 -p "$VOL_DIR"\n', teardown: '#!/bin/sh\nset -eu\nrm -rf "$VOL_DIR"\n' };

/** local-path-provisioner's configuration: every node's volumes under the data folder. */
export function provisionerConfig(p: NodePaths): string {
  return JSON.stringify({ nodePathMap: [{ node: 'DEFAULT_PATH_FOR_NON_LISTED_NODES', paths: [p.volumesDir] }] }, null, 2);
}

/**
 * The pod that makes and removes a volume's directory on the node: the node's own busybox image (no
 * registry is reachable), no API token (it needs none).
 */
export function provisionerHelperPod(): string {
  return YAML.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'helper-pod' },
    spec: {
      automountServiceAccountToken: false,
      containers: [{ name: 'helper-pod', image: 'docker.io/library/busybox:latest', imagePullPolicy: 'IfNotPresent' }],
    },
  });
}

export function provisionerArgs(p: NodePaths): string[] {
  return [
    'start',
    `--kubeconfig=${p.provisionerKubeconfig}`,
    `--config=${p.provisionerConfig}`,
    `--helper-pod-file=${p.provisionerHelperPod}`,
    `--provisioner-name=${PROVISIONER_NAME}`,
    `--namespace=${STORAGE_NAMESPACE}`,
    `--service-account-name=${STORAGE_SERVICE_ACCOUNT}`,
    `--configmap-name=${STORAGE_CONFIGMAP}`,
    // Its own flag, unused by v0.0.30 (the helper pod file names the image), but required to be set.
    '--helper-image=docker.io/library/busybox:latest',
  ];
}
