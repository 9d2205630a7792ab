import { isIP } from 'node:net';
import path from 'node:path';
import type { Command } from 'commander';
import { findBinaries } from '../controlplane/binaries.js';
import { ClusterProvider } from '../controlplane/cluster.js';
import { LocalProvider } from '../controlplane/local.js';
import type { ControlPlaneProvider } from '../controlplane/provider.js';
import type { KubeClient } from '../k8s/client.js';
import { accessFromKubeconfig } from '../k8s/kubeconfig.js';
import { checkTiming, DEFAULT_TIMING, type LeaderElectionTiming } from '../k8s/lease.js';
import { rotateSigningKeys } from '../tenants/system.js';
import { parseDuration } from '../tenants/tokens.js';
import { ensureGatewayCerts } from '../gateway/certs.js';
import { DEFAULT_MAX_BODY_BYTES, Gateway, type ShutdownTiming } from '../gateway/gateway.js';
import { createLogger } from '../log.js';
import { packageRoot } from '../paths.js';
import { termination } from '../terminal/signals.js';
import { CliError } from './errors.js';
import { hostContextName, withHost } from './host.js';

function parseListen(text: string): { host: string; port: number } {
  const m = text.match(/^(.*):(\d+)$/);
  if (!m) throw new CliError(`--listen wants [HOST]:PORT; got "${text}"`);
  return { host: m[1] || '0.0.0.0', port: Number(m[2]) };
}

function parseTiming(f: { leaseDuration: string; renewDeadline: string; retryPeriod: string }): LeaderElectionTiming {
  const ms = (text: string): number => parseDuration(text) * 1000;
  try {
    return checkTiming({ leaseDurationMs: ms(f.leaseDuration), renewDeadlineMs: ms(f.renewDeadline), retryPeriodMs: ms(f.retryPeriod) });
  } catch (err) {
    throw new CliError(`leader election: ${(err as Error).message}`);
  }
}

/** --shutdown-delay and --shutdown-timeout; the delay may be 0s (nothing in front of the gateway to wait for). */
export function parseShutdown(f: { shutdownDelay: string; shutdownTimeout: string }): ShutdownTiming {
  const ms = (flag: string, text: string): number => {
    try {
      return /^0+[smhd]?$/.test(text) ? 0 : parseDuration(text) * 1000;
    } catch (err) {
      throw new CliError(`${flag}: ${(err as Error).message}`);
    }
  };
  const timeoutMs = ms('--shutdown-timeout', f.shutdownTimeout);
  if (timeoutMs === 0) throw new CliError('--shutdown-timeout must be positive: the gateway needs time to end its streams');
  return { delayMs: ms('--shutdown-delay', f.shutdownDelay), timeoutMs };
}

/** An IP address flag, or one clear line. */
function ipFlag(flag: string, value: string): string {
  if (!isIP(value)) throw new CliError(`${flag}: "${value}" is not an IP address`);
  return value;
}

type ProviderFlags = { providers?: string; etcdServers?: string; tenantDir: string; podAddress?: string; hostDns: string };

/**
 * The control-plane providers the gateway's tenant controller runs (the first is the default):
 * --providers, else `local` when --etcd-servers is given, else none (a gateway that only serves).
 */
function providersFlag(f: ProviderFlags): ((host: KubeClient) => ControlPlaneProvider)[] {
  const names = (f.providers ?? (f.etcdServers ? 'local' : '')).split(',').map((n) => n.trim()).filter(Boolean);
  return names.map((name) => {
    if (name === 'cluster') return (host: KubeClient) => new ClusterProvider({ host, hostDnsIP: ipFlag('--host-dns', f.hostDns) });
    if (name !== 'local') throw new CliError(`--providers: "${name}" is not a provider (local, cluster)`);
    if (!f.etcdServers) throw new CliError('--providers local needs --etcd-servers (the etcd tenants store in)');
    const local = new LocalProvider({
      etcdServers: f.etcdServers,
      baseDir: path.resolve(f.tenantDir),
      binaries: findBinaries(),
      ...(f.podAddress ? { pods: { address: ipFlag('--pod-address', f.podAddress), hostDnsIP: ipFlag('--host-dns', f.hostDns) } } : {}),
    });
    return () => local;
  });
}

export function registerGateway(program: Command): void {
  const gateway = program
    .command('gateway')
    .description('run the TLS gateway: authenticates tenant tokens, authorizes, and proxies to tenant control planes')
    .option('--listen <[host]:port>', 'address to listen on', ':8443')
    .option('--certs <dir>', 'ca.crt, gateway.crt and gateway.key (made for development if missing)', path.join(packageRoot, 'certs', 'dev'))
    .option('--advertise-url <url>', 'publish this URL for `kplex connect` (the address users reach the gateway at)')
    .option('--policies <dir>', 'Casbin model.conf and roles.csv', path.join(packageRoot, 'policies'))
    .option('--metrics-listen <[host]:port>', 'serve Prometheus /metrics over plain HTTP here (keep it off the tenant-facing address)', '127.0.0.1:9090')
    .option('--max-body-bytes <n>', 'largest request body accepted', String(DEFAULT_MAX_BODY_BYTES))
    .option('--etcd-servers <urls>', 'run the tenant controller with the local provider on this etcd (one leader among replicas)')
    .option('--providers <names>', 'control-plane providers the tenant controller runs, the first the default: local (needs --etcd-servers), cluster (StatefulSets on the host); default: local with --etcd-servers, else none')
    .option('--tenant-dir <dir>', 'where the local provider keeps tenant control planes', path.join(process.cwd(), '.kplex', 'tenants'))
    .option('--pod-address <ip>', "local provider: this machine's address on the host's pod network; tenants' API servers and DNS servers listen there for their pods")
    .option('--metrics-adapter-address <ip>', "serve tenants' metrics.k8s.io (kubectl top) from the host's metrics-server, listening on this address of the leading replica (its pod IP in a cluster), where tenants' API servers reach it")
    .option('--host-dns <ip>', "with --pod-address: the host cluster's DNS Service address, for tenants whose values fall back to it", '10.96.0.10')
    .option('--lease-duration <duration>', 'leader election: how long replicas wait for an unrenewed lease before taking it over', `${DEFAULT_TIMING.leaseDurationMs / 1000}s`)
    .option('--renew-deadline <duration>', 'leader election: how long the leader retries renewing before it stops leading', `${DEFAULT_TIMING.renewDeadlineMs / 1000}s`)
    .option('--retry-period <duration>', 'leader election: time between tries to acquire or renew', `${DEFAULT_TIMING.retryPeriodMs / 1000}s`)
    .option('--shutdown-delay <duration>', 'on SIGTERM, keep serving this long with /readyz failing, so load balancers drop this replica before it stops accepting', '0s')
    .option('--shutdown-timeout <duration>', 'after the delay, the longest the gateway takes to end watches and sessions and stop before it exits anyway', '15s')
    .option('--context <name>', 'host kubeconfig context')
    .action(async (f: ProviderFlags & { metricsAdapterAddress?: string; listen: string; certs: string; advertiseUrl?: string; policies: string; maxBodyBytes: string; metricsListen: string; leaseDuration: string; renewDeadline: string; retryPeriod: string; shutdownDelay: string; shutdownTimeout: string; context?: string }) => {
      const leaderElection = parseTiming(f);
      const shutdown = parseShutdown(f);
      const metricsAdapter = f.metricsAdapterAddress ? { address: ipFlag('--metrics-adapter-address', f.metricsAdapterAddress) } : undefined;
      const log = createLogger('kplex-gateway');
      const host = accessFromKubeconfig({ context: hostContextName(f.context) });
      const gw = await Gateway.start({
        host,
        listen: parseListen(f.listen),
        tls: await ensureGatewayCerts(f.certs),
        reloadTls: () => ensureGatewayCerts(f.certs),
        policyDir: f.policies,
        advertiseUrl: f.advertiseUrl,
        maxBodyBytes: Number(f.maxBodyBytes),
        metricsListen: parseListen(f.metricsListen),
        providers: providersFlag(f),
        ...(metricsAdapter ? { metricsAdapter } : {}),
        leaderElection,
        log,
      });
      console.log(`gateway listening on ${gw.url}`);
      await termination();
      // Whatever hangs (a backend that never answers, a provider that does not close), the process leaves in time.
      setTimeout(() => {
        log.error({ timeoutMs: shutdown.timeoutMs }, 'shutdown timed out; exiting');
        process.exit(1);
      }, shutdown.delayMs + shutdown.timeoutMs).unref();
      await gw.shutdown(shutdown);
      log.info('gateway stopped');
    });

  gateway
    .command('rotate-keys')
    .description('add a new token signing key; tokens signed with the older keys keep working until they expire')
    .option('--keep <n>', 'older keys to keep accepting', '2')
    .option('--context <name>', 'host kubeconfig context')
    .action(async (f: { keep: string; context?: string }) => {
      const keys = await withHost(f.context, (host) => rotateSigningKeys(host, Number(f.keep)));
      console.log(`signing with key ${keys[0]!.kid}; ${keys.length} keys accepted (gateways reload them without a restart)`);
    });

  gateway
    .command('certs')
    .description('make a development CA and a serving certificate for the gateway')
    .option('--out <dir>', 'folder to write them to', path.join(packageRoot, 'certs', 'dev'))
    .option('--name <name>', 'extra DNS name or IP for the certificate (repeatable)', (v: string, acc: string[]) => [...acc, v], [])
    .action(async (f: { out: string; name: string[] }) => {
      await ensureGatewayCerts(f.out, f.name);
      console.log(`gateway certificates in ${f.out} (ca.crt, gateway.crt, gateway.key)`);
    });
}
