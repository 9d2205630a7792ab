// kplex snapshot, and what `kplex create --restore` does before the Tenant exists.
//
// The tenant's data is read and written where its provider keeps it: for the local provider, the
// host's etcd and the provider's tenant folder on the machine the gateway runs on. The CLI reaches them
// itself, found through the running dev cluster's state (or named with --etcd-servers and --tenant-dir),
// since a snapshot can be far larger than what the host API server carries in one object, and a
// consistent one is a read of the store at one revision, which only the store itself answers.
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { LocalStore } from '../controlplane/local.js';
import { createSigningKey } from '../controlplane/pki.js';
import { TenantStoreError, type StoreSnapshot, type TenantStore } from '../controlplane/provider.js';
import { runningState } from '../dev/state.js';
import { defaultDevDataDir, kplexVersion } from '../paths.js';
import { tenantsRef, type Tenant } from '../tenants/resources.js';
import { decodeSnapshot, encodeSnapshot, SnapshotFileError, type TenantSnapshot } from '../tenants/snapshot.js';
import { parseValues } from '../tenants/values.js';
import { tenantName } from './connect.js';
import { CliError } from './errors.js';
import { withHost } from './host.js';

/** Where the tenants' data is: the local provider's store of a dev cluster, or of a gateway run with --etcd-servers. */
export interface StoreFlags {
  dataDir?: string;
  etcdServers?: string;
  tenantDir?: string;
}

export function tenantStore(f: StoreFlags): TenantStore {
  if (f.etcdServers || f.tenantDir) {
    if (!f.etcdServers || !f.tenantDir) throw new CliError('--etcd-servers and --tenant-dir go together: the etcd and the folder the gateway\'s local provider was started with');
    return new LocalStore({ etcdServers: f.etcdServers, baseDir: path.resolve(f.tenantDir) });
  }
  const dataDir = path.resolve(f.dataDir ?? defaultDevDataDir());
  const state = runningState(dataDir);
  if (!state?.etcdServers) {
    throw new CliError(`no kplex dev cluster is running from ${dataDir}; name its folder with --data-dir, or, for a gateway run with --etcd-servers, pass --etcd-servers and --tenant-dir`);
  }
  // Where startDevGateway's local provider keeps tenants.
  return new LocalStore({ etcdServers: state.etcdServers, baseDir: path.join(state.dataDir, 'tenants') });
}

/** The store's refusals are the user's to read, as one line; anything else is a failure of its own. */
export async function storeCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof TenantStoreError) throw new CliError(err.message);
    throw err;
  }
}

const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

export async function snapshot(name: string, f: StoreFlags & { output: string; context?: string }): Promise<void> {
  const tenant = tenantName(name);
  const store = tenantStore(f);
  const t = await withHost(f.context, (host) => host.find<Tenant>(tenantsRef(tenant)));
  if (!t) throw new CliError(`tenant "${tenant}" not found`);
  if (t.metadata.deletionTimestamp) throw new CliError(`tenant "${tenant}" is being deleted`);
  const data = await storeCall(() => store.snapshot(tenant));
  const file = encodeSnapshot({
    tenant,
    values: parseValues(t.spec?.values, `tenant ${tenant} values`),
    kplexVersion: kplexVersion(),
    provider: 'local',
    createdAt: new Date().toISOString(),
    store: data,
  });
  // It holds the tenant's Secrets and its service-account signing key: readable by its owner only,
  // from the first byte on (written beside, then renamed over).
  const out = path.resolve(f.output);
  const tmp = `${out}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, file, { mode: 0o600 });
    renameSync(tmp, out);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new CliError(`cannot write ${out}: ${(err as Error).message}`);
  }
  console.log(`snapshot of tenant ${tenant} written to ${out}: ${data.entries.length} keys at store revision ${data.revision}, ${mib(file.length)}`);
  console.log('it holds the tenant\'s Secrets and its service-account signing key: keep it as private as they are (the file is mode 0600)');
}

/** Reads and checks a snapshot file; any problem is one line, before anything is changed. */
export function readSnapshotFile(file: string): TenantSnapshot {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new CliError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  try {
    return decodeSnapshot(bytes, file);
  } catch (err) {
    if (err instanceof SnapshotFileError) throw new CliError(err.message);
    throw err;
  }
}

/**
 * The data a tenant named `tenant` is restored with. Under the snapshot's own name it keeps the
 * service-account key, so tokens issued before stay valid; under another name it gets a new one: the
 * copy has the same ServiceAccounts with the same uids, and two tenants that accept each other's
 * tokens would let a token of one act in the other.
 */
export async function restoredData(tenant: string, snap: TenantSnapshot): Promise<StoreSnapshot> {
  if (tenant === snap.tenant) return snap.store;
  return { ...snap.store, serviceAccountKey: await createSigningKey() };
}
