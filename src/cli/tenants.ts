import type { Command } from 'commander';
import { ROLES } from '../tenants/roles.js';

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

/**
 * Where snapshot and restore find the tenants' data: the local provider's store, of the running dev
 * cluster unless named.
 */
function storeOptions(cmd: Command): Command {
  return cmd
    .option('--data-dir <dir>', 'snapshot/restore: the dev cluster whose store holds the tenants (default ~/.kplex/dev)')
    .option('--etcd-servers <urls>', 'snapshot/restore: the etcd of a gateway run with --etcd-servers (with --tenant-dir)')
    .option('--tenant-dir <dir>', "snapshot/restore: that gateway's --tenant-dir");
}

/** The tenant commands; each loads its implementation when it runs. */
export function registerTenants(program: Command): void {
  const create = program
    .command('create <name>')
    .description('create a tenant (virtual cluster) on the current host context, and connect to it')
    .option('-f, --values <file>', 'values file (YAML)')
    .option('--upgrade', "change an existing tenant's values, keeping its data")
    .option('--restore <file>', 'make the tenant from a snapshot file (kplex snapshot): its data and values, under this name')
    .option('--isolate', 'isolated mode: quota and network isolation on the host namespace, pod security baseline unless the values name a podSecurityStandard')
    .option('--asleep', 'register the tenant asleep: its control plane starts on the first request through the gateway, or kplex wake')
    .option('--connect <bool>', 'connect (switch kubectl to the tenant) when ready', 'true')
    .option('--timeout <duration>', 'how long to wait for the tenant to be ready', '180s')
    .option('--context <name>', 'host kubeconfig context');
  storeOptions(create).action(async (name: string, f) => (await import('./create.js')).create(name, f));

  storeOptions(
    program
      .command('snapshot <name>')
      .description("write a consistent snapshot of a tenant (its control plane's data at one store revision, and its values) to a file; restore it with kplex create NAME --restore FILE")
      .requiredOption('-o, --output <file>', 'the snapshot file to write (mode 0600: it holds the tenant\'s Secrets)')
      .option('--context <name>', 'host kubeconfig context'),
  ).action(async (name: string, f) => (await import('./snapshot.js')).snapshot(name, f));

  tokenOptions(
    program
      .command('connect <name>')
      .description('add a context for the tenant (through the gateway, with a token) to your kubeconfig and switch to it')
      .option('--print', 'print the kubeconfig instead of changing yours'),
  ).action(async (name: string, f) => (await import('./connect.js')).connect(name, f));

  program
    .command('disconnect')
    .description('switch kubectl back to the host context the current tenant context was connected from')
    .action(async () => (await import('./connect.js')).disconnect());

  program
    .command('list')
    .description('list tenants')
    .option('-o, --output <format>', 'table or json', 'table')
    .option('--context <name>', 'host kubeconfig context')
    .action(async (f) => (await import('./list.js')).list(f));

  program
    .command('delete <name>')
    .description('delete a tenant: its control plane, host namespace with everything mirrored into it, and its kubeconfig context')
    .option('--keep-namespace', 'keep the host namespace and its objects')
    .option('--timeout <duration>', 'how long to wait', '120s')
    .option('--context <name>', 'host kubeconfig context')
    .action(async (name: string, f) => (await import('./create.js')).deleteTenant(name, f));

  const certs = program.command('certs').description("a tenant's certificates: when they expire, and renewing them now");
  certs
    .command('check <name>')
    .description("show when each certificate of the tenant's control plane, and the gateway's, expires and is renewed")
    .option('-o, --output <format>', 'table or json', 'table')
    .option('--context <name>', 'host kubeconfig context')
    .action(async (name: string, f) => (await import('./certs.js')).check(name, f));
  certs
    .command('rotate <name>')
    .description("make every leaf certificate of the tenant's control plane again now (CAs stay), without downtime")
    .option('--timeout <duration>', 'how long to wait for the renewal', '120s')
    .option('--context <name>', 'host kubeconfig context')
    .action(async (name: string, f) => (await import('./certs.js')).rotate(name, f));

  program
    .command('sleep <name>')
    .description("put a tenant to sleep: its control plane stops (its data is kept) until the next request through the gateway, or kplex wake, wakes it")
    .option('--timeout <duration>', 'how long to wait until it is asleep', '60s')
    .option('--context <name>', 'host kubeconfig context')
    .action(async (name: string, f) => (await import('./sleep.js')).sleepTenant(name, f));

  program
    .command('wake <name>')
    .description('wake a sleeping tenant: start its control plane again and wait until it is ready')
    .option('--timeout <duration>', 'how long to wait until it is ready', '120s')
    .option('--context <name>', 'host kubeconfig context')
    .action(async (name: string, f) => (await import('./sleep.js')).wakeTenant(name, f));

  tokenOptions(program.command('token <name>').description("print a bearer token for the tenant, signed by the gateway's keys")).action(
    async (name: string, f) => (await import('./connect.js')).token(name, f),
  );
}
