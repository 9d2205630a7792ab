import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { FRONT_PROXY_CLIENT } from '../controlplane/components.js';
import { createAuthority, type CertificateAuthority, type KeyPair } from '../controlplane/pki.js';
import type { ControlPlaneEndpoint } from '../controlplane/provider.js';
import { core, KubeClient, type ClusterAccess, type KubeObject, type ResourceRef } from '../k8s/client.js';
import { internalError, StatusError, unauthorized, writeStatus } from '../k8s/status.js';
import { hostNamespace, TENANT_METRICS_SERVICE } from '../tenants/names.js';
import { FIELD_MANAGER } from '../tenants/resources.js';
import {
  answer,
  listQuery,
  METRICS_GROUP,
  METRICS_VERSION,
  parseMetricsPath,
  tenantNodeMetrics,
  tenantPodMetrics,
  type NodeMetrics,
  type PodMetrics,
} from './tenant-metrics.js';

/** The tenant Service its API server reaches the adapter through (by its endpoint: aggregator routing). */
export const METRICS_SERVICE = TENANT_METRICS_SERVICE;
export const METRICS_SERVICE_NAMESPACE = 'kube-system';
const SERVICE_PORT = 443;

const metricsRef = (resource: 'pods' | 'nodes', namespace?: string): ResourceRef => ({ group: METRICS_GROUP, version: METRICS_VERSION, resource, namespace });

/**
 * What registers the adapter in a tenant: the metrics.k8s.io APIService, a Service without ClusterIP
 * (none is taken from the range tenants share with the host) whose one endpoint is the adapter, and
 * read access for the tenant's view, edit and admin roles (what metrics-server's manifests add).
 */
export function registrationObjects(address: string, port: number, caBundle: string): { ref: ResourceRef; obj: KubeObject }[] {
  const ns = METRICS_SERVICE_NAMESPACE;
  return [
    {
      ref: { group: 'rbac.authorization.k8s.io', version: 'v1', resource: 'clusterroles', name: 'kplex:metrics-reader' },
      obj: {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRole',
        metadata: {
          name: 'kplex:metrics-reader',
          labels: {
            'rbac.authorization.k8s.io/aggregate-to-view': 'true',
            'rbac.authorization.k8s.io/aggregate-to-edit': 'true',
            'rbac.authorization.k8s.io/aggregate-to-admin': 'true',
          },
        },
        rules: [{ apiGroups: [METRICS_GROUP], resources: ['pods', 'nodes'], verbs: ['get', 'list', 'watch'] }],
      },
    },
    {
      ref: core('services', ns, METRICS_SERVICE),
      obj: {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: METRICS_SERVICE, namespace: ns },
        spec: { clusterIP: 'None', ports: [{ name: 'https', port: SERVICE_PORT, protocol: 'TCP' }] },
      },
    },
    {
      ref: { group: 'discovery.k8s.io', version: 'v1', resource: 'endpointslices', namespace: ns, name: METRICS_SERVICE },
      obj: {
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: { name: METRICS_SERVICE, namespace: ns, labels: { 'kubernetes.io/service-name': METRICS_SERVICE, 'endpointslice.kubernetes.io/managed-by': 'kplex.dev' } },
        addressType: 'IPv4',
        endpoints: [{ addresses: [address], conditions: { ready: true } }],
        ports: [{ name: 'https', port, protocol: 'TCP' }],
      },
    },
    {
      ref: { group: 'apiregistration.k8s.io', version: 'v1', resource: 'apiservices', name: `${METRICS_VERSION}.${METRICS_GROUP}` },
      obj: {
        apiVersion: 'apiregistration.k8s.io/v1',
        kind: 'APIService',
        metadata: { name: `${METRICS_VERSION}.${METRICS_GROUP}` },
        spec: {
          group: METRICS_GROUP,
          version: METRICS_VERSION,
          service: { namespace: ns, name: METRICS_SERVICE, port: SERVICE_PORT },
          caBundle: Buffer.from(caBundle).toString('base64'),
          groupPriorityMinimum: 100,
          versionPriority: 100,
        },
      },
    },
  ];
}

function writeJson(res: ServerResponse, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-cache, private' });
  res.end(text);
}

/**
 * metrics.k8s.io for one tenant, served to that tenant's API server only: TLS accepts no client
 * certificate but the one its front-proxy CA signed for the API server. It reads the host's metrics of
 * the tenant's host namespace and answers in the tenant's names.
 */
export class TenantMetricsAdapter {
  private constructor(
    private readonly tenant: string,
    private readonly server: https.Server,
    private readonly host: KubeClient,
    private readonly tenantClient: KubeClient,
    private readonly log: Logger,
  ) {}

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  static async start(o: { tenant: string; host: KubeClient; endpoint: { access: ClusterAccess; frontProxyCa: string }; serving: KeyPair; address: string; log: Logger }): Promise<TenantMetricsAdapter> {
    const server = https.createServer({ cert: o.serving.cert, key: o.serving.key, ca: o.endpoint.frontProxyCa, requestCert: true, rejectUnauthorized: true });
    const adapter = new TenantMetricsAdapter(o.tenant, server, o.host, new KubeClient(o.endpoint.access, { connections: 4 }), o.log);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      adapter.handle(req, res).catch((err: Error) => {
        if (err instanceof StatusError && err.code < 500) return writeStatus(res, err);
        o.log.warn({ tenant: o.tenant, url: req.url, err: err.message }, 'metrics request failed');
        writeStatus(res, err instanceof StatusError && err.code === 503 ? err : internalError('the host metrics are not available'));
      });
    });
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, o.address, () => resolve());
      });
    } catch (err) {
      await adapter.tenantClient.close();
      throw err;
    }
    return adapter;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const socket = req.socket as TLSSocket;
    if (!socket.authorized || socket.getPeerCertificate().subject?.CN !== FRONT_PROXY_CLIENT) throw unauthorized('not the tenant API server\'s front proxy');
    if (req.method !== 'GET') throw new StatusError(405, 'MethodNotAllowed', `${req.method} is not supported by ${METRICS_GROUP}`);
    const url = new URL(`https://adapter${req.url ?? '/'}`);
    const r = parseMetricsPath(url.pathname);
    if (r.kind === 'discovery') return writeJson(res, r.body);
    const query = listQuery(url.searchParams);
    const hostNs = hostNamespace(this.tenant);
    // The tenant's own API server evaluates the tenant's namespace, name and selectors; the host is asked
    // only about the tenant's host namespace.
    const tenantObjects = async (resource: 'pods' | 'nodes', namespace?: string, name?: string): Promise<KubeObject[]> => {
      if (name === undefined) return (await this.tenantClient.list(core(resource, namespace), query)).items;
      const found = await this.tenantClient.find(core(resource, namespace, name));
      return found ? [found] : [];
    };
    if (r.kind === 'pods') {
      const [tenantPods, hostPods, hostMetrics] = await Promise.all([
        tenantObjects('pods', r.namespace, r.name),
        this.host.list(core('pods', hostNs)),
        this.host.list<PodMetrics>(metricsRef('pods', hostNs)),
      ]);
      return writeJson(res, answer('PodMetrics', tenantPodMetrics(this.tenant, tenantPods, hostPods.items, hostMetrics.items), r.name));
    }
    const [tenantNodes, hostPods, hostMetrics] = await Promise.all([
      tenantObjects('nodes', undefined, r.name),
      this.host.list(core('pods', hostNs)),
      this.host.list<NodeMetrics>(metricsRef('nodes')),
    ]);
    return writeJson(res, answer('NodeMetrics', tenantNodeMetrics(this.tenant, tenantNodes, hostPods.items, hostMetrics.items), r.name));
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await this.tenantClient.close();
  }
}

/**
 * One adapter per tenant with an aggregation layer, listening on `address` (where tenant API servers
 * reach it), registered in the tenant each time the tenant is reconciled.
 */
export class MetricsAdapters {
  private readonly running = new Map<string, { adapter: TenantMetricsAdapter; started: string }>();
  private ca?: Promise<CertificateAuthority>;

  constructor(
    private readonly host: KubeClient,
    private readonly address: string,
    private readonly log: Logger,
  ) {}

  async ensure(tenant: string, endpoint: ControlPlaneEndpoint): Promise<void> {
    const { frontProxyCa } = endpoint;
    if (!frontProxyCa) return;
    const started = JSON.stringify([endpoint.access, frontProxyCa]);
    let entry = this.running.get(tenant);
    if (entry?.started !== started) {
      await this.stop(tenant);
      // Serving certificates of an in-memory CA: each registration carries the CA, so a restart re-trusts.
      this.ca ??= createAuthority('kplex-metrics-adapter-ca');
      const ca = await this.ca;
      const serving = await ca.sign({ commonName: METRICS_SERVICE, server: true, dnsNames: [`${METRICS_SERVICE}.${METRICS_SERVICE_NAMESPACE}.svc`] });
      const adapter = await TenantMetricsAdapter.start({ tenant, host: this.host, endpoint: { access: endpoint.access, frontProxyCa }, serving, address: this.address, log: this.log });
      entry = { adapter, started };
      this.running.set(tenant, entry);
    }
    const ca = await this.ca!;
    const client = new KubeClient(endpoint.access, { connections: 2 });
    try {
      for (const { ref, obj } of registrationObjects(this.address, entry.adapter.port, ca.cert)) await client.apply(ref, obj, FIELD_MANAGER);
    } finally {
      await client.close();
    }
  }

  async stop(tenant: string): Promise<void> {
    const entry = this.running.get(tenant);
    if (!entry) return;
    this.running.delete(tenant);
    await entry.adapter.stop();
  }

  async close(): Promise<void> {
    await Promise.all([...this.running.keys()].map((t) => this.stop(t)));
  }
}
