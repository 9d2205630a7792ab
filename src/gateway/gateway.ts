import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { KubeClient, type ClusterAccess } from '../k8s/client.js';
import { LeaderElector } from '../k8s/lease.js';
import { writeStatus, notFound } from '../k8s/status.js';
import type { ControlPlaneProvider } from '../controlplane/provider.js';
import { TenantController } from '../tenants/controller.js';
import { SYSTEM_NAMESPACE } from '../tenants/names.js';
import { ensureSystem, loadSigningKeys, publishGatewayInfo } from '../tenants/system.js';
import { publicKeySet } from '../tenants/tokens.js';
import { TokenVerifier } from './authenticate.js';
import { Authorizer } from './authorize.js';
import { Backends, backendFor, closeBackend } from './backends.js';
import type { GatewayTls } from './certs.js';
import { GatewayMetrics } from './metrics.js';
import { handleRequest, handleUpgrade, type Deps } from './pipeline.js';
import { watchSigningKeys, watchTenantPolicies } from './reloaders.js';
import { Router } from './route.js';
import { InlineMirror } from './mirror.js';
import { TenantDirectory } from './tenant-directory.js';

export interface GatewayOptions {
  /** The host cluster, reached with the gateway's own credential. */
  host: ClusterAccess;
  listen: { host: string; port: number };
  tls: GatewayTls;
  policyDir: string;
  /** Published for `kplex connect` when set: the URL users reach this gateway (or its load balancer) at. */
  advertiseUrl?: string;
  maxBodyBytes?: number;
  /** With a provider, this replica campaigns to run the tenant controller (one leader among replicas). */
  provider?: ControlPlaneProvider;
  log: Logger;
}

export const DEFAULT_MAX_BODY_BYTES = 3 * 1024 * 1024;

/** The gateway process: TLS server, the request pipeline, and (on the leader) the tenant controller. */
export class Gateway {
  private constructor(
    private readonly server: https.Server,
    private readonly host: KubeClient,
    private readonly parts: { stop(): Promise<void> }[],
    private readonly elector: LeaderElector | undefined,
    readonly url: string,
  ) {}

  static async start(o: GatewayOptions): Promise<Gateway> {
    const log = o.log;
    // Fail closed: without a model and default policy there is no gateway.
    const authorizer = await Authorizer.load(o.policyDir);
    const host = new KubeClient(o.host);
    await ensureSystem(host);
    const directory = new TenantDirectory(host, log);
    const verifier = new TokenVerifier(publicKeySet(await loadSigningKeys(host)), directory.uidOf);
    const onWatchError = (err: Error) => log.warn({ err: err.message }, 'tenant backends watch failed');
    const backends = new Backends(host, onWatchError);
    const keys = watchSigningKeys(host, verifier, log);
    const policies = watchTenantPolicies(host, authorizer, log);
    const mirror = new InlineMirror(host, o.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES, log);
    await Promise.all([directory.start(), backends.start(), keys.start(), policies.start(), mirror.start()]);

    const metrics = new GatewayMetrics();
    const router = new Router(o.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES);
    const hostBackend = backendFor('host', o.host.server, { ca: o.host.ca ?? '', cert: o.host.cert ?? '', key: o.host.key ?? '' });
    const deps: Deps = { host: hostBackend, verifier, authorizer, mirror, backends, router, metrics };

    const server = https.createServer({ cert: o.tls.cert, key: o.tls.key }, (req, res) => {
      const path = req.url?.split('?')[0];
      if (path === '/healthz' || path === '/livez' || path === '/readyz') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      } else if (path === '/metrics') {
        metrics.registry.metrics().then((text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text), () => res.writeHead(500).end());
      } else if (path?.startsWith('/tenants/')) {
        void handleRequest(req, res, deps);
      } else {
        writeStatus(res, notFound('path', path ?? '/'));
      }
    });
    server.on('upgrade', (req, socket, head) => void handleUpgrade(req, socket, head, deps));
    // Watches and exec sessions last as long as the client wants.
    server.requestTimeout = 0;
    server.keepAliveTimeout = 65_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.listen.port, o.listen.host, () => resolve());
    });
    const port = (server.address() as AddressInfo).port;
    const url = `https://${o.listen.host === '0.0.0.0' || o.listen.host === '::' ? '127.0.0.1' : o.listen.host}:${port}`;
    if (o.advertiseUrl) await publishGatewayInfo(host, { endpoint: o.advertiseUrl.replace('{port}', String(port)), ca: o.tls.ca });

    let elector: LeaderElector | undefined;
    const parts: { stop(): Promise<void> }[] = [directory, backends, keys, policies, mirror, { stop: async () => { router.close(); closeBackend(hostBackend); } }];
    if (o.provider) {
      const provider = o.provider;
      let controller: TenantController | undefined;
      elector = new LeaderElector(host, {
        namespace: SYSTEM_NAMESPACE,
        name: 'kplex-tenant-controller',
        onStartedLeading: () => {
          log.info('leading: running the tenant controller');
          controller = new TenantController(host, provider, log);
          controller.start().catch((err: Error) => log.error({ err: err.message }, 'tenant controller failed to start'));
        },
        onStoppedLeading: () => {
          log.info('no longer leading: stopping the tenant controller');
          const c = controller;
          controller = undefined;
          void c?.stop().then(() => provider.close());
        },
      });
      elector.start();
      parts.push({ stop: async () => { await controller?.stop(); await provider.close(); } });
    }
    log.info({ url }, 'gateway listening');
    return new Gateway(server, host, parts, elector, url);
  }

  async stop(): Promise<void> {
    await this.elector?.stop();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
    for (const p of this.parts) await p.stop();
    await this.host.close();
  }
}
