import { Pool } from 'undici';
import type { KubeClient, KubeObject } from '../k8s/client.js';
import { ANSWER_WITHIN_MS, core } from '../k8s/client.js';
import { Informer } from '../k8s/informer.js';
import { hostNamespace, kubeconfigSecretName } from '../tenants/names.js';
import { LABELS } from '../tenants/resources.js';
import type { Limits } from './limits.js';

/** How the gateway reaches one API server for one tenant: a URL and pooled TLS connections with its credential. */
export interface Backend {
  /** Whose requests it carries: the tenant's name. */
  tenant: string;
  /** Who answers, for error messages: the tenant's control plane, or "the host cluster". */
  answeredBy: 'tenant' | 'host';
  target: URL;
  /**
   * Ordinary requests, each bounded by a timeout. Long-running ones (watches, logs) hold a connection for
   * as long as the client wants, so they get a pool of their own and can never queue the others.
   */
  pool: Pool;
  streams: Pool;
  /** TLS options for upgraded connections (exec, attach, port-forward), which do not pool. */
  tls: { ca: string; cert: string; key: string };
  /** The bearer token the gateway authenticates with instead of a client certificate (in a pod: its ServiceAccount's, renewed). */
  bearer?: () => string | undefined;
  /** Requests open to it now (forward.ts counts them; the metrics read them). */
  open: number;
}

export function backendFor(tenant: string, answeredBy: Backend['answeredBy'], server: string, tls: Backend['tls'], limits: Limits, bearer?: () => string | undefined): Backend {
  const target = new URL(server);
  const pool = (connections: number, bodyTimeout: number): Pool =>
    new Pool(target.origin, { connections, pipelining: 1, connect: tls, headersTimeout: ANSWER_WITHIN_MS, bodyTimeout });
  return {
    tenant,
    answeredBy,
    target,
    pool: pool(limits.perTenant.requests, ANSWER_WITHIN_MS),
    streams: pool(limits.perTenant.longRunning, 0),
    tls,
    ...(bearer ? { bearer } : {}),
    open: 0,
  };
}

/**
 * Retires a backend's pools. `drain`: the same server with a renewed credential, so requests running
 * on the old pools (watches above all) finish on them, as the old credential is still valid; otherwise
 * they end, and clients re-establish them.
 */
export function closeBackend(backend: Backend, drain = false): void {
  for (const p of [backend.pool, backend.streams]) {
    (drain ? p.close() : p.destroy()).catch(() => undefined); // closing a pool only fails when it already is
  }
}

interface Secret extends KubeObject {
  data?: Record<string, string>;
}

const decode = (s: Secret, key: string): string => Buffer.from(s.data?.[key] ?? '', 'base64').toString('utf8');

/**
 * The tenant a kubeconfig Secret routes, only where the tenant controller writes it (`vc-NAME` in
 * `kplex-NAME`): a labelled Secret anywhere else on the host must not redirect or drop a tenant's traffic.
 */
function routeOf(s: Secret): string | undefined {
  const tenant = s.metadata.labels?.[LABELS.tenant];
  return tenant && s.metadata.namespace === hostNamespace(tenant) && s.metadata.name === kubeconfigSecretName(tenant) ? tenant : undefined;
}

/** The host API server as the gateway reaches it with its own credential. */
export interface HostAccess {
  server: string;
  tls: Backend['tls'];
  bearer?: () => string | undefined;
}

/**
 * The routing table: tenant → its control plane, read from the `vc-<tenant>` Secrets the tenant
 * controller writes in the host cluster, so every gateway replica routes the same way and a restart
 * loses nothing. Each tenant also has pools of its own to the host (pod logs, exec, attach,
 * port-forward), so no tenant can use up the connections another one needs.
 */
export class Backends {
  private readonly byTenant = new Map<string, Backend>();
  private readonly hostByTenant = new Map<string, Backend>();
  private readonly informer: Informer<Secret>;

  constructor(kube: KubeClient, private readonly host: HostAccess, private readonly limits: Limits, onError: (err: Error) => void) {
    this.informer = new Informer<Secret>(kube, core('secrets'), {
      onUpsert: (s) => {
        const tenant = routeOf(s);
        if (tenant) this.upsert(tenant, s);
      },
      onDelete: (s) => {
        const tenant = routeOf(s);
        if (tenant) this.remove(tenant);
      },
    }, { labelSelector: `${LABELS.kubeconfig}=true` }, onError);
  }

  start(): Promise<void> {
    return this.informer.start();
  }

  get(tenant: string): Backend | undefined {
    return this.byTenant.get(tenant);
  }

  /** The tenant's pools to the host API server; only for tenants that have a control plane. */
  hostFor(tenant: string): Backend {
    let b = this.hostByTenant.get(tenant);
    if (!b) this.hostByTenant.set(tenant, (b = backendFor(tenant, 'host', this.host.server, this.host.tls, this.limits, this.host.bearer)));
    return b;
  }

  /** Every backend, for metrics. */
  all(): Backend[] {
    return [...this.byTenant.values(), ...this.hostByTenant.values()];
  }

  private upsert(tenant: string, s: Secret): void {
    const server = decode(s, 'server');
    const tls = { ca: decode(s, 'ca.crt'), cert: decode(s, 'tls.crt'), key: decode(s, 'tls.key') };
    const old = this.byTenant.get(tenant);
    const sameServer = old?.target.href === new URL(server).href && old.tls.ca === tls.ca;
    if (old && sameServer && old.tls.cert === tls.cert) return;
    if (old) closeBackend(old, sameServer);
    this.byTenant.set(tenant, backendFor(tenant, 'tenant', server, tls, this.limits));
  }

  private remove(tenant: string): void {
    for (const table of [this.byTenant, this.hostByTenant]) {
      const backend = table.get(tenant);
      if (backend) closeBackend(backend);
      table.delete(tenant);
    }
  }

  async stop(): Promise<void> {
    await this.informer.stop();
    for (const b of this.all()) closeBackend(b);
  }
}
