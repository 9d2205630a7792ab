import { StatusError } from '../k8s/status.js';
import { currentContext } from '../k8s/kubeconfig.js';
import { contextName, hostNamespace } from '../tenants/names.js';
import { tenantsRef, type Tenant } from '../tenants/resources.js';
import { CliError } from './errors.js';
import { withHost } from './host.js';

const age = (ts?: string): string => {
  if (!ts) return '-';
  const s = Math.max(0, Math.floor((Date.now() - Date.parse(ts)) / 1000));
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.floor(s / 60)}m` : s < 172800 ? `${Math.floor(s / 3600)}h` : `${Math.floor(s / 86400)}d`;
};

export async function list(f: { output: string; context?: string }): Promise<void> {
  if (f.output !== 'table' && f.output !== 'json') throw new CliError(`--output must be table or json; got "${f.output}"`);
  const tenants = await withHost(f.context, async (host) => {
    try {
      return (await host.list<Tenant>(tenantsRef())).items;
    } catch (err) {
      // Reading changes nothing: a host where kplex never ran has no Tenant CRD, and so no tenants.
      if (err instanceof StatusError && err.code === 404) return [];
      throw err;
    }
  });
  const current = currentContext();
  const rows = tenants.map((t) => ({
    name: t.metadata.name!,
    namespace: hostNamespace(t.metadata.name!),
    status: t.status?.phase ?? 'Pending',
    ...(t.status?.phase === 'Sleeping' ? { sleepingSince: t.status.sleepingSince } : {}),
    created: t.metadata.creationTimestamp,
    connected: current === contextName(t.metadata.name!),
  }));
  if (f.output === 'json') {
    console.log(JSON.stringify(rows, null, 2));
    return;
  }
  // A sleeping tenant says since when, as `kubectl get pods` says how long ago a container restarted.
  const status = (r: (typeof rows)[number]): string => (r.sleepingSince ? `${r.status} (${age(r.sleepingSince)})` : r.status);
  const table = [['NAME', 'NAMESPACE', 'STATUS', 'AGE', 'CONNECTED'], ...rows.map((r) => [r.name, r.namespace, status(r), age(r.created), r.connected ? 'True' : 'False'])];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
  for (const r of table) console.log(r.map((c, i) => c.padEnd(widths[i]! + 3)).join('').trimEnd());
}
