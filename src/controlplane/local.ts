import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ClusterAccess } from '../k8s/client.js';
import { findNodeBinaries, type Binaries, type Program } from './binaries.js';
import { goMemoryLimitEnv, mergeComponentArgs, pkiFiles, TENANT_ARGS, TENANT_CONTROLLERS } from './components.js';
import { deletePrefix, EtcdError, putAllIfEmpty, readPrefix } from './etcd-kv.js';
import { absoluteKey, relativeKey, TENANTS_ETCD_ROOT } from './store-keys.js';
import { startControlPlane, type RunningControlPlane } from './control-plane.js';
import { startTenantDns, type TenantDns } from './tenant-dns.js';
import { admissionConfiguration } from './pod-security.js';
import { DEFAULT_SPEC, TenantStoreError, type ControlPlaneEndpoint, type ControlPlaneProvider, type ControlPlaneSpec, type StoreSnapshot, type TenantStore } from './provider.js';

/** Where the local provider keeps tenants' data: what snapshot and restore need, and nothing to run. */
export interface LocalStoreOptions {
  /** The etcd all tenants share; each tenant's data lives under its own key prefix. */
  etcdServers: string;
  /** Folder for each tenant's PKI, kubeconfig and logs. */
  baseDir: string;
}

export interface LocalProviderOptions extends LocalStoreOptions {
  binaries: Binaries;
  /** Flags every tenant's components start with (default TENANT_ARGS); benchmarks compare others. */
  tenantArgs?: Partial<Record<Program, string[]>>;
  /** The controller manager's --controllers (default TENANT_CONTROLLERS). */
  controllers?: string;
  /** Extra flags per component, for operators: after tenantArgs, so they win. */
  componentArgs?: Partial<Record<Program, string[]>>;
  /** Environment per component for every tenant (GOGC, …); a tenant's memory limits come from its spec. */
  componentEnv?: Partial<Record<Program, Record<string, string>>>;
  /**
   * Where the host's pods reach this machine (the real node's address) and the host's cluster DNS:
   * tenants' API servers and DNS servers listen there. Without it tenants' pods have neither.
   */
  pods?: { address: string; hostDnsIP: string };
}

/** A tenant's running control plane, its DNS server when its pods reach it, and where they do. */
interface RunningTenant {
  cp: RunningControlPlane;
  dns?: TenantDns;
  forPods?: ControlPlaneEndpoint['forPods'];
}

export const tenantEtcdPrefix = (tenant: string): string => `${TENANTS_ETCD_ROOT}/${tenant}`;

/**
 * The local provider's tenant data as a whole: the keys under the tenant's etcd prefix and its
 * service-account key in baseDir/NAME/pki. Used by the provider, and by the CLI on the machine whose
 * etcd and folder it is (kplex snapshot, kplex create --restore).
 */
export class LocalStore implements TenantStore {
  constructor(private readonly o: LocalStoreOptions) {}

  tenantDir(tenant: string): string {
    return path.join(this.o.baseDir, tenant);
  }

  async snapshot(tenant: string): Promise<StoreSnapshot> {
    const prefix = tenantEtcdPrefix(tenant);
    const files = pkiFiles(path.join(this.tenantDir(tenant), 'pki'));
    if (!existsSync(files.serviceAccountKey) || !existsSync(files.serviceAccountPublicKey)) {
      throw new TenantStoreError(`tenant "${tenant}" has no service-account key in ${path.dirname(files.serviceAccountKey)}: is this the machine its control plane runs on?`);
    }
    const serviceAccountKey = { key: await readFile(files.serviceAccountKey, 'utf8'), publicKey: await readFile(files.serviceAccountPublicKey, 'utf8') };
    let read;
    try {
      read = await readPrefix(this.o.etcdServers, `${prefix}/`);
    } catch (err) {
      // The API server compacts old revisions every few minutes; one that fell between two pages is read again.
      if (!(err instanceof EtcdError && err.message.includes('compacted'))) throw err;
      read = await readPrefix(this.o.etcdServers, `${prefix}/`);
    }
    if (!read.kvs.length) throw new TenantStoreError(`tenant "${tenant}" has no data under ${prefix}/ in etcd ${this.o.etcdServers}`);
    // Keys on a lease are the API server's short-lived ones (Events, its own endpoint lease): written
    // back without one they would never expire, and a restored tenant has no use for them.
    const entries = read.kvs.filter((kv) => !kv.leased).map((kv) => ({ key: relativeKey(prefix, kv.key.toString('utf8')), value: kv.value }));
    return { revision: read.revision, entries, serviceAccountKey };
  }

  async restore(tenant: string, data: StoreSnapshot): Promise<void> {
    const prefix = tenantEtcdPrefix(tenant);
    // Every key is checked before the first is written.
    const kvs = data.entries.map((e) => ({ key: Buffer.from(absoluteKey(prefix, e.key)), value: e.value }));
    if (!(await putAllIfEmpty(this.o.etcdServers, `${prefix}/`, kvs))) {
      throw new TenantStoreError(`etcd already holds data of tenant "${tenant}" (under ${prefix}/); nothing was restored`);
    }
    try {
      // A folder left from an earlier tenant of this name has no store behind it any more: its keys go.
      const dir = this.tenantDir(tenant);
      await rm(dir, { recursive: true, force: true });
      const files = pkiFiles(path.join(dir, 'pki'));
      await mkdir(path.dirname(files.serviceAccountKey), { recursive: true });
      await writeFile(files.serviceAccountKey, data.serviceAccountKey.key, { mode: 0o600 });
      await writeFile(files.serviceAccountPublicKey, data.serviceAccountKey.publicKey);
    } catch (err) {
      await this.forget(tenant);
      throw err;
    }
  }

  async forget(tenant: string): Promise<void> {
    await deletePrefix(this.o.etcdServers, `${tenantEtcdPrefix(tenant)}/`);
    await rm(this.tenantDir(tenant), { recursive: true, force: true });
  }
}

/**
 * The `local` provider: a tenant's kube-apiserver and kube-controller-manager run as processes on this
 * machine (no scheduler, no nodes), storing under their own prefix of a shared etcd.
 */
export class LocalProvider implements ControlPlaneProvider, TenantStore {
  readonly name = 'local';
  /** One API server and controller manager per tenant, beside the gateway that holds the Lease. */
  readonly maxReplicas = 1;
  readonly servesPods: boolean;
  onDown?: (tenant: string) => void;
  private readonly running = new Map<string, { spec: string; controlPlane: Promise<RunningTenant> }>();
  private readonly store: LocalStore;

  constructor(private readonly o: LocalProviderOptions) {
    this.servesPods = !!o.pods;
    this.store = new LocalStore(o);
  }

  tenantDir(tenant: string): string {
    return this.store.tenantDir(tenant);
  }

  snapshot(tenant: string): Promise<StoreSnapshot> {
    return this.store.snapshot(tenant);
  }

  /** Before the tenant's control plane first starts: one running on the data would not see it. */
  async restore(tenant: string, data: StoreSnapshot): Promise<void> {
    if (this.running.has(tenant)) throw new TenantStoreError(`tenant "${tenant}" has a running control plane; nothing was restored`);
    await this.store.restore(tenant, data);
  }

  forget(tenant: string): Promise<void> {
    return this.store.forget(tenant);
  }

  async ensure(tenant: string, spec: ControlPlaneSpec = DEFAULT_SPEC, rotateIssuedBefore?: Date): Promise<ControlPlaneEndpoint> {
    const wanted = JSON.stringify(spec);
    const existing = this.running.get(tenant);
    if (existing?.spec === wanted) {
      const t = await existing.controlPlane;
      await t.cp.renewCertificates({ rotateIssuedBefore });
      await t.dns?.renew({ rotateIssuedBefore });
      return this.endpoint(t, 0);
    }
    // Admission settings are read by kube-apiserver at start only.
    if (existing) await this.stop(tenant);
    const starting = this.start(tenant, spec, rotateIssuedBefore);
    const entry = { spec: wanted, controlPlane: starting };
    this.running.set(tenant, entry);
    try {
      const t = await starting;
      // A control plane that dies is forgotten, so the next ensure() starts it again.
      const onCrash = (): void => {
        if (this.running.get(tenant) !== entry) return;
        this.running.delete(tenant);
        void stopTenant(t).finally(() => this.onDown?.(tenant));
      };
      t.cp.onCrash(onCrash);
      t.dns?.onCrash(onCrash);
      return this.endpoint(t, t.cp.readyMs);
    } catch (err) {
      this.running.delete(tenant);
      throw err;
    }
  }

  private async endpoint(t: RunningTenant, readyMs: number): Promise<ControlPlaneEndpoint> {
    // The DNS server's certificate is in the same PKI folder, so this lists it too.
    return { access: t.cp.access, readyMs, forPods: t.forPods, frontProxyCa: t.cp.frontProxyCa, certificates: await t.cp.certificates() };
  }

  /** The API server and controller manager, and with pod access the tenant's DNS server. */
  private async start(tenant: string, spec: ControlPlaneSpec, rotateIssuedBefore?: Date): Promise<RunningTenant> {
    const dir = this.tenantDir(tenant);
    const pods = spec.pods && this.o.pods;
    const node = pods ? findNodeBinaries(this.o.binaries) : undefined;
    if (node && 'missing' in node) throw new Error(`the tenant's DNS server cannot start: ${node.missing}`);
    const started: { dns?: TenantDns } = {};
    // The DNS server starts as soon as the API server answers, while the controller manager does.
    const startDns = pods && node && (async (access: ClusterAccess): Promise<void> => {
      started.dns = await startTenantDns({
        dir,
        pkiDir: path.join(dir, 'pki'),
        coredns: node.paths.coredns,
        access,
        address: pods.address,
        fallbackTo: spec.pods!.fallbackToHost ? pods.hostDnsIP : undefined,
        renewal: { rotateIssuedBefore },
      });
    });
    let cp: RunningControlPlane;
    try {
      cp = await startControlPlane({
        name: tenant,
        dir,
        binaries: this.o.binaries,
        etcdServers: this.o.etcdServers,
        etcdPrefix: tenantEtcdPrefix(tenant),
        authorizationModes: 'RBAC',
        controllers: this.o.controllers ?? TENANT_CONTROLLERS,
        withScheduler: false,
        address: pods?.address,
        servingIps: spec.pods ? [spec.pods.serviceIP] : [],
        admissionConfiguration: admissionConfiguration(spec.podSecurity),
        componentArgs: mergeComponentArgs(this.o.tenantArgs ?? TENANT_ARGS, this.o.componentArgs ?? {}),
        componentEnv: {
          'kube-apiserver': { ...this.o.componentEnv?.['kube-apiserver'], ...goMemoryLimitEnv(spec.memoryLimits?.apiServer) },
          'kube-controller-manager': { ...this.o.componentEnv?.['kube-controller-manager'], ...goMemoryLimitEnv(spec.memoryLimits?.controllerManager) },
        },
        renewal: { rotateIssuedBefore },
        diesWithParent: true,
        alongside: startDns,
      });
    } catch (err) {
      // The DNS server may have started although the controller manager did not.
      await started.dns?.stop();
      throw err;
    }
    const { dns } = started;
    if (!pods || !dns) return { cp };
    return { cp, dns, forPods: { address: pods.address, apiPort: Number(new URL(cp.access.server).port), dnsPort: dns.port } };
  }

  async stop(tenant: string): Promise<void> {
    const entry = this.running.get(tenant);
    if (!entry) return;
    this.running.delete(tenant);
    const t = await entry.controlPlane.catch(() => undefined);
    if (t) await stopTenant(t);
  }

  async destroy(tenant: string): Promise<void> {
    await this.stop(tenant);
    await this.store.forget(tenant);
  }

  async close(): Promise<void> {
    await Promise.all([...this.running.keys()].map((t) => this.stop(t)));
  }
}

async function stopTenant(t: RunningTenant): Promise<void> {
  await t.dns?.stop();
  await t.cp.stop();
}
