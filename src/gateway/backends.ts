import https from 'node:https';
import { Pool } from 'undici';
import type { KubeClient, KubeObject } from '../k8s/client.js';
import { core } from '../k8s/client.js';
import { Informer } from '../k8s/informer.js';
import { LABELS } from '../tenants/resources.js';

/** How the gateway reaches one API server (a tenant's, or the host's): a URL and pooled TLS connections with its credential. */
export interface Backend {
  /** Who answers, for error messages: the tenant's name, or "the host cluster". */
  tenant: string;
  target: URL;
  /** Keep-alive connection pool for ordinary requests (undici: the cheapest client per request). */
  pool: Pool;
  /** Node's agent, for the few requests made with node:https (access reviews). */
  agent: https.Agent;
  /** TLS options for upgraded connections (exec, attach, port-forward), which do not pool. */
  tls: { ca: string; cert: string; key: string };
}

export function backendFor(tenant: string, server: string, tls: Backend['tls']): Backend {
  const target = new URL(server);
  return {
    tenant,
    target,
    pool: new Pool(target.origin, { connections: 128, pipelining: 1, connect: tls, headersTimeout: 0, bodyTimeout: 0 }),
    agent: new https.Agent({ keepAlive: true, maxSockets: 16, ...tls }),
    tls,
  };
}

export function closeBackend(backend: Backend): void {
  backend.agent.destroy();
  // Requests still running on the old pool (watches) end; clients re-establish them.
  void backend.pool.destroy().catch(() => undefined);
}

interface Secret extends KubeObject {
  data?: Record<string, string>;
}

const decode = (s: Secret, key: string): string => Buffer.from(s.data?.[key] ?? '', 'base64').toString('utf8');

/**
 * The routing table: tenant → backend, read from the `vc-<tenant>` Secrets the tenant controller writes
 * in the host cluster, so every gateway replica routes the same way and a restart loses nothing.
 */
export class Backends {
  private readonly byTenant = new Map<string, Backend>();
  private readonly informer: Informer<Secret>;

  constructor(host: KubeClient, onError: (err: Error) => void) {
    this.informer = new Informer<Secret>(host, core('secrets'), {
      onUpsert: (s) => this.upsert(s),
      onDelete: (s) => this.remove(s.metadata.labels?.[LABELS.tenant]),
    }, { labelSelector: `${LABELS.kubeconfig}=true` }, onError);
  }

  start(): Promise<void> {
    return this.informer.start();
  }

  get(tenant: string): Backend | undefined {
    return this.byTenant.get(tenant);
  }

  private upsert(s: Secret): void {
    const tenant = s.metadata.labels?.[LABELS.tenant];
    if (!tenant) return;
    const server = decode(s, 'server');
    const tls = { ca: decode(s, 'ca.crt'), cert: decode(s, 'tls.crt'), key: decode(s, 'tls.key') };
    const old = this.byTenant.get(tenant);
    if (old && old.target.href === new URL(server).href && old.tls.cert === tls.cert) return;
    if (old) closeBackend(old);
    this.byTenant.set(tenant, backendFor(tenant, server, tls));
  }

  private remove(tenant: string | undefined): void {
    const backend = tenant ? this.byTenant.get(tenant) : undefined;
    if (!backend) return;
    closeBackend(backend);
    this.byTenant.delete(backend.tenant);
  }

  async stop(): Promise<void> {
    await this.informer.stop();
    for (const b of this.byTenant.values()) closeBackend(b);
  }
}
