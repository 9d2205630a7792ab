// The `cluster` provider: a tenant's control plane as a StatefulSet in its host namespace (etcd on a
// PersistentVolumeClaim, kube-apiserver, kube-controller-manager and the tenant's DNS server in one pod),
// so it runs wherever the host schedules it and keeps its data on the host's storage, as in any cluster
// a platform team already has. The gateway reaches it at the host Service address its pods use.
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import YAML from 'yaml';
import { core, type KubeClient, type KubeObject, type ResourceRef } from '../k8s/client.js';
import { kubeconfigFor, toYaml } from '../k8s/kubeconfig.js';
import { hostNamespace } from '../tenants/names.js';
import { K8S_VERSION } from './binaries.js';
import { apiServerArgs, controllerManagerArgs, etcdArgs, goMemoryLimitEnv, TENANT_ARGS, TENANT_CONTROLLERS, tenantCorefile, type EtcdMember } from './components.js';
import { certificatesIn, ensurePki, loadOrCreateAuthority } from './control-plane.js';
import { probe } from './health.js';
import { tenantEtcdPrefix } from './local.js';
import { admissionConfiguration } from './pod-security.js';
import { certificateDnsNames, ensureLeaf, loadAuthority, readKeyPair } from './pki.js';
import { DNS_USER, grantReading } from './tenant-dns.js';
import { DEFAULT_SPEC, requestQuantities, type ControlPlaneEndpoint, type ControlPlaneProvider, type ControlPlaneSpec, type ResourceRequests } from './provider.js';

/** The StatefulSet, its pods' label and the Secret holding its PKI and configuration, in the tenant's host namespace. */
export const CLUSTER_CONTROL_PLANE = 'kplex-control-plane';
const CONFIG_SECRET = 'kplex-control-plane-config';
const LABEL = 'kplex.dev/control-plane';
const SPEC_HASH = 'kplex.dev/spec-hash';
/** On the StatefulSet: how many store members it was made with (fixed: they know each other by name). */
const MEMBERS = 'kplex.dev/store-members';
/** On the Services members reach each other by. */
const PEER_LABEL = 'kplex.dev/control-plane-peer';
/** Where the Secret is mounted: the PKI folder of components.ts, kubeconfigs, Corefile and admission file. */
const CONFIG_DIR = '/etc/kplex';
const API_PORT = 6443;
const PEER_PORT = 2380;
/** Not 53: the containers run as an unprivileged user; the host Service maps 53 to it. */
const DNS_PORT = 1053;
/** CoreDNS's `ready` plugin: on every address of the pod, for whoever debugs it. */
const DNS_READY_PORT = 8181;
const RUN_AS = 65532;

/** The images, by their upstream names and versions: a real cluster pulls them as usual; the embedded one serves locally built ones under those names. */
export interface ControlPlaneImages {
  apiServer: string;
  controllerManager: string;
  etcd: string;
  coredns: string;
}

export const UPSTREAM_IMAGES: ControlPlaneImages = {
  apiServer: `registry.k8s.io/kube-apiserver:${K8S_VERSION}`,
  controllerManager: `registry.k8s.io/kube-controller-manager:${K8S_VERSION}`,
  etcd: 'registry.k8s.io/etcd:3.6.5-0',
  coredns: 'registry.k8s.io/coredns/coredns:v1.15.0',
};

export interface ClusterProviderOptions {
  /** The host cluster, with the gateway's credential. */
  host: KubeClient;
  images?: ControlPlaneImages;
  /** The StorageClass of the etcd claim; the host's default when unset. */
  storageClassName?: string;
  /** The host cluster's DNS Service address, for tenants whose values fall back to it. */
  hostDnsIP: string;
  /** How long a control plane may take to become ready (image pulls included). */
  readyTimeoutMs?: number;
}

const statefulSetRef = (ns: string, name?: string): ResourceRef => ({ group: 'apps', version: 'v1', resource: 'statefulsets', namespace: ns, name });
const networkPolicyRef = (ns: string): ResourceRef => ({ group: 'networking.k8s.io', version: 'v1', resource: 'networkpolicies', namespace: ns, name: CLUSTER_CONTROL_PLANE });

/**
 * Lets anyone reach the control-plane pod's API server and DNS server, as they reach a local provider's
 * on the node's address (the API server authenticates; etcd and the controller manager listen on the
 * pod's loopback only): an isolated tenant's deny policy lets in only its own pods, which would shut
 * out the gateway and other replicas. Policies add up, so this opens those two ports to all, and the
 * store's peer port to the tenant's other control-plane pods.
 */
export function controlPlanePolicy(tenant: string, labels: Record<string, string>): KubeObject {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: CLUSTER_CONTROL_PLANE, namespace: hostNamespace(tenant), labels },
    spec: {
      podSelector: { matchLabels: { [LABEL]: tenant } },
      policyTypes: ['Ingress'],
      ingress: [
        { ports: [{ protocol: 'TCP', port: API_PORT }, { protocol: 'UDP', port: DNS_PORT }, { protocol: 'TCP', port: DNS_PORT }] },
        // Store members of a replicated control plane, from each other only.
        { from: [{ podSelector: { matchLabels: { [LABEL]: tenant } } }], ports: [{ protocol: 'TCP', port: PEER_PORT }] },
      ],
    },
  };
}

/** What the pod needs in its config Secret, besides the PKI files: the components' kubeconfigs, the DNS server's Corefile and the admission file. */
export function configFiles(tenant: string, pki: Record<string, string>, spec: ControlPlaneSpec, hostDnsIP: string): Record<string, string> {
  const local = `https://127.0.0.1:${API_PORT}`;
  const files: Record<string, string> = {
    ...pki,
    'admin.kubeconfig': toYaml(kubeconfigFor(`kplex-${tenant}`, { server: local, ca: pki['ca.crt'], cert: pki['admin.crt'], key: pki['admin.key'] })),
    'dns.kubeconfig': toYaml(kubeconfigFor(DNS_USER, { server: local, ca: pki['ca.crt'], cert: pki['dns.crt'], key: pki['dns.key'] })),
    Corefile: tenantCorefile({
      address: '0.0.0.0',
      port: DNS_PORT,
      readyPort: DNS_READY_PORT,
      kubeconfig: `${CONFIG_DIR}/dns.kubeconfig`,
      fallbackTo: spec.pods?.fallbackToHost ? hostDnsIP : undefined,
    }).replace(`ready 127.0.0.1:${DNS_READY_PORT}`, `ready :${DNS_READY_PORT}`),
  };
  const admission = admissionConfiguration(spec.podSecurity);
  if (admission) files['admission.yaml'] = YAML.stringify(admission);
  return files;
}

const MiB = 1024 ** 2;
type Container = 'etcd' | 'kube-apiserver' | 'kube-controller-manager' | 'coredns';

/**
 * What each container asks the scheduler for: about what it holds idle (README, "What a tenant costs"),
 * so the host places control planes by what they use, and a host namespace whose quota counts CPU or
 * memory admits the pod at all. The API server's memory is its Go memory limit: it collects to stay
 * near it, and a request below that would be overrun by every idle tenant.
 */
export function containerRequests(memoryLimits: ControlPlaneSpec['memoryLimits'] = {}): Record<Container, ResourceRequests> {
  return {
    etcd: { cpuMillis: 50, memoryBytes: 64 * MiB },
    'kube-apiserver': { cpuMillis: 100, memoryBytes: memoryLimits?.apiServer ?? 128 * MiB },
    'kube-controller-manager': { cpuMillis: 50, memoryBytes: memoryLimits?.controllerManager ?? 48 * MiB },
    coredns: { cpuMillis: 10, memoryBytes: 32 * MiB },
  };
}

/** The sum of the control-plane pod's requests. */
export function controlPlaneRequests(memoryLimits?: ControlPlaneSpec['memoryLimits']): ResourceRequests {
  return Object.values(containerRequests(memoryLimits)).reduce((a, r) => ({ cpuMillis: a.cpuMillis + r.cpuMillis, memoryBytes: a.memoryBytes + r.memoryBytes }), { cpuMillis: 0, memoryBytes: 0 });
}

/** A store member's pod name, which is also the name of the Service its peers reach it by. */
export const memberName = (i: number): string => `${CLUSTER_CONTROL_PLANE}-${i}`;

/** The store members of a replicated control plane: the pod names and the addresses of their peer Services. */
export interface Peer {
  name: string;
  address: string;
}

/**
 * The Service one store member is reached at by its peers: a fixed address, known before any pod runs
 * (so the members' certificate and /etc/hosts can name it), published while the pod is not ready (its
 * API server is not ready until the store has a quorum).
 */
export function peerService(tenant: string, i: number, labels: Record<string, string>): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: memberName(i), namespace: hostNamespace(tenant), labels: { ...labels, [PEER_LABEL]: tenant } },
    spec: {
      selector: { 'statefulset.kubernetes.io/pod-name': memberName(i) },
      publishNotReadyAddresses: true,
      ports: [{ name: 'peer', protocol: 'TCP', port: PEER_PORT, targetPort: PEER_PORT }],
    },
  };
}

/** The restricted pod security standard's settings: the control plane runs in a namespace that may enforce it. */
const restricted = { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } };

/**
 * The StatefulSet of a tenant's control plane (pure: what ensure() applies). `peers`: the members of a
 * replicated store, one pod each; absent: one pod with its store on loopback.
 */
export function controlPlaneStatefulSet(tenant: string, files: Record<string, string>, images: ControlPlaneImages, storageClassName: string | undefined, labels: Record<string, string>, memoryLimits: ControlPlaneSpec['memoryLimits'] = {}, peers?: Peer[]): KubeObject {
  const ns = hostNamespace(tenant);
  const podLabels = { ...labels, [LABEL]: tenant };
  const mounts = [{ name: 'config', mountPath: CONFIG_DIR, readOnly: true }];
  const apiserver = apiServerArgs({
    etcdServers: 'http://127.0.0.1:2379',
    etcdPrefix: tenantEtcdPrefix(tenant),
    port: API_PORT,
    address: '$(POD_IP)',
    bindAddress: '0.0.0.0',
    pkiDir: CONFIG_DIR,
    authorizationModes: 'RBAC',
    admissionConfigFile: files['admission.yaml'] ? `${CONFIG_DIR}/admission.yaml` : undefined,
    extraArgs: TENANT_ARGS['kube-apiserver'],
  });
  const requests = containerRequests(memoryLimits);
  const resources = (c: Container) => ({ requests: requestQuantities(requests[c]) });
  const env = (bytes: number | undefined) => Object.entries(goMemoryLimitEnv(bytes)).map(([name, value]) => ({ name, value }));
  const member: EtcdMember | undefined = peers && {
    name: '$(POD_NAME)',
    names: peers.map((p) => p.name),
    token: `kplex-${tenant}`,
    tls: {
      ca: `${CONFIG_DIR}/etcd-ca.crt`,
      serverCert: `${CONFIG_DIR}/etcd-peer.crt`,
      serverKey: `${CONFIG_DIR}/etcd-peer.key`,
      clientCert: `${CONFIG_DIR}/etcd-peer-client.crt`,
      clientKey: `${CONFIG_DIR}/etcd-peer-client.key`,
    },
  };
  const podSpec = {
    // The node's resolver, as the local provider's DNS server has: the host's cluster DNS would answer names of other namespaces.
    dnsPolicy: 'Default',
    enableServiceLinks: false,
    automountServiceAccountToken: false,
    securityContext: { runAsNonRoot: true, runAsUser: RUN_AS, runAsGroup: RUN_AS, fsGroup: RUN_AS, seccompProfile: { type: 'RuntimeDefault' } },
    // Members find each other by name without the host's cluster DNS (the pod uses the node's resolver).
    ...(peers ? { hostAliases: peers.map((p) => ({ ip: p.address, hostnames: [p.name] })) } : {}),
    // Members on different nodes where the host has them, so losing a node loses one member.
    ...(peers
      ? { affinity: { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: { [LABEL]: tenant } } } }] } } }
      : {}),
    containers: [
      {
        name: 'etcd',
        image: images.etcd,
        args: etcdArgs({ dataDir: '/var/lib/etcd/data', clientPort: 2379, peerPort: PEER_PORT, member }),
        ...(member ? { env: [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }], ports: [{ name: 'peer', containerPort: PEER_PORT }] } : {}),
        // A member reads its peer certificates from the config Secret.
        volumeMounts: [{ name: 'data', mountPath: '/var/lib/etcd' }, ...(member ? mounts : [])],
        resources: resources('etcd'),
        securityContext: restricted,
      },
      {
        name: 'kube-apiserver',
        image: images.apiServer,
        args: apiserver,
        env: [{ name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } }, ...env(memoryLimits?.apiServer)],
        ports: [{ name: 'https', containerPort: API_PORT }],
        readinessProbe: { httpGet: { path: '/readyz', port: API_PORT, scheme: 'HTTPS' }, periodSeconds: 2, failureThreshold: 3 },
        resources: resources('kube-apiserver'),
        volumeMounts: mounts,
        securityContext: restricted,
      },
      {
        name: 'kube-controller-manager',
        image: images.controllerManager,
        // Several controller managers take turns, through a Lease in the tenant, rather than all acting at once.
        args: controllerManagerArgs({ kubeconfig: `${CONFIG_DIR}/admin.kubeconfig`, port: 10257, pkiDir: CONFIG_DIR, controllers: TENANT_CONTROLLERS, extraArgs: peers ? ['--leader-elect=true'] : [] }),
        env: env(memoryLimits?.controllerManager),
        resources: resources('kube-controller-manager'),
        volumeMounts: mounts,
        securityContext: restricted,
      },
      {
        name: 'coredns',
        image: images.coredns,
        args: ['-conf', `${CONFIG_DIR}/Corefile`],
        // No readiness probe: it reads the tenant's names only once granted (after the API server is
        // ready, through the Service that a not-ready pod would be missing from).
        ports: [{ name: 'dns', containerPort: DNS_PORT, protocol: 'UDP' }, { name: 'dns-tcp', containerPort: DNS_PORT, protocol: 'TCP' }],
        resources: resources('coredns'),
        volumeMounts: mounts,
        securityContext: restricted,
      },
    ],
    volumes: [{ name: 'config', secret: { secretName: CONFIG_SECRET, defaultMode: 0o440 } }],
  };
  // The files are in a Secret, not in the template: a changed file must change the template too.
  const hash = createHash('sha256').update(JSON.stringify(files)).update(JSON.stringify(podSpec)).digest('hex').slice(0, 16);
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name: CLUSTER_CONTROL_PLANE, namespace: ns, labels: podLabels, annotations: { [MEMBERS]: String(peers?.length ?? 1) } },
    spec: {
      replicas: peers?.length ?? 1,
      // All members at once: none is ready until a quorum of them runs. (Fixed once made, as the members are.)
      ...(peers ? { podManagementPolicy: 'Parallel' } : {}),
      serviceName: CLUSTER_CONTROL_PLANE,
      selector: { matchLabels: { [LABEL]: tenant } },
      template: {
        metadata: { labels: podLabels, annotations: { [SPEC_HASH]: hash } },
        spec: podSpec,
      },
      volumeClaimTemplates: [
        {
          metadata: { name: 'data', labels: podLabels },
          spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } }, ...(storageClassName ? { storageClassName } : {}) },
        },
      ],
    },
  };
}

interface Secret extends KubeObject {
  data?: Record<string, string>;
}

export interface StatefulSet extends KubeObject {
  metadata: KubeObject['metadata'] & { generation?: number };
  spec?: { replicas?: number; template?: { metadata?: { annotations?: Record<string, string> } } };
  status?: { readyReplicas?: number; updatedReplicas?: number; currentRevision?: string; updateRevision?: string; observedGeneration?: number };
}

/**
 * Whether every pod of the StatefulSet's current spec is ready. Its status must have seen that spec
 * first: right after a changed template is applied, the status still describes the old pods, all
 * ready and "updated", and the one about to be replaced would be taken for the new one.
 */
export function rolledOut(sts: StatefulSet | undefined, replicas: number): boolean {
  const s = sts?.status;
  if (!sts || !s || (s.observedGeneration ?? 0) < (sts.metadata.generation ?? 1)) return false;
  return s.readyReplicas === replicas && s.updatedReplicas === replicas && s.currentRevision === s.updateRevision;
}

/**
 * The `cluster` provider. The controller makes the host namespace and the control-plane Service first
 * (its address is in the API server's certificate); this provider keeps the PKI in a Secret (made and
 * renewed here with the same rules as the local provider's), and the StatefulSet, whose pod template
 * carries a hash of that Secret and of itself, so a renewed certificate, a changed admission setting or
 * a new pod spec rolls the pod.
 */
export class ClusterProvider implements ControlPlaneProvider {
  readonly name = 'cluster';
  readonly servesPods = true;
  onDown?: (tenant: string) => void;
  private readonly images: ControlPlaneImages;

  constructor(private readonly o: ClusterProviderOptions) {
    this.images = o.images ?? UPSTREAM_IMAGES;
  }

  /** The host Service selects the control-plane pod: its endpoints follow the pod wherever it runs. */
  podsOf(tenant: string): { selector: Record<string, string>; apiPort: number; dnsPort: number } {
    return { selector: { [LABEL]: tenant }, apiPort: API_PORT, dnsPort: DNS_PORT };
  }

  readonly maxReplicas = 5;

  hostFootprint(spec: ControlPlaneSpec): { pods: number; services: number; requests: ResourceRequests } {
    const n = spec.replicas ?? 1;
    const one = controlPlaneRequests(spec.memoryLimits);
    return { pods: n, services: n > 1 ? n : 0, requests: { cpuMillis: n * one.cpuMillis, memoryBytes: n * one.memoryBytes } };
  }

  async ensure(tenant: string, spec: ControlPlaneSpec = DEFAULT_SPEC, rotateIssuedBefore?: Date): Promise<ControlPlaneEndpoint> {
    const serviceIP = spec.pods?.serviceIP;
    if (!serviceIP) throw new Error('the cluster provider needs the control-plane Service address');
    const ns = hostNamespace(tenant);
    const begin = Date.now();
    const replicas = spec.replicas ?? 1;
    const existing = await this.o.host.find<StatefulSet>(statefulSetRef(ns, CLUSTER_CONTROL_PLANE));
    const made = Number(existing?.metadata.annotations?.[MEMBERS] ?? 1);
    if (existing && made !== replicas) {
      throw new Error(`controlPlane.replicas cannot change from ${made} to ${replicas}: the store's members are fixed when it is made`);
    }
    const labels = { 'kplex.dev/tenant': tenant, 'app.kubernetes.io/managed-by': 'kplex' };
    const peers = replicas > 1 ? await this.peerServices(tenant, replicas, labels) : undefined;
    const { files, certificates } = await this.pki(tenant, serviceIP, spec, rotateIssuedBefore, peers);
    await this.o.host.apply(core('secrets', ns, CONFIG_SECRET), {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: CONFIG_SECRET, namespace: ns, labels },
      type: 'Opaque',
      data: Object.fromEntries(Object.entries(files).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
    }, 'kplex');
    await this.o.host.apply(networkPolicyRef(ns), controlPlanePolicy(tenant, labels), 'kplex');
    const wanted = controlPlaneStatefulSet(tenant, files, this.images, this.o.storageClassName, labels, spec.memoryLimits, peers);
    const unchanged = existing?.spec?.template?.metadata?.annotations?.[SPEC_HASH] === (wanted.spec as StatefulSet['spec'])?.template?.metadata?.annotations?.[SPEC_HASH];
    const access = { server: `https://${serviceIP}:443`, ca: files['ca.crt'], cert: files['admin.crt'], key: files['admin.key'] };
    const endpoint = (readyMs: number): ControlPlaneEndpoint => ({ access, readyMs, certificates, frontProxyCa: files['front-proxy-ca.crt'] });
    if (unchanged && existing?.spec?.replicas === replicas && rolledOut(existing, replicas)) return endpoint(0);
    await this.o.host.apply(statefulSetRef(ns, CLUSTER_CONTROL_PLANE), wanted, 'kplex');
    await this.waitReady(tenant, access, replicas);
    await grantReading(access);
    return endpoint(Date.now() - begin);
  }

  /** The Services the store members reach each other by, and their addresses. */
  private async peerServices(tenant: string, replicas: number, labels: Record<string, string>): Promise<Peer[]> {
    const ns = hostNamespace(tenant);
    const peers: Peer[] = [];
    for (let i = 0; i < replicas; i++) {
      const svc = await this.o.host.apply(core('services', ns, memberName(i)), peerService(tenant, i, labels), 'kplex');
      const address = (svc.spec as { clusterIP?: string } | undefined)?.clusterIP;
      if (!address || address === 'None') throw new Error(`the host gave Service ${ns}/${memberName(i)} no address`);
      peers.push({ name: memberName(i), address });
    }
    return peers;
  }

  /**
   * The tenant's PKI from its Secret, with what ensurePki adds or renews (in a private scratch folder,
   * removed at once), and the pod's other configuration files. With peers, the store's own CA and the
   * members' certificates: a CA of their own, so no certificate of the tenant's CA is a store member.
   */
  private async pki(tenant: string, serviceIP: string, spec: ControlPlaneSpec, rotateIssuedBefore?: Date, peers?: Peer[]) {
    const ns = hostNamespace(tenant);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'kplex-pki-'));
    try {
      const secret = await this.o.host.find<Secret>(core('secrets', ns, CONFIG_SECRET));
      for (const [file, b64] of Object.entries(secret?.data ?? {})) {
        if (/\.(crt|key|pub)$/.test(file)) await writeFile(path.join(dir, file), Buffer.from(b64, 'base64'), { mode: 0o600 });
      }
      const renewal = { rotateIssuedBefore };
      await ensurePki(dir, tenant, [serviceIP], renewal);
      await ensureLeaf(dir, 'dns', await loadAuthority((await readKeyPair(dir, 'ca'))!), { commonName: DNS_USER, client: true }, renewal);
      if (peers) {
        const etcdCa = await loadOrCreateAuthority(dir, 'etcd-ca', `kplex-${tenant}-etcd-ca`);
        const names = peers.map((p) => p.name);
        await ensureLeaf(dir, 'etcd-peer', etcdCa, { commonName: `kplex-${tenant}-etcd-peer`, server: true, dnsNames: names }, renewal, (pem) => names.every((n) => certificateDnsNames(pem).includes(n)));
        await ensureLeaf(dir, 'etcd-peer-client', etcdCa, { commonName: `kplex-${tenant}-etcd-peer`, client: true }, renewal);
      }
      const pki: Record<string, string> = {};
      for (const file of await readdir(dir)) pki[file] = await readFile(path.join(dir, file), 'utf8');
      return { files: configFiles(tenant, pki, spec, this.o.hostDnsIP), certificates: await certificatesIn(dir) };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** Until the pod of the current template is ready and its API server answers at the Service address. */
  private async waitReady(tenant: string, access: ControlPlaneEndpoint['access'], replicas: number): Promise<void> {
    const ns = hostNamespace(tenant);
    const deadline = Date.now() + (this.o.readyTimeoutMs ?? 240_000);
    for (;;) {
      const sts = await this.o.host.find<StatefulSet>(statefulSetRef(ns, CLUSTER_CONTROL_PLANE));
      if (rolledOut(sts, replicas) && (await probe(`${access.server}/readyz`, access).catch(() => false))) return;
      if (Date.now() > deadline) throw new Error(`the control-plane pod of ${tenant} was not ready after ${(this.o.readyTimeoutMs ?? 240_000) / 1000}s: ${await this.podProblem(ns)}`);
      await sleep(500);
    }
  }

  /** Why the control-plane pod is not running, in the words kubelet and the scheduler used. */
  private async podProblem(ns: string): Promise<string> {
    const pod = await this.o.host.find<KubeObject & { status?: { phase?: string; conditions?: { type: string; status: string; message?: string }[]; containerStatuses?: { name: string; state?: { waiting?: { reason?: string; message?: string } } }[] } }>(core('pods', ns, `${CLUSTER_CONTROL_PLANE}-0`));
    if (!pod) return 'no pod yet';
    const waiting = pod.status?.containerStatuses?.find((c) => c.state?.waiting);
    if (waiting) return `${waiting.name}: ${waiting.state!.waiting!.reason} ${waiting.state!.waiting!.message ?? ''}`.trim();
    const unscheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False');
    return unscheduled?.message ?? `pod phase ${pod.status?.phase ?? 'unknown'}`;
  }

  /** Scales it to none: the claim keeps the data, ensure() brings it back. */
  async stop(tenant: string): Promise<void> {
    const ns = hostNamespace(tenant);
    if (await this.o.host.find(statefulSetRef(ns, CLUSTER_CONTROL_PLANE))) {
      await this.o.host.patch(statefulSetRef(ns, CLUSTER_CONTROL_PLANE), { spec: { replicas: 0 } });
    }
  }

  async destroy(tenant: string): Promise<void> {
    const ns = hostNamespace(tenant);
    await this.o.host.delete(statefulSetRef(ns, CLUSTER_CONTROL_PLANE));
    await this.o.host.delete(core('secrets', ns, CONFIG_SECRET));
    await this.o.host.delete(networkPolicyRef(ns));
    const peers = await this.o.host.list(core('services', ns), { labelSelector: `${PEER_LABEL}=${tenant}` });
    for (const svc of peers.items) await this.o.host.delete(core('services', ns, svc.metadata.name));
    // A kept namespace (kplex delete --keep-namespace) must not keep the tenant's store.
    const claims = await this.o.host.list(core('persistentvolumeclaims', ns), { labelSelector: `${LABEL}=${tenant}` });
    for (const c of claims.items) await this.o.host.delete(core('persistentvolumeclaims', ns, c.metadata.name));
  }

  /** Nothing to stop: the control planes are the host's pods, and keep running when this gateway stops. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}

