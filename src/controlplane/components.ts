// Command lines of the Kubernetes components kplex runs. Pure functions, so the flags are read and tested
// in one place; flags were checked against the v1.35 binaries' --help.
import path from 'node:path';
import type { Program } from './binaries.js';

/** Host and tenants share one Service IP range, so a mirrored Service keeps its ClusterIP on both sides. */
export const SERVICE_CIDR = '10.96.0.0/16';
export const KUBERNETES_SERVICE_IP = '10.96.0.1';
export const POD_CIDR = '10.244.0.0/16';

/** The files of one control plane's PKI folder. */
export const pkiFiles = (pkiDir: string) => ({
  caCert: path.join(pkiDir, 'ca.crt'),
  caKey: path.join(pkiDir, 'ca.key'),
  servingCert: path.join(pkiDir, 'apiserver.crt'),
  servingKey: path.join(pkiDir, 'apiserver.key'),
  adminCert: path.join(pkiDir, 'admin.crt'),
  adminKey: path.join(pkiDir, 'admin.key'),
  serviceAccountKey: path.join(pkiDir, 'sa.key'),
  serviceAccountPublicKey: path.join(pkiDir, 'sa.pub'),
  /** The aggregation layer's own CA: it signs only the client certificate the API server proxies with. */
  frontProxyCaCert: path.join(pkiDir, 'front-proxy-ca.crt'),
  frontProxyCaKey: path.join(pkiDir, 'front-proxy-ca.key'),
  frontProxyClientCert: path.join(pkiDir, 'front-proxy-client.crt'),
  frontProxyClientKey: path.join(pkiDir, 'front-proxy-client.key'),
});

/** The common name of the certificate an API server proxies aggregated API requests with. */
export const FRONT_PROXY_CLIENT = 'front-proxy-client';

export interface EtcdConfig {
  dataDir: string;
  clientPort: number;
  peerPort: number;
  /** Skips fsync: for throw-away clusters in tests only. */
  unsafeNoFsync?: boolean;
  /** A member of a cluster of several; absent: a single member on loopback. */
  member?: EtcdMember;
}

/**
 * One member of a replicated store. Peers reach each other at `https://NAME:PEER_PORT` over TLS from
 * their own CA, client certificates required: the peer port is on the pod network. The client port
 * stays on loopback (each API server uses its own pod's member).
 */
export interface EtcdMember {
  /** This member's name; also the host name its peers reach it by. */
  name: string;
  /** Every member's name, this one's included: the cluster it starts with. */
  names: string[];
  /** Sets this cluster apart, so a member of another one never joins it. */
  token: string;
  tls: {
    ca: string;
    /** Presented when serving peers; names every member. */
    serverCert: string;
    serverKey: string;
    /**
     * Presented when dialling a peer; without names, since etcd checks a client certificate's names
     * against the caller's address, and a member's pod address is not known when the certificate is made.
     */
    clientCert: string;
    clientKey: string;
  };
}

export function etcdArgs(c: EtcdConfig): string[] {
  const client = `http://127.0.0.1:${c.clientPort}`;
  return [
    `--data-dir=${c.dataDir}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    ...(c.member ? memberArgs(c.member, c.peerPort) : singleArgs(`http://127.0.0.1:${c.peerPort}`)),
    '--quota-backend-bytes=4294967296',
    '--auto-compaction-mode=periodic',
    '--auto-compaction-retention=5m',
    '--log-level=warn',
    ...(c.unsafeNoFsync ? ['--unsafe-no-fsync=true'] : []),
  ];
}

const singleArgs = (peer: string): string[] => ['--name=kplex', `--listen-peer-urls=${peer}`, `--initial-advertise-peer-urls=${peer}`, `--initial-cluster=kplex=${peer}`];

function memberArgs(m: EtcdMember, peerPort: number): string[] {
  const url = (name: string) => `https://${name}:${peerPort}`;
  return [
    `--name=${m.name}`,
    `--listen-peer-urls=https://0.0.0.0:${peerPort}`,
    `--initial-advertise-peer-urls=${url(m.name)}`,
    `--initial-cluster=${m.names.map((n) => `${n}=${url(n)}`).join(',')}`,
    `--initial-cluster-token=${m.token}`,
    '--initial-cluster-state=new',
    `--peer-trusted-ca-file=${m.tls.ca}`,
    `--peer-cert-file=${m.tls.serverCert}`,
    `--peer-key-file=${m.tls.serverKey}`,
    `--peer-client-cert-file=${m.tls.clientCert}`,
    `--peer-client-key-file=${m.tls.clientKey}`,
    '--peer-client-cert-auth=true',
  ];
}

export interface ApiServerConfig {
  etcdServers: string;
  /** One prefix per control plane lets many tenants share one etcd. */
  etcdPrefix: string;
  port: number;
  /**
   * Where it listens and what it advertises (the `kubernetes` Service's endpoint): 127.0.0.1, or the real
   * node's address when pods must reach it.
   */
  address?: string;
  /** Where it listens when not `address` alone: in a pod, every address (its containers call it on 127.0.0.1). */
  bindAddress?: string;
  pkiDir: string;
  /** "Node,RBAC" on the host (kubelets), "RBAC" in tenants. */
  authorizationModes: string;
  admissionConfigFile?: string;
  extraArgs?: string[];
}

export function apiServerArgs(c: ApiServerConfig): string[] {
  const f = pkiFiles(c.pkiDir);
  return [
    `--etcd-servers=${c.etcdServers}`,
    `--etcd-prefix=${c.etcdPrefix}`,
    `--bind-address=${c.bindAddress ?? c.address ?? '127.0.0.1'}`,
    `--advertise-address=${c.address ?? '127.0.0.1'}`,
    `--secure-port=${c.port}`,
    `--tls-cert-file=${f.servingCert}`,
    `--tls-private-key-file=${f.servingKey}`,
    `--client-ca-file=${f.caCert}`,
    '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
    `--service-account-key-file=${f.serviceAccountPublicKey}`,
    `--service-account-signing-key-file=${f.serviceAccountKey}`,
    `--authorization-mode=${c.authorizationModes}`,
    '--allow-privileged=true',
    `--service-cluster-ip-range=${SERVICE_CIDR}`,
    // The API server reaches kubelets (the real node's, and kwok) for logs/exec with the admin credential.
    `--kubelet-client-certificate=${f.adminCert}`,
    `--kubelet-client-key=${f.adminKey}`,
    '--kubelet-preferred-address-types=InternalIP',
    // The aggregation layer (metrics.k8s.io): requests reach an aggregated API server with the caller's
    // identity in these headers, vouched for by the front-proxy client certificate. Routing to the
    // Service's endpoint, not its ClusterIP: a tenant's API server has no Service network.
    `--requestheader-client-ca-file=${f.frontProxyCaCert}`,
    `--requestheader-allowed-names=${FRONT_PROXY_CLIENT}`,
    '--requestheader-username-headers=X-Remote-User',
    '--requestheader-group-headers=X-Remote-Group',
    '--requestheader-extra-headers-prefix=X-Remote-Extra-',
    `--proxy-client-cert-file=${f.frontProxyClientCert}`,
    `--proxy-client-key-file=${f.frontProxyClientKey}`,
    '--enable-aggregator-routing=true',
    '--profiling=false',
    ...(c.admissionConfigFile ? [`--admission-control-config-file=${c.admissionConfigFile}`] : []),
    ...(c.extraArgs ?? []),
  ];
}

export interface ControllerManagerConfig {
  kubeconfig: string;
  port: number;
  pkiDir: string;
  /** The --controllers list; tenants turn off what needs kubelets or cloud nodes. */
  controllers: string;
  extraArgs?: string[];
}

/**
 * Tenants have no kubelets: no node lifecycle, no node IPAM, no attach/detach of volumes to nodes, no
 * eviction by node taints (the host evicts, and the syncer brings the deletion). The host binds claims to
 * volumes; a binder in the tenant would set its claims back to Pending (it sees no volume for them)
 * against the Bound status the syncer brings from the host. No controllers of the API groups tenants do
 * not serve (TENANT_ARGS): certificate signing requests, dynamic resource allocation; nor storage
 * version migration.
 */
export const TENANT_CONTROLLERS = [
  '*',
  '-persistentvolume-binder',
  '-nodelifecycle',
  '-nodeipam',
  '-attachdetach',
  '-persistentvolume-expander',
  '-ttl',
  '-cloud-node-lifecycle',
  '-service-lb-controller',
  '-node-route-controller',
  '-taint-eviction-controller',
  '-certificatesigningrequest-approving-controller',
  '-certificatesigningrequest-cleaner-controller',
  '-certificatesigningrequest-signing-controller',
  '-kube-apiserver-serving-clustertrustbundle-publisher-controller',
  '-podcertificaterequest-cleaner-controller',
  '-resourceclaim-controller',
  '-device-taint-eviction-controller',
  '-storage-version-migrator-controller',
].join(',');

/**
 * What every tenant's components start with beyond the common flags: the levers that make an idle
 * tenant cheaper (README, "What a tenant costs", measured by `npm run bench tenant-levers`). A tenant
 * serves no DeviceClasses or ResourceClaims (the syncer drops a pod's claims: the host's devices are
 * not the tenant's) and no CertificateSigningRequests (its users get credentials from kplex, and a CSR
 * signed by the tenant's CA would be a credential for its API server behind the gateway's back).
 */
export const TENANT_ARGS: Partial<Record<Program, string[]>> = {
  'kube-apiserver': ['--runtime-config=resource.k8s.io/v1=false,certificates.k8s.io/v1=false'],
};

/** Flags per component from several sources, in order: a later source's flag comes later and so wins. */
export function mergeComponentArgs(...sources: Partial<Record<Program, string[]>>[]): Partial<Record<Program, string[]>> {
  const merged: Partial<Record<Program, string[]>> = {};
  for (const source of sources) {
    for (const [program, args] of Object.entries(source) as [Program, string[]][]) merged[program] = [...(merged[program] ?? []), ...args];
  }
  return merged;
}

/** Go's soft memory limit: near it the runtime collects more often instead of growing the heap. */
export const goMemoryLimitEnv = (bytes: number | undefined): Record<string, string> => (bytes ? { GOMEMLIMIT: String(bytes) } : {});

export function controllerManagerArgs(c: ControllerManagerConfig): string[] {
  const f = pkiFiles(c.pkiDir);
  return [
    `--kubeconfig=${c.kubeconfig}`,
    `--authentication-kubeconfig=${c.kubeconfig}`,
    `--authorization-kubeconfig=${c.kubeconfig}`,
    '--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics',
    `--root-ca-file=${f.caCert}`,
    `--service-account-private-key-file=${f.serviceAccountKey}`,
    '--use-service-account-credentials=true',
    `--cluster-signing-cert-file=${f.caCert}`,
    `--cluster-signing-key-file=${f.caKey}`,
    '--leader-elect=false',
    '--bind-address=127.0.0.1',
    `--secure-port=${c.port}`,
    `--service-cluster-ip-range=${SERVICE_CIDR}`,
    `--controllers=${c.controllers}`,
    ...(c.extraArgs ?? []),
  ];
}

export function schedulerArgs(c: { kubeconfig: string; port: number; extraArgs?: string[] }): string[] {
  return [
    `--kubeconfig=${c.kubeconfig}`,
    `--authentication-kubeconfig=${c.kubeconfig}`,
    `--authorization-kubeconfig=${c.kubeconfig}`,
    '--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics',
    '--leader-elect=false',
    '--bind-address=127.0.0.1',
    `--secure-port=${c.port}`,
    ...(c.extraArgs ?? []),
  ];
}

export interface KwokConfig {
  kubeconfig: string;
  /** Stage and Cluster{Logs,Exec,Attach,PortForward} files. */
  configs: string[];
  /** kwok's own server (logs, exec, …): the simulated nodes advertise it as their kubelet. */
  serverPort: number;
  tlsCert: string;
  tlsKey: string;
  /** Where simulated pods get their made-up addresses: apart from the real node's pods. */
  podCidr: string;
  extraArgs?: string[];
}

/** The annotation that marks a simulated node; kwok manages only those, never a real kubelet's node. */
export const SIMULATED_NODE_ANNOTATION = 'kwok.x-k8s.io/node';

/** Where simulated nodes say their kubelet is: kwok's own server, on this machine. */
export const SIMULATED_NODE_IP = '127.0.0.1';

export function kwokArgs(c: KwokConfig): string[] {
  return [
    `--kubeconfig=${c.kubeconfig}`,
    `--manage-nodes-with-annotation-selector=${SIMULATED_NODE_ANNOTATION}=fake`,
    ...c.configs.map((file) => `--config=${file}`),
    `--node-ip=${SIMULATED_NODE_IP}`,
    `--node-port=${c.serverPort}`,
    `--server-address=127.0.0.1:${c.serverPort}`,
    `--tls-cert-file=${c.tlsCert}`,
    `--tls-private-key-file=${c.tlsKey}`,
    `--cidr=${c.podCidr}`,
    // Heartbeats by Lease, as kubelet sends them (its default duration): kwok's node stages refresh the
    // status only every 10 to 20 minutes, so without a Lease the node lifecycle controller marks the
    // nodes NotReady after its grace period, and their pods not Ready.
    '--node-lease-duration-seconds=40',
    ...(c.extraArgs ?? []),
  ];
}

export interface TenantCorefileConfig {
  address: string;
  port: number;
  readyPort: number;
  kubeconfig: string;
  /** The host's DNS server, for names the tenant does not have; without it only the tenant's names resolve. */
  fallbackTo?: string;
}

/**
 * A tenant's CoreDNS: authoritative for cluster.local from the tenant's API alone, so other tenants'
 * and the host's Service names are not found; other names go to this machine's resolvers, as any
 * cluster's DNS forwards them. With a fallback, names the tenant lacks (cluster.local included) are
 * asked of the host's cluster DNS instead.
 */
export function tenantCorefile(c: TenantCorefileConfig): string {
  const fallthrough = c.fallbackTo ? 'fallthrough' : 'fallthrough in-addr.arpa ip6.arpa';
  return `.:${c.port} {
    bind ${c.address}
    errors
    ready 127.0.0.1:${c.readyPort}
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig ${c.kubeconfig}
        ${fallthrough}
    }
    forward . ${c.fallbackTo ?? '/etc/resolv.conf'}
    cache 30
}
`;
}
