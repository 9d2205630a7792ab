import type { Command } from 'commander';
import { StatusError } from '../k8s/status.js';
import type { KubeClient } from '../k8s/client.js';
import { kubeconfigFor, mergeIntoUserKubeconfig, removeFromUserKubeconfig, setCurrentContext, currentContext, toYaml } from '../k8s/kubeconfig.js';
import { reservedIdentity, ROLES, type Role } from '../gateway/authenticate.js';
import { contextName, hostNamespace, validateTenantName } from '../tenants/names.js';
import { ANNOTATIONS, readyCondition, tenantsRef, type Tenant } from '../tenants/resources.js';
import { ensureSystem, loadSigningKeys, readGatewayInfo } from '../tenants/system.js';
import { parseDuration, signToken } from '../tenants/tokens.js';
import { parseValues, readValuesFile, type TenantValues } from '../tenants/values.js';
import { CliError } from './errors.js';
import { readConnections, withHost, writeConnections } from './host.js';
import { seconds, step } from './progress.js';
import { unlessInterrupted } from './signals.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const collect = (v: string, acc: string[]): string[] => [...acc, v];

/** The options of a token, shared by `connect` (which puts one in a kubeconfig) and `token`. */
function tokenOptions(cmd: Command): Command {
  return cmd
    .option('--role <role>', `the token's role: ${ROLES.join(', ')}`, 'admin')
    .option('--user <user>', 'user name in the token', 'admin')
    .option('--group <group>', 'group in the token (repeatable)', collect, [])
    .option('--ttl <duration>', 'token lifetime', '24h')
    .option('--context <name>', 'host kubeconfig context');
}

function role(value: string): Role {
  if (!ROLES.includes(value as Role)) throw new CliError(`--role must be one of ${ROLES.join(', ')}; got "${value}"`);
  return value as Role;
}

/** The token's user and groups; the gateway refuses reserved ones, so none is minted. */
function identity(f: { user: string; group: string[] }): { user: string; groups: string[] } {
  const reserved = reservedIdentity(f.user, f.group);
  if (reserved) throw new CliError(`--user/--group: ${reserved}`);
  return { user: f.user, groups: f.group };
}

function name(value: string): string {
  try {
    return validateTenantName(value);
  } catch (err) {
    throw new CliError((err as Error).message);
  }
}

/** Waits until the controller has seen the tenant's current generation and reports it Ready. */
async function waitReady(host: KubeClient, tenant: string, timeoutMs: number): Promise<Tenant> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const t = await host.find<Tenant>(tenantsRef(tenant));
    if (!t) throw new CliError(`tenant "${tenant}" disappeared while waiting for it`);
    const ready = readyCondition(t);
    const current = (t.status?.observedGeneration ?? 0) >= (t.metadata.generation as number);
    if (current && ready?.status === 'True') return t;
    if (current && t.status?.phase === 'Failed') throw new CliError(`tenant "${tenant}" failed: ${ready?.message ?? 'unknown reason'}`);
    if (Date.now() > deadline) {
      const hint = t.status ? `last status: ${t.status.phase} (${ready?.message ?? ''})` : 'no tenant controller reported on it: is a gateway running (kplex dev up, or kplex gateway with a provider)?';
      throw new CliError(`tenant "${tenant}" was not ready after ${timeoutMs / 1000}s; ${hint}`);
    }
    await sleep(200);
  }
}

interface ConnectFlags {
  print?: boolean;
  role: string;
  user: string;
  group: string[];
  ttl: string;
  context?: string;
}

async function connect(host: KubeClient, hostContext: string, tenant: string, f: ConnectFlags): Promise<void> {
  const who = identity(f);
  const t = await host.find<Tenant>(tenantsRef(tenant));
  if (!t) throw new CliError(`tenant "${tenant}" not found`);
  if (readyCondition(t)?.status !== 'True') throw new CliError(`tenant "${tenant}" is not ready (${t.status?.phase ?? 'Pending'})`);
  const gateway = await readGatewayInfo(host);
  const token = await signToken(await loadSigningKeys(host), { tenant, tenantUid: t.metadata.uid!, ...who, role: role(f.role), ttlSeconds: ttl(f.ttl) });
  const config = kubeconfigFor(contextName(tenant), { server: `${gateway.endpoint}/tenants/${tenant}`, ca: gateway.ca, token });
  if (f.print) {
    process.stdout.write(toYaml(config));
    return;
  }
  mergeIntoUserKubeconfig(config, { switchContext: true });
  writeConnections({ ...readConnections(), [contextName(tenant)]: { hostContext } });
  console.log(`Switched to context "${contextName(tenant)}" (tenant ${tenant} through ${gateway.endpoint}); back to the host with: kplex disconnect`);
}

function ttl(text: string): number {
  try {
    return parseDuration(text);
  } catch (err) {
    throw new CliError(`--ttl: ${(err as Error).message}`);
  }
}

/** Removes a tenant's context from the user's kubeconfig and the connections file; whether there was one. */
function forgetContext(tenant: string, hostContext: string): boolean {
  const ctx = contextName(tenant);
  const found = removeFromUserKubeconfig(ctx, { fallback: hostContext });
  const connections = readConnections();
  delete connections[ctx];
  writeConnections(connections);
  return found;
}

function values(file: string | undefined, isolate: boolean | undefined): TenantValues {
  try {
    const v = file ? readValuesFile(file) : parseValues({});
    return isolate === undefined ? v : { ...v, isolate };
  } catch (err) {
    throw new CliError((err as Error).message);
  }
}

const age = (ts?: string): string => {
  if (!ts) return '-';
  const s = Math.max(0, Math.floor((Date.now() - Date.parse(ts)) / 1000));
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.floor(s / 60)}m` : s < 172800 ? `${Math.floor(s / 3600)}h` : `${Math.floor(s / 86400)}d`;
};

export function registerTenants(program: Command): void {
  program
    .command('create <name>')
    .description('create a tenant (virtual cluster) on the current host context, and connect to it')
    .option('-f, --values <file>', 'values file (YAML)')
    .option('--upgrade', "change an existing tenant's values, keeping its data")
    .option('--isolate', 'isolated mode: quota and network isolation on the host namespace, pod security baseline unless the values name a podSecurityStandard')
    .option('--connect <bool>', 'connect (switch kubectl to the tenant) when ready', 'true')
    .option('--timeout <duration>', 'how long to wait for the tenant to be ready', '180s')
    .option('--context <name>', 'host kubeconfig context')
    .action(async (tenantName: string, f: { values?: string; upgrade?: boolean; isolate?: boolean; connect: string; timeout: string; context?: string }) => {
      const tenant = name(tenantName);
      const v = values(f.values, f.isolate);
      const timeoutMs = ttl(f.timeout) * 1000;
      const begin = Date.now();
      await withHost(f.context, async (host, hostContext) => {
        await step('checking the host cluster and its gateway', async () => {
          await ensureSystem(host);
          await readGatewayInfo(host);
        });
        const existing = await host.find<Tenant>(tenantsRef(tenant));
        if (f.upgrade) {
          if (!existing) throw new CliError(`tenant "${tenant}" not found; create it without --upgrade`);
          // Replaced whole, not merged: a key left out of the new values (podSecurityStandard) must go.
          await step(`updating the values of tenant ${tenant}`, () => host.patch(tenantsRef(tenant), [{ op: 'add', path: '/spec', value: { ...existing.spec, values: v } }], 'json'));
          await step('waiting for the tenant controller to apply them', () => waitReady(host, tenant, timeoutMs));
        } else {
          if (existing) throw new CliError(`tenant "${tenant}" already exists; change it with: kplex create ${tenant} --upgrade -f values.yaml`);
          await step(`writing tenant ${tenant}`, async () => {
            try {
              await host.create(tenantsRef(), { apiVersion: 'kplex.dev/v1alpha1', kind: 'Tenant', metadata: { name: tenant }, spec: { values: v } });
            } catch (err) {
              if (err instanceof StatusError && err.code === 409) throw new CliError(`tenant "${tenant}" already exists`);
              throw err;
            }
          });
          try {
            // Ctrl-C while waiting is a failed create too: it must not leave a tenant behind.
            await step(`starting the control plane of ${tenant} (namespace ${hostNamespace(tenant)})`, () => unlessInterrupted(waitReady(host, tenant, timeoutMs), `interrupted; tenant "${tenant}" removed again`),
              (t) => (t.status?.controlPlaneReadyMs ? `API server ready in ${seconds(t.status.controlPlaneReadyMs)}` : 'ready'));
          } catch (err) {
            // Nothing half-made: a tenant that did not come up is removed again.
            await host.delete(tenantsRef(tenant)).catch(() => undefined);
            throw err;
          }
        }
        if (f.connect !== 'false') await connect(host, hostContext, tenant, { role: 'admin', user: 'admin', group: [], ttl: '24h' });
      });
      console.log(`tenant ${tenant} is ready (${seconds(Date.now() - begin)} in all)`);
    });

  tokenOptions(
    program
      .command('connect <name>')
      .description("add a context for the tenant (through the gateway, with a token) to your kubeconfig and switch to it")
      .option('--print', 'print the kubeconfig instead of changing yours'),
  ).action(async (tenantName: string, f: ConnectFlags) => {
    const tenant = name(tenantName);
    await withHost(f.context, (host, hostContext) => connect(host, hostContext, tenant, f));
  });

  program
    .command('disconnect')
    .description('switch kubectl back to the host context the current tenant context was connected from')
    .action(() => {
      const current = currentContext();
      const host = current ? readConnections()[current]?.hostContext : undefined;
      if (!current || !host) throw new CliError(`the current context ${current ? `"${current}" ` : ''}is not a kplex tenant context`);
      setCurrentContext(host);
      console.log(`Switched to context "${host}"`);
    });

  program
    .command('list')
    .description('list tenants')
    .option('-o, --output <format>', 'table or json', 'table')
    .option('--context <name>', 'host kubeconfig context')
    .action(async (f: { output: string; context?: string }) => {
      const tenants = await withHost(f.context, async (host) => {
        await ensureSystem(host);
        return (await host.list<Tenant>(tenantsRef())).items;
      });
      const current = currentContext();
      const rows = tenants.map((t) => ({
        name: t.metadata.name!,
        namespace: hostNamespace(t.metadata.name!),
        status: t.status?.phase ?? 'Pending',
        created: t.metadata.creationTimestamp,
        connected: current === contextName(t.metadata.name!),
      }));
      if (f.output === 'json') {
        console.log(JSON.stringify(rows, null, 2));
        return;
      }
      if (f.output !== 'table') throw new CliError(`--output must be table or json; got "${f.output}"`);
      const table = [['NAME', 'NAMESPACE', 'STATUS', 'AGE', 'CONNECTED'], ...rows.map((r) => [r.name, r.namespace, r.status, age(r.created), r.connected ? 'True' : 'False'])];
      const widths = table[0]!.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
      for (const r of table) console.log(r.map((c, i) => c.padEnd(widths[i]! + 3)).join('').trimEnd());
    });

  program
    .command('delete <name>')
    .description('delete a tenant: its control plane, host namespace with everything mirrored into it, and its kubeconfig context')
    .option('--keep-namespace', 'keep the host namespace and its objects')
    .option('--timeout <duration>', 'how long to wait', '120s')
    .option('--context <name>', 'host kubeconfig context')
    .action(async (tenantName: string, f: { keepNamespace?: boolean; timeout: string; context?: string }) => {
      const tenant = name(tenantName);
      const timeoutMs = ttl(f.timeout) * 1000;
      await withHost(f.context, async (host, hostContext) => {
        await ensureSystem(host);
        const t = await host.find<Tenant>(tenantsRef(tenant));
        if (!t) {
          // Deleted already (from another machine, or a run that ended before its cleanup): finish here.
          if (!forgetContext(tenant, hostContext)) throw new CliError(`tenant "${tenant}" not found`);
          console.log(`tenant ${tenant} was already deleted; removed its context ${contextName(tenant)}`);
          return;
        }
        if (f.keepNamespace) await host.patch(tenantsRef(tenant), { metadata: { annotations: { [ANNOTATIONS.keepNamespace]: 'true' } } });
        await step(`deleting tenant ${tenant}`, async () => {
          await host.delete(tenantsRef(tenant));
          const deadline = Date.now() + timeoutMs;
          while (await host.find(tenantsRef(tenant))) {
            if (Date.now() > deadline) throw new CliError(`tenant "${tenant}" is still being deleted after ${f.timeout}; is a gateway running?`);
            await sleep(200);
          }
        });
        forgetContext(tenant, hostContext);
        console.log(`tenant ${tenant} deleted`);
      });
    });

  tokenOptions(program.command('token <name>').description("print a bearer token for the tenant, signed by the gateway's keys")).action(async (tenantName: string, f: ConnectFlags) => {
    const tenant = name(tenantName);
    const who = identity(f);
    const token = await withHost(f.context, async (host) => {
      const t = await host.find<Tenant>(tenantsRef(tenant));
      if (!t) throw new CliError(`tenant "${tenant}" not found`);
      return signToken(await loadSigningKeys(host), { tenant, tenantUid: t.metadata.uid!, ...who, role: role(f.role), ttlSeconds: ttl(f.ttl) });
    });
    console.log(token);
  });
}
