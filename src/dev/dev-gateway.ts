import path from 'node:path';
import { findBinaries } from '../controlplane/binaries.js';
import { ClusterProvider } from '../controlplane/cluster.js';
import { LocalProvider } from '../controlplane/local.js';
import type { KubeClient } from '../k8s/client.js';
import { portInUse } from '../controlplane/ports.js';
import { ensureGatewayCerts } from '../gateway/certs.js';
import { Gateway } from '../gateway/gateway.js';
import { createLogger } from '../log.js';
import { packageRoot } from '../paths.js';
import type { HostCluster } from './host-cluster.js';

export const DEFAULT_GATEWAY_PORT = 8443;

/**
 * How the dev gateway leaves (`kplex dev down`, Ctrl-C): as an installed one does, less the delay (no load
 * balancer to drop it first). Its watches end after a whole event and exec sessions with a FIN, so a
 * `kubectl get -w` ends as when an API server ends a watch, not with a broken stream.
 */
const DEV_SHUTDOWN = { delayMs: 0, timeoutMs: 10_000 };

/**
 * The embedded default's gateway: in the supervisor's process, with the local provider running tenant
 * control planes on the host's etcd. It listens on 8443 when free (a free port otherwise).
 */
export async function startDevGateway(host: HostCluster, dataDir: string, port?: number): Promise<{ url: string; metricsUrl?: string; readyMs: number; stop(): Promise<void> }> {
  const begin = Date.now();
  const listenPort = port ?? ((await portInUse(DEFAULT_GATEWAY_PORT)) ? 0 : DEFAULT_GATEWAY_PORT);
  const local = new LocalProvider({ etcdServers: host.etcdServers, baseDir: path.join(dataDir, 'tenants'), binaries: findBinaries(), pods: host.podNetwork });
  const gateway = await Gateway.start({
    host: host.access,
    listen: { host: '127.0.0.1', port: listenPort },
    tls: await ensureGatewayCerts(path.join(dataDir, 'gateway')),
    reloadTls: () => ensureGatewayCerts(path.join(dataDir, 'gateway')),
    policyDir: path.join(packageRoot, 'policies'),
    advertiseUrl: 'https://127.0.0.1:{port}',
    metricsListen: { host: '127.0.0.1', port: 0 },
    // With a real node, metrics-server serves the host's metrics; tenants' API servers reach their
    // metrics adapters on the node's address.
    metricsAdapter: host.podNetwork ? { address: host.podNetwork.address } : undefined,
    // With a real node, tenants' API servers and DNS servers listen where its pods reach them; and a
    // tenant may ask for its control plane as host pods there (`controlPlane.provider: cluster`).
    providers: [
      () => local,
      ...(host.podNetwork ? [(client: KubeClient) => new ClusterProvider({ host: client, hostDnsIP: host.podNetwork!.hostDnsIP })] : []),
    ],
    // Beside the other components' logs, so `kplex dev up` prints only its own progress.
    log: createLogger('kplex-gateway', path.join(dataDir, 'logs', 'gateway.log')),
  });
  return { url: gateway.url, metricsUrl: gateway.metricsUrl, readyMs: Date.now() - begin, stop: () => gateway.shutdown(DEV_SHUTDOWN) };
}
