import type { KubeClient } from '../k8s/client.js';
import { currentContext, kubeconfigFor, mergeIntoUserKubeconfig, setCurrentContext, toYaml } from '../k8s/kubeconfig.js';
import { reservedIdentity, ROLES, type Role } from '../tenants/roles.js';
import { contextName, validateTenantName } from '../tenants/names.js';
import { tenantsRef, type Tenant } from '../tenants/resources.js';
import { notConnectable } from '../tenants/sleep.js';
import { loadSigningKeys, readGatewayInfo } from '../tenants/system.js';
import { parseDuration, signToken } from '../tenants/tokens.js';
import { CliError } from './errors.js';
import { readConnections, withHost, writeConnections } from './host.js';

export interface TokenFlags {
  role: string;
  user: string;
  group: string[];
  ttl: string;
  context?: string;
}

export interface ConnectFlags extends TokenFlags {
  print?: boolean;
}

export function tenantName(value: string): string {
  try {
    return validateTenantName(value);
  } catch (err) {
    throw new CliError((err as Error).message);
  }
}

/** A duration flag (`90s`, `24h`) in seconds. */
export function durationFlag(flag: string, text: string): number {
  try {
    return parseDuration(text);
  } catch (err) {
    throw new CliError(`${flag}: ${(err as Error).message}`);
  }
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

/** Adds (or, with --print, prints) a context for the tenant with a fresh token, and switches to it. */
export async function connectTo(host: KubeClient, hostContext: string, tenant: string, f: ConnectFlags): Promise<void> {
  const who = identity(f);
  const t = await host.find<Tenant>(tenantsRef(tenant));
  if (!t) throw new CliError(`tenant "${tenant}" not found`);
  const why = notConnectable(t);
  if (why) throw new CliError(`tenant "${tenant}" cannot be connected to: ${why}`);
  const gateway = await readGatewayInfo(host);
  const token = await signToken(await loadSigningKeys(host), { tenant, tenantUid: t.metadata.uid!, ...who, role: role(f.role), ttlSeconds: durationFlag('--ttl', f.ttl) });
  const config = kubeconfigFor(contextName(tenant), { server: `${gateway.endpoint}/tenants/${tenant}`, ca: gateway.ca, token });
  if (f.print) {
    process.stdout.write(toYaml(config));
    return;
  }
  mergeIntoUserKubeconfig(config, { switchContext: true });
  writeConnections({ ...readConnections(), [contextName(tenant)]: { hostContext } });
  console.log(`Switched to context "${contextName(tenant)}" (tenant ${tenant} through ${gateway.endpoint}); back to the host with: kplex disconnect`);
}

export async function connect(name: string, f: ConnectFlags): Promise<void> {
  const tenant = tenantName(name);
  await withHost(f.context, (host, hostContext) => connectTo(host, hostContext, tenant, f));
}

export function disconnect(): void {
  const current = currentContext();
  const host = current ? readConnections()[current]?.hostContext : undefined;
  if (!current || !host) throw new CliError(`the current context ${current ? `"${current}" ` : ''}is not a kplex tenant context`);
  setCurrentContext(host);
  console.log(`Switched to context "${host}"`);
}

export async function token(name: string, f: TokenFlags): Promise<void> {
  const tenant = tenantName(name);
  const who = identity(f);
  const signed = await withHost(f.context, async (host) => {
    const t = await host.find<Tenant>(tenantsRef(tenant));
    if (!t) throw new CliError(`tenant "${tenant}" not found`);
    return signToken(await loadSigningKeys(host), { tenant, tenantUid: t.metadata.uid!, ...who, role: role(f.role), ttlSeconds: durationFlag('--ttl', f.ttl) });
  });
  console.log(signed);
}
