// A tenant's DNS server: CoreDNS with the kubernetes plugin over the tenant's own API server, so it
// answers the tenant's names and nothing else (unless its values fall back to the host's DNS). Run by
// the local provider next to the tenant's API server, on the address the tenant's pods reach.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { KubeClient, type ClusterAccess } from '../k8s/client.js';
import { kubeconfigFor, toYaml, writePrivateFile } from '../k8s/kubeconfig.js';
import { tenantCorefile } from './components.js';
import { probe } from './health.js';
import { loadAuthority, readKeyPair, writeKeyPair } from './pki.js';
import { freePort } from './ports.js';
import { ManagedProcess } from './process.js';

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
}

const rbac = (resource: string) => ({ group: 'rbac.authorization.k8s.io', version: 'v1', resource, name: DNS_USER });

/** What the kubernetes plugin reads, as kube-system's CoreDNS role in any cluster grants it. */
async function grantReading(access: ClusterAccess): Promise<void> {
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

/** The DNS server's client certificate, made once by the tenant's CA. */
async function dnsCredential(pkiDir: string): Promise<{ cert: string; key: string }> {
  const existing = await readKeyPair(pkiDir, 'dns');
  if (existing) return existing;
  const ca = await readKeyPair(pkiDir, 'ca');
  if (!ca) throw new Error(`no tenant CA in ${pkiDir}`);
  const pair = await (await loadAuthority(ca)).sign({ commonName: DNS_USER, client: true });
  await writeKeyPair(pkiDir, 'dns', pair);
  return pair;
}

/** Starts the tenant's CoreDNS and waits until it has read the tenant's names; resolves to it and its port. */
export async function startTenantDns(o: TenantDnsOptions): Promise<{ process: ManagedProcess; port: number }> {
  await grantReading(o.access);
  const credential = await dnsCredential(o.pkiDir);
  const kubeconfig = path.join(o.dir, 'dns.kubeconfig');
  writePrivateFile(kubeconfig, toYaml(kubeconfigFor(DNS_USER, { server: o.access.server, ca: o.access.ca, ...credential })));
  const [port, readyPort] = [await freePort(), await freePort()];
  const corefile = path.join(o.dir, 'Corefile');
  await writeFile(corefile, tenantCorefile({ address: o.address, port, readyPort, kubeconfig, fallbackTo: o.fallbackTo }));
  const dns = ManagedProcess.start({ name: 'coredns', command: o.coredns, args: ['-conf', corefile], logFile: path.join(o.dir, 'logs', 'coredns.log') });
  try {
    await dns.waitReady(() => probe(`http://127.0.0.1:${readyPort}/ready`), 60_000);
  } catch (err) {
    await dns.stop();
    throw err;
  }
  return { process: dns, port };
}
