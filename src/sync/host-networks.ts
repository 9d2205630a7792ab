import { core, type KubeClient, type KubeObject, type ResourceRef } from '../k8s/client.js';
import { Informer } from '../k8s/informer.js';
import { formatIP, parseIP, reachableEndpoints, type EndpointFacts, type HostNetworkFacts } from './addresses.js';
import { MANAGED_BY, ORIGIN } from './translate.js';

/** As long as the syncer's resync: each Endpoints is decided again then, with fresh answers. */
const LOOKUP_TTL_MS = 30_000;
const READY_TIMEOUT_MS = 10_000;
/**
 * At most this many addresses of one Endpoints are asked about, a few at a time, so one tenant's write
 * cannot make the host answer thousands of lists; the rest are refused. (Kubernetes' own endpoints
 * controller stops at 1000 addresses; selectorless Endpoints name a handful.)
 */
const MAX_LOOKUPS = 100;
const LOOKUP_CONCURRENCY = 4;

const serviceCIDRs: ResourceRef = { group: 'networking.k8s.io', version: 'v1', resource: 'servicecidrs' };

type NodeLike = KubeObject & { spec?: { podCIDR?: string; podCIDRs?: string[] }; status?: { addresses?: { type?: string; address?: string }[] } };

/** The host's networks as its API tells them: nodes' pod ranges and addresses, and the ServiceCIDR objects. */
export function hostNetworkFacts(nodes: NodeLike[], cidrs: KubeObject[]): HostNetworkFacts {
  return {
    podCIDRs: nodes.flatMap((n) => n.spec?.podCIDRs ?? (n.spec?.podCIDR ? [n.spec.podCIDR] : [])),
    serviceCIDRs: cidrs.flatMap((c) => (c.spec as { cidrs?: string[] } | undefined)?.cidrs ?? []),
    nodeIPs: nodes.flatMap((n) => (n.status?.addresses ?? []).filter((a) => a.type === 'InternalIP' || a.type === 'ExternalIP').flatMap((a) => a.address ?? [])),
  };
}

/** A pod of the tenant's own: its twin, off the host network (there it would have its node's IP). */
const isOwnPod = (pod: KubeObject, tenant: string, hostNamespace: string): boolean =>
  pod.metadata.namespace === hostNamespace &&
  pod.metadata.labels?.[ORIGIN.tenant] === tenant &&
  pod.metadata.labels?.[ORIGIN.managedBy] === MANAGED_BY &&
  !(pod.spec as { hostNetwork?: boolean } | undefined)?.hostNetwork;

const addressesOf = (ep: KubeObject): string[] =>
  (Array.isArray(ep.subsets) ? (ep.subsets as { addresses?: { ip?: string }[]; notReadyAddresses?: { ip?: string }[] }[]) : [])
    .flatMap((s) => [...(s.addresses ?? []), ...(s.notReadyAddresses ?? [])])
    .flatMap((a) => (typeof a.ip === 'string' ? [a.ip] : []));

/**
 * What the host's networks are, for deciding a tenant's Endpoints (addresses.ts). Nodes and
 * ServiceCIDRs come from two watches: a node that joins is known as soon as its event arrives, and
 * Endpoints mirrored before that are decided again at the syncer's next resync. Which pods use an
 * address is asked of the host, address by address, and kept until the next resync. Nothing waits
 * for the watches but Endpoints: a host that does not let them list (RBAC) stops those, and only those.
 */
export class HostNetworks {
  private readonly nodes: Informer<NodeLike>;
  private readonly cidrs: Informer<KubeObject>;
  private readonly lookups = new Map<string, { at: number; pods: Promise<KubeObject[]> }>();
  private synced?: Promise<void>;

  constructor(private readonly host: KubeClient, onError: (err: Error) => void) {
    this.nodes = new Informer<NodeLike>(host, core('nodes'), {}, {}, onError);
    this.cidrs = new Informer<KubeObject>(host, serviceCIDRs, {}, {}, onError);
  }

  start(): void {
    this.synced = Promise.all([this.nodes.start(), this.cidrs.start()]).then(() => undefined);
    // Stopped before the first list: ready() tells whoever waits for it.
    this.synced.catch(() => undefined);
  }

  async stop(): Promise<void> {
    await Promise.all([this.nodes.stop(), this.cidrs.stop()]);
  }

  /** A tenant's Endpoints with only the addresses it may point at; a failed lookup is an error, never a yes. */
  async reachable(ep: KubeObject, tenant: string, hostNamespace: string): Promise<{ endpoints: KubeObject; dropped: string[] }> {
    return reachableEndpoints(ep, await this.factsFor(addressesOf(ep), tenant, hostNamespace));
  }

  private async factsFor(addresses: string[], tenant: string, hostNamespace: string): Promise<EndpointFacts> {
    await this.ready();
    const now = Date.now();
    for (const [ip, l] of this.lookups) if (now - l.at >= LOOKUP_TTL_MS) this.lookups.delete(ip);
    const tenantPodIPs: string[] = [];
    const distinct = [...new Set(addresses)];
    const otherPodIPs = distinct.slice(MAX_LOOKUPS);
    const queue = distinct.slice(0, MAX_LOOKUPS);
    const worker = async (): Promise<void> => {
      for (let a = queue.shift(); a !== undefined; a = queue.shift()) {
        const ip = parseIP(a);
        if (!ip) continue;
        // The field selector matches the canonical text only.
        const pods = await this.podsUsing(formatIP(ip));
        if (pods.some((p) => !isOwnPod(p, tenant, hostNamespace))) otherPodIPs.push(a);
        else if (pods.length) tenantPodIPs.push(a);
      }
    };
    await Promise.all(Array.from({ length: LOOKUP_CONCURRENCY }, worker));
    return { ...hostNetworkFacts(this.nodes.list(), this.cidrs.list()), tenantPodIPs, otherPodIPs };
  }

  /** Both watches listed; until then no Endpoints are decided (the caller retries), never with half the facts. */
  private async ready(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('the host networks (nodes, servicecidrs) are not known yet')), READY_TIMEOUT_MS).unref();
    });
    try {
      await Promise.race([this.synced ?? Promise.reject(new Error('host networks not started')), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  private podsUsing(ip: string): Promise<KubeObject[]> {
    const cached = this.lookups.get(ip);
    if (cached) return cached.pods;
    // status.podIP is a field selector of pods: their first IP. (A second family's address of a
    // dual-stack pod is judged by the node ranges alone.)
    const pods = this.host.list(core('pods'), { fieldSelector: `status.podIP=${ip}`, limit: 20 }).then((l) => l.items);
    this.lookups.set(ip, { at: Date.now(), pods });
    pods.catch(() => this.lookups.delete(ip));
    return pods;
  }
}
