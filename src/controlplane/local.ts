import { rm } from 'node:fs/promises';
import path from 'node:path';
import { request } from 'undici';
import { findNodeBinaries, type Binaries, type Program } from './binaries.js';
import { goMemoryLimitEnv, mergeComponentArgs, TENANT_ARGS, TENANT_CONTROLLERS } from './components.js';
import { startControlPlane, type RunningControlPlane } from './control-plane.js';
import { startTenantDns, type TenantDns } from './tenant-dns.js';
import { admissionConfiguration } from './pod-security.js';
import { DEFAULT_SPEC, type ControlPlaneEndpoint, type ControlPlaneProvider, type ControlPlaneSpec } from './provider.js';

export interface LocalProviderOptions {
  /** The etcd all tenants share; each tenant's data lives under its own key prefix. */
  etcdServers: string;
  /** Folder for each tenant's PKI, kubeconfig and logs. */
  baseDir: string;
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

export const tenantEtcdPrefix = (tenant: string): string => `/kplex/tenants/${tenant}`;

/**
 * The `local` provider: a tenant's kube-apiserver and kube-controller-manager run as processes on this
 * machine (no scheduler, no nodes), storing under their own prefix of a shared etcd.
 */
export class LocalProvider implements ControlPlaneProvider {
  readonly name = 'local';
  readonly servesPods: boolean;
  onDown?: (tenant: string) => void;
  private readonly running = new Map<string, { spec: string; controlPlane: Promise<RunningTenant> }>();

  constructor(private readonly o: LocalProviderOptions) {
    this.servesPods = !!o.pods;
  }

  tenantDir(tenant: string): string {
    return path.join(this.o.baseDir, tenant);
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
    const cp = await startControlPlane({
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
    });
    if (!pods) return { cp };
    try {
      const node = findNodeBinaries(this.o.binaries);
      if ('missing' in node) throw new Error(`the tenant's DNS server cannot start: ${node.missing}`);
      const dns = await startTenantDns({
        dir,
        pkiDir: path.join(dir, 'pki'),
        coredns: node.paths.coredns,
        access: cp.access,
        address: pods.address,
        fallbackTo: spec.pods!.fallbackToHost ? pods.hostDnsIP : undefined,
        renewal: { rotateIssuedBefore },
      });
      return { cp, dns, forPods: { address: pods.address, apiPort: Number(new URL(cp.access.server).port), dnsPort: dns.port } };
    } catch (err) {
      await cp.stop();
      throw err;
    }
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
    await deleteEtcdPrefix(this.o.etcdServers, `${tenantEtcdPrefix(tenant)}/`);
    await rm(this.tenantDir(tenant), { recursive: true, force: true });
  }

  async close(): Promise<void> {
    await Promise.all([...this.running.keys()].map((t) => this.stop(t)));
  }
}

async function stopTenant(t: RunningTenant): Promise<void> {
  await t.dns?.stop();
  await t.cp.stop();
}

/** Deletes every key under `prefix` through etcd's JSON gateway (the v3 DeleteRange call). */
export async function deleteEtcdPrefix(etcdServers: string, prefix: string): Promise<void> {
  const key = Buffer.from(prefix);
  const end = Buffer.from(prefix);
  end[end.length - 1] = (end[end.length - 1] ?? 0) + 1;
  const res = await request(`${etcdServers.split(',')[0]}/v3/kv/deleterange`, {
    method: 'POST',
    body: JSON.stringify({ key: key.toString('base64'), range_end: end.toString('base64') }),
    headers: { 'content-type': 'application/json' },
  });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`etcd refused to delete ${prefix}: ${text}`);
}
