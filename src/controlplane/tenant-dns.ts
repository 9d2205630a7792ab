// A tenant's DNS server: CoreDNS with the kubernetes plugin over the tenant's own API server, so it
// answers the tenant's names and nothing else (unless its values fall back to the host's DNS). Run by
// the local provider next to the tenant's API server, on the address the tenant's pods reach.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { KubeClient, type ClusterAccess } from '../k8s/client.js';
import { kubeconfigFor, toYaml, writePrivateFile } from '../k8s/kubeconfig.js';
import { tenantCorefile } from './components.js';
import { probe } from './health.js';
import { ensureLeaf, loadAuthority, readKeyPair, type Renewal } from './pki.js';
import { freePort } from './ports.js';
import { ManagedProcess, type ComponentError } from './process.js';

/** The tenant user the DNS server reads as; it may only list and watch what names are made from. */
export const DNS_USER = 'kplex:dns';

export interface TenantDnsOptions {
  dir: string;
  pkiDir: string;
  coredns: string;
  /** The tenant API server, with its admin credential (to grant the DNS server's reading rights). */
  access: ClusterAccess;
  /** Where it listens: the address the tenant's pods reach. */
  address: string;
  /** The host cluster's DNS server, asked for names the tenant does not have; none: the tenant's names only. */
  fallbackTo?: string;
  /** Which certificates to renew before starting, besides those due. */
  renewal?: Renewal;
}

const rbac = (resource: string) => ({ group: 'rbac.authorization.k8s.io', version: 'v1', resource, name: DNS_USER });

/** What the kubernetes plugin reads, as kube-system's CoreDNS role in any cluster grants it. */
export async function grantReading(access: ClusterAccess): Promise<void> {
  const tenant = new KubeClient(access, { connections: 1 });
  try {
    await tenant.apply(rbac('clusterroles'), {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: DNS_USER },
      rules: [
        { apiGroups: [''], resources: ['endpoints', 'services', 'pods', 'namespaces'], verbs: ['list', 'watch'] },
        { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'] },
      ],
    }, 'kplex');
    await tenant.apply(rbac('clusterrolebindings'), {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: DNS_USER },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: DNS_USER },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: DNS_USER }],
    }, 'kplex');
  } finally {
    await tenant.close();
  }
}

/** A running tenant DNS server. */
export interface TenantDns {
  readonly process: ManagedProcess;
  port: number;
  /**
   * Renews its client certificate when due, and then restarts it on the same port (CoreDNS reads its
   * kubeconfig at start only): pods' resolvers retry through the moment it takes. Whether it did.
   */
  renew(renewal?: Renewal): Promise<boolean>;
  /** Calls `handler` when it ends without being stopped, also after a restart. */
  onCrash(handler: (err: ComponentError) => void): void;
  stop(): Promise<void>;
}

/** The DNS server's client certificate, by the tenant's CA, in the kubeconfig CoreDNS reads; whether it was made now. */
async function writeCredential(o: TenantDnsOptions, kubeconfig: string, renewal: Renewal = {}): Promise<boolean> {
  const ca = await readKeyPair(o.pkiDir, 'ca');
  if (!ca) throw new Error(`no tenant CA in ${o.pkiDir}`);
  const made = await ensureLeaf(o.pkiDir, 'dns', await loadAuthority(ca), { commonName: DNS_USER, client: true }, renewal);
  const credential = (await readKeyPair(o.pkiDir, 'dns'))!;
  writePrivateFile(kubeconfig, toYaml(kubeconfigFor(DNS_USER, { server: o.access.server, ca: o.access.ca, ...credential })));
  return made;
}

/** Starts the tenant's CoreDNS and waits until it has read the tenant's names. */
export async function startTenantDns(o: TenantDnsOptions): Promise<TenantDns> {
  await grantReading(o.access);
  const kubeconfig = path.join(o.dir, 'dns.kubeconfig');
  await writeCredential(o, kubeconfig, o.renewal);
  const [port, readyPort] = [await freePort(), await freePort()];
  const corefile = path.join(o.dir, 'Corefile');
  await writeFile(corefile, tenantCorefile({ address: o.address, port, readyPort, kubeconfig, fallbackTo: o.fallbackTo }));
  const spec = { name: 'coredns', command: o.coredns, args: ['-conf', corefile], logFile: path.join(o.dir, 'logs', 'coredns.log'), diesWithParent: true };
  const crashHandlers: ((err: ComponentError) => void)[] = [];
  const launch = async (): Promise<ManagedProcess> => {
    const p = ManagedProcess.start(spec);
    for (const h of crashHandlers) p.onCrash(h);
    try {
      await p.waitReady(() => probe(`http://127.0.0.1:${readyPort}/ready`), 60_000);
    } catch (err) {
      await p.stop();
      throw err;
    }
    return p;
  };
  let current = await launch();
  return {
    get process() {
      return current;
    },
    port,
    async renew(renewal) {
      if (!(await writeCredential(o, kubeconfig, renewal))) return false;
      await current.stop();
      current = await launch();
      return true;
    },
    onCrash(handler) {
      crashHandlers.push(handler);
      current.onCrash(handler);
    },
    stop: () => current.stop(),
  };
}
