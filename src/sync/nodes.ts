import type { Logger } from 'pino';
import { core, type KubeClient, type KubeObject } from '../k8s/client.js';
import { Informer } from '../k8s/informer.js';
import { StatusError } from '../k8s/status.js';
import type { TenantValues } from '../tenants/values.js';
import { nodeNameOf } from './pod-status.js';

/** Marks Nodes in a tenant that mirror host nodes (the tenant has none of its own). */
export const MIRRORED_NODE_LABEL = 'kplex.dev/host-node';

type Json = Record<string, unknown>;

const matches = (labels: Record<string, string> | undefined, selector: Record<string, string>): boolean =>
  Object.entries(selector).every(([k, v]) => labels?.[k] === v);

/** The Node a tenant sees for a host node: its labels and status ("fake": only readiness and capacity). */
export function tenantNode(hostNode: KubeObject, mode: TenantValues['sync']['nodes']['mode']): KubeObject {
  const status = (hostNode.status ?? {}) as Json;
  const fake = mode === 'fake';
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: hostNode.metadata.name,
      labels: { ...(fake ? { 'kubernetes.io/hostname': hostNode.metadata.name! } : hostNode.metadata.labels), [MIRRORED_NODE_LABEL]: 'true' },
    },
    spec: {},
    status: fake
      ? { capacity: status.capacity, allocatable: status.allocatable, conditions: (status.conditions as Json[] | undefined)?.filter((c) => c.type === 'Ready') }
      : { capacity: status.capacity, allocatable: status.allocatable, conditions: status.conditions, addresses: status.addresses, nodeInfo: status.nodeInfo, daemonEndpoints: status.daemonEndpoints },
  };
}

/**
 * Nodes in a tenant: by default one for each host node that runs one of the tenant's pods ("real" and
 * "fake"), or every host node ("all") or those matching `sync.nodes.selector`. Status follows the host
 * node; a node no pod uses any more disappears.
 */
export class NodeSync {
  private readonly hostNodes: Informer<KubeObject>;
  private readonly tenantNodes: Informer<KubeObject>;
  private used = new Set<string>();

  constructor(
    private readonly tenantClient: KubeClient,
    host: KubeClient,
    private readonly values: TenantValues,
    private readonly log: Logger,
    private readonly tenant: string,
  ) {
    const onError = (err: Error) => log.warn({ tenant, err: err.message }, 'node watch failed; retrying');
    this.hostNodes = new Informer<KubeObject>(host, core('nodes'), { onUpsert: (n) => void this.refresh(n).catch(onError) }, {}, onError);
    this.tenantNodes = new Informer<KubeObject>(tenantClient, core('nodes'), {}, { labelSelector: `${MIRRORED_NODE_LABEL}=true` }, onError);
  }

  async start(): Promise<void> {
    await Promise.all([this.hostNodes.start(), this.tenantNodes.start()]);
    if (this.wantsAll()) for (const n of this.hostNodes.list()) if (this.wanted(n.metadata.name!)) await this.ensure(n.metadata.name!);
  }

  private wantsAll(): boolean {
    return this.values.sync.nodes.mode === 'all' || Object.keys(this.values.sync.nodes.selector).length > 0;
  }

  private wanted(name: string): boolean {
    const node = this.hostNodes.get(undefined, name);
    if (!node) return false;
    if (Object.keys(this.values.sync.nodes.selector).length) return matches(node.metadata.labels, this.values.sync.nodes.selector);
    return this.values.sync.nodes.mode === 'all' || this.used.has(name);
  }

  /** Makes sure the tenant has a Node for host node `name`. */
  async ensure(name: string): Promise<void> {
    this.used.add(name);
    if (this.tenantNodes.get(undefined, name)) return;
    const hostNode = this.hostNodes.get(undefined, name);
    if (!hostNode) return;
    const desired = tenantNode(hostNode, this.values.sync.nodes.mode);
    try {
      const created = await this.tenantClient.create(core('nodes'), { ...desired, status: undefined });
      await this.tenantClient.json('PUT', `/api/v1/nodes/${name}/status`, { body: { ...created, status: desired.status } });
    } catch (err) {
      if (!(err instanceof StatusError && err.code === 409)) throw err;
    }
  }

  /** Keeps a tenant Node's status equal to its host node's. */
  private async refresh(hostNode: KubeObject): Promise<void> {
    const current = this.tenantNodes.get(undefined, hostNode.metadata.name!);
    if (!current) {
      if (this.wantsAll() && this.wanted(hostNode.metadata.name!)) await this.ensure(hostNode.metadata.name!);
      return;
    }
    const desired = tenantNode(hostNode, this.values.sync.nodes.mode);
    const ready = (s: unknown) => JSON.stringify(((s as Json | undefined)?.conditions as Json[] | undefined)?.map((c) => [c.type, c.status]));
    if (ready(current.status) === ready(desired.status)) return;
    await this.tenantClient.json('PUT', `/api/v1/nodes/${current.metadata.name}/status`, { body: { ...current, status: desired.status } }).catch((err) => {
      if (!(err instanceof StatusError && err.code === 409)) throw err;
    });
  }

  /** Given the tenant's host pods, removes tenant Nodes no pod runs on any more (unless all are wanted). */
  observe(hostPods: KubeObject[]): void {
    this.used = new Set(hostPods.map(nodeNameOf).filter((n): n is string => !!n));
    if (this.wantsAll()) return;
    for (const n of this.tenantNodes.list()) {
      if (!this.used.has(n.metadata.name!)) {
        void this.tenantClient.delete(core('nodes', undefined, n.metadata.name)).catch((err: Error) => this.log.warn({ tenant: this.tenant, err: err.message }, 'node removal failed'));
      }
    }
  }

  async stop(): Promise<void> {
    await Promise.all([this.hostNodes.stop(), this.tenantNodes.stop()]);
  }
}
