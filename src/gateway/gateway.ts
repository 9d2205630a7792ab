import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { bearerOf } from '../k8s/bearer.js';
import { KubeClient, type ClusterAccess } from '../k8s/client.js';
import { LeaderClient, LeaderElector, type LeaderElectionTiming } from '../k8s/lease.js';
import { writeStatus, notFound } from '../k8s/status.js';
import type { ControlPlaneProvider } from '../controlplane/provider.js';
import { TenantController } from '../controller/tenant-controller.js';
import { SYSTEM_NAMESPACE } from '../tenants/names.js';
import { tenantsRef, type Tenant } from '../tenants/resources.js';
import { ensureSystem, loadSigningKeys, publishGatewayInfo } from '../tenants/system.js';
import { publicKeySet } from '../tenants/tokens.js';
import { TokenVerifier } from './authenticate.js';
import { Authorizer } from './authorize.js';
import { Backends } from './backends.js';
import { Drain } from './drain.js';
import { DEFAULT_LIMITS, InFlight, type Limits } from './limits.js';
import type { GatewayTls } from './certs.js';
import { GatewayMetrics } from './metrics.js';
import type { Deps } from './context.js';
import { handleRequest, handleUpgrade } from './pipeline.js';
import { watchSigningKeys, watchTenantPolicies } from './reloaders.js';
import { Router } from './forward.js';
import { InlineMirror } from './mirror.js';
import { TenantDirectory } from './tenant-directory.js';
import { Activity } from './activity.js';
import { Waker } from './wake.js';

export interface GatewayOptions {
  /** The host cluster, reached with the gateway's own credential. */
  host: ClusterAccess;
  listen: { host: string; port: number };
  tls: GatewayTls;
  /**
   * Reads the serving certificate again (every minute): a renewed one (files replaced by whoever
   * provides them, or renewed by ensureGatewayCerts) is served to new connections without a restart.
   */
  reloadTls?: () => Promise<GatewayTls>;
  policyDir: string;
  /** Published for `kplex connect` when set: the URL users reach this gateway (or its load balancer) at. */
  advertiseUrl?: string;
  maxBodyBytes?: number;
  /** In-flight request limits per tenant and per user. */
  limits?: Limits;
  /**
   * Where /metrics is served (plain HTTP): a listener of its own, so the tenant-facing port tells nobody
   * which tenants exist. Off when unset.
   */
  metricsListen?: { host: string; port: number };
  /**
   * With providers, this replica campaigns to run the tenant controller (one leader among replicas); each
   * is made, while leading, with the leader's host client (which refuses writes once leadership lapses).
   * The first is the default for tenants whose values name none.
   */
  providers?: ((host: KubeClient) => ControlPlaneProvider)[];
  /**
   * Where the tenant controller serves metrics.k8s.io to tenants' API servers (from the host's metrics
   * API): an address they reach. Off when unset.
   */
  metricsAdapter?: { address: string };
  /** Lease duration, renew deadline and retry period of that campaign (client-go's 15 s / 10 s / 2 s by default). */
  leaderElection?: LeaderElectionTiming;
  log: Logger;
}

export const DEFAULT_MAX_BODY_BYTES = 3 * 1024 * 1024;

/** How a gateway leaves (SIGTERM): see Gateway.shutdown. */
export interface ShutdownTiming {
  /** How long it keeps serving with readiness failing, so load balancers stop sending it new connections. */
  delayMs: number;
  /** How long it then has to end its streams and connections and stop its parts, from the end of the delay. */
  timeoutMs: number;
}

/** The gateway process: TLS server, the request pipeline, and (on the leader) the tenant controller. */
export class Gateway {
  private constructor(
    private readonly server: https.Server,
    private readonly host: KubeClient,
    private readonly parts: { stop(): Promise<void> }[],
    private readonly elector: LeaderElector | undefined,
    readonly url: string,
    private readonly metricsServer: http.Server | undefined,
    /** Where /metrics answers, when it is served. */
    readonly metricsUrl: string | undefined,
    private readonly drain: Drain,
    private readonly log: Logger,
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
    const limits = o.limits ?? DEFAULT_LIMITS;
    const backends = new Backends(host, { server: o.host.server, tls: { ca: o.host.ca ?? '', cert: o.host.cert ?? '', key: o.host.key ?? '' }, bearer: bearerOf(o.host) }, limits, onWatchError);
    const keys = watchSigningKeys(host, verifier, log);
    const policies = watchTenantPolicies(host, authorizer, log);
    const mirror = new InlineMirror(o.host, o.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES, log);
    await Promise.all([directory.start(), backends.start(), keys.start(), policies.start(), mirror.start()]);

    const metrics = new GatewayMetrics(() => backends.all());
    const drain = new Drain();
    const router = new Router(o.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES, drain);
    const activity = new Activity(host, directory, backends, log);
    activity.start();
    const waker = new Waker({
      tenant: directory.get,
      route: (name) => backends.get(name),
      // Removed, as `kplex wake` does; the generation after is what the wait looks for.
      wake: async (name) => Number((await host.patch<Tenant>(tenantsRef(name), { spec: { asleep: null } })).metadata.generation ?? 0),
    }, log);
    const deps: Deps = { verifier, authorizer, mirror, backends, router, metrics, inFlight: new InFlight(limits), waker, activity, log };

    const server = https.createServer({ cert: o.tls.cert, key: o.tls.key }, (req, res) => {
      // A leaving gateway asks each client to take its next request elsewhere (through the load balancer).
      if (drain.leaving) res.setHeader('connection', 'close');
      const path = req.url?.split('?')[0];
      // With a token every path is the tenant's (kubectl sends `get --raw` paths from the root); without
      // one, the gateway answers its own health checks (load balancers send no token).
      if (path?.startsWith('/tenants/') || req.headers.authorization) {
        void handleRequest(req, res, deps);
      } else if (path === '/readyz' && drain.leaving) {
        // Not ready, so that Endpoints drop this replica, but alive: the kubelet must not restart it.
        res.writeHead(503, { 'content-type': 'text/plain' }).end('shutting down');
      } else if (path === '/healthz' || path === '/livez' || path === '/readyz') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
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
    const metricsServer = o.metricsListen ? await serveMetrics(metrics, o.metricsListen, log) : undefined;
    const metricsAddress = metricsServer?.address() as AddressInfo | undefined;
    const url = `https://${o.listen.host === '0.0.0.0' || o.listen.host === '::' ? '127.0.0.1' : o.listen.host}:${port}`;
    if (o.advertiseUrl) await publishGatewayInfo(host, { endpoint: o.advertiseUrl.replace('{port}', String(port)), ca: o.tls.ca });

    let elector: LeaderElector | undefined;
    const parts: { stop(): Promise<void> }[] = [activity, directory, backends, keys, policies, mirror];
    if (o.reloadTls) parts.push(reloadServingCertificate(server, o.tls, o.reloadTls, log));
    if (o.providers?.length) {
      const makers = o.providers;
      // The control planes of the last term. They outlive a lapse of leadership: a replica that cannot
      // reach the host to renew stops its controller and syncers, but its tenants keep being served
      // (writes need no leader). They end when another replica is seen leading, or with the gateway.
      let providers: ControlPlaneProvider[] = [];
      const closeProviders = async (keep: ControlPlaneProvider[] = []): Promise<void> => {
        const closing = providers.filter((p) => !keep.includes(p));
        providers = keep;
        for (const p of closing) await p.close();
      };
      let work: { controller: TenantController; client: LeaderClient } | undefined;
      const e = new LeaderElector(host, {
        namespace: SYSTEM_NAMESPACE,
        name: 'kplex-tenant-controller',
        timing: o.leaderElection,
        log,
        onStartedLeading: () => {
          log.info('leading: running the tenant controller');
          // A client of its own that refuses requests once leadership lapses, even before the elector notices.
          const client = new LeaderClient(o.host, e);
          // A maker may hand back the provider it made before (the local one, with the control planes
          // it still runs): the controller takes them over, and restarts none of the same spec.
          const next = makers.map((make) => make(client));
          void closeProviders(next).catch((err: Error) => log.error({ err: err.message }, 'closing the last term\'s providers failed'));
          work = { controller: new TenantController(client, next, log, o.metricsAdapter), client };
          work.controller.start().catch((err: Error) => log.error({ err: err.message }, 'tenant controller failed to start'));
        },
        // Awaited by the elector, which releases the Lease or campaigns again only once this work has stopped.
        onStoppedLeading: async () => {
          log.info('no longer leading: stopping the tenant controller');
          const w = work;
          work = undefined;
          await w?.controller.stop();
          await w?.client.close();
        },
        onNewLeader: async () => {
          if (!providers.length) return;
          log.info('another replica leads: stopping the control planes this one ran');
          await closeProviders();
        },
      });
      elector = e;
      elector.start();
      // The elector stops first (Gateway.stop), which stops the controller; the providers go last.
      parts.push({ stop: () => closeProviders() });
    }
    log.info({ url }, 'gateway listening');
    const metricsUrl = metricsAddress && `http://${o.metricsListen!.host === '0.0.0.0' || o.metricsListen!.host === '::' ? '127.0.0.1' : o.metricsListen!.host}:${metricsAddress.port}/metrics`;
    return new Gateway(server, host, parts, elector, url, metricsServer, metricsUrl, drain, log);
  }

  /**
   * Leaves without breaking a client: /readyz fails at once while everything is still served; after
   * `delayMs` (time for Endpoints to drop this replica) the listener stops accepting, every watch ends
   * after a whole event (its client watches again, from the resourceVersion it has, on another replica),
   * logs -f and exec/attach/port-forward sessions end with a FIN, and answers carry `Connection: close`.
   * Whatever is still open when half of `timeoutMs` has passed is cut, leaving the rest for stop(): the
   * tenant controller and the Lease. The caller exits the process at `timeoutMs` whatever still hangs.
   */
  async shutdown(t: ShutdownTiming): Promise<void> {
    this.drain.drain();
    this.log.info({ delayMs: t.delayMs, timeoutMs: t.timeoutMs }, 'leaving: readiness fails, still serving');
    if (t.delayMs > 0) await new Promise((r) => setTimeout(r, t.delayMs));
    const deadline = Date.now() + t.timeoutMs / 2;
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    this.log.info({ streams: this.drain.size }, 'leaving: no new connections; ending streams between events');
    await this.drain.closeAll(t.timeoutMs / 4);
    // Plain requests still under way finish on their own, up to the deadline. Those that came before the
    // drain answered without `Connection: close`; their connections are closed once idle.
    const idle = setInterval(() => this.server.closeIdleConnections(), 250);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([closed, new Promise<void>((r) => (timer = setTimeout(r, Math.max(0, deadline - Date.now()))))]);
    clearTimeout(timer);
    clearInterval(idle);
    await this.stop();
  }

  async stop(): Promise<void> {
    await this.elector?.stop();
    // Upgraded sockets and streams are the Drain's: the server no longer counts them as its connections.
    this.drain.destroyAll();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
    this.metricsServer?.closeAllConnections();
    await new Promise<void>((r) => (this.metricsServer ? this.metricsServer.close(() => r()) : r()));
    for (const p of this.parts) await p.stop();
    await this.host.close();
  }
}

const TLS_RELOAD_MS = 60_000;

function reloadServingCertificate(server: https.Server, initial: GatewayTls, read: () => Promise<GatewayTls>, log: Logger): { stop(): Promise<void> } {
  let served = initial.cert;
  const timer = setInterval(() => {
    read().then((tls) => {
      if (tls.cert === served) return;
      server.setSecureContext({ cert: tls.cert, key: tls.key });
      served = tls.cert;
      log.info('serving a renewed gateway certificate');
    }, (err: Error) => log.warn({ err: err.message }, 'could not read the gateway certificate; serving the one it has'));
  }, TLS_RELOAD_MS);
  timer.unref();
  return { stop: async () => clearInterval(timer) };
}

async function serveMetrics(metrics: GatewayMetrics, listen: { host: string; port: number }, log: Logger): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if (req.url?.split('?')[0] !== '/metrics') {
      writeStatus(res, notFound('path', req.url ?? '/'));
      return;
    }
    metrics.registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
      (err: Error) => {
        log.error({ err: err.message }, 'metrics failed');
        res.writeHead(500).end();
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => resolve());
  });
  return server;
}
