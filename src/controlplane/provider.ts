import type { ClusterAccess } from '../k8s/client.js';
import { UNRESTRICTED, type PodSecurity } from './pod-security.js';

/** What a tenant's control plane is started with; a change restarts it (its data is kept). */
export interface ControlPlaneSpec {
  podSecurity: PodSecurity;
  /**
   * The host Service address the tenant's pods use for its API server and DNS (its certificate names
   * it), and whether unknown names go to the host's DNS; only for a provider that `servesPods`.
   */
  pods?: { serviceIP: string; fallbackToHost: boolean };
  /** Go's soft memory limit (GOMEMLIMIT) in bytes per component; absent: the runtime's default, none. */
  memoryLimits?: { apiServer?: number; controllerManager?: number };
  /** API servers and store members (1, 3 or 5); fixed once the control plane is made. Absent: 1. */
  replicas?: number;
}

/** CPU and memory, as a container's or a pod's `resources.requests` counts them. */
export interface ResourceRequests {
  cpuMillis: number;
  memoryBytes: number;
}

/** The Kubernetes quantities of `r` (`250m`, `272Mi`). */
export function requestQuantities(r: ResourceRequests): { cpu: string; memory: string } {
  const mi = 1024 ** 2;
  return { cpu: `${r.cpuMillis}m`, memory: r.memoryBytes % mi === 0 ? `${r.memoryBytes / mi}Mi` : String(r.memoryBytes) };
}

/** One certificate of a tenant's control plane, as `kplex certs check` shows it (times in RFC 3339). */
export interface CertificateStatus {
  name: string;
  notBefore: string;
  notAfter: string;
}

export const DEFAULT_SPEC: ControlPlaneSpec = { podSecurity: UNRESTRICTED };

/** Where and how the gateway reaches a tenant's control plane, with a credential that may impersonate. */
export interface ControlPlaneEndpoint {
  access: ClusterAccess;
  /** Milliseconds from start until /readyz answered (0 when it was already running). */
  readyMs: number;
  /** Where, on the pod network, the tenant's API server and DNS server listen (the Service's endpoints). */
  forPods?: { address: string; apiPort: number; dnsPort: number };
  /**
   * The CA of the client certificate the tenant's API server proxies aggregated API requests with: what
   * kplex's metrics adapter accepts from this tenant, and from no one else. Absent: no aggregation layer.
   */
  frontProxyCa?: string;
  /** Its certificates (CAs and leaves) and when they expire; leaves are renewed before they do. */
  certificates: CertificateStatus[];
}

/** One key of a tenant's store, relative to the tenant's own part of it (starts with "/"), and its value as stored. */
export interface StoreEntry {
  key: string;
  value: Buffer;
}

/**
 * A tenant's control-plane data at one store revision, in a form no provider owns: keys relative to
 * the tenant's part of the store, values as the tenant's API server wrote them. What a snapshot file
 * holds (tenants/snapshot.ts), so a file made with one provider restores with another.
 */
export interface StoreSnapshot {
  /** The store revision every entry was read at. */
  revision: number;
  entries: StoreEntry[];
  /**
   * The key pair the tenant's ServiceAccount tokens are signed with: restored, the tokens issued before
   * (kept in Secrets, or held outside) stay valid.
   */
  serviceAccountKey: { key: string; publicKey: string };
}

/** Reads and writes tenants' control-plane data as a whole (snapshot and restore). */
export interface TenantStore {
  /** The tenant's data at one store revision (its control plane may be running). */
  snapshot(tenant: string): Promise<StoreSnapshot>;
  /**
   * Writes a snapshot's data as `tenant`'s, before its control plane first starts. Refuses (TenantStoreError)
   * when the tenant has data already; on any failure it leaves no data of the tenant behind.
   */
  restore(tenant: string, data: StoreSnapshot): Promise<void>;
  /** Deletes the tenant's data, as a failed restore leaves none. Idempotent. */
  forget(tenant: string): Promise<void>;
}

/** A store's refusal the CLI reports as it is (one line). */
export class TenantStoreError extends Error {}

/**
 * Starts, stops and reports tenants' control planes. Implementations: `local` (processes on this
 * machine, storing in the host's etcd; also a TenantStore, for snapshots), `cluster` (a StatefulSet in
 * the tenant's host namespace; no snapshots yet). The tenant controller is the only caller.
 */
export interface ControlPlaneProvider {
  readonly name: string;
  /** Whether the host's pods can reach the control planes it runs (API server and DNS for the tenant's pods). */
  readonly servesPods: boolean;
  /**
   * For a provider that runs control planes as host pods: the labels of a tenant's control-plane pods and
   * the ports its API server and DNS server listen on there; the host Service selects them. Without it,
   * the endpoint's `forPods` says where they are.
   */
  podsOf?(tenant: string): { selector: Record<string, string>; apiPort: number; dnsPort: number };
  /** The most `replicas` it runs a control plane with. */
  readonly maxReplicas: number;
  /**
   * For a provider with `podsOf`: the pods, Services and requests a control plane with `spec` keeps in the
   * tenant's host namespace. An isolated tenant's quota is raised by them: they are there without being
   * the tenant's.
   */
  hostFootprint?(spec: ControlPlaneSpec): { pods: number; services: number; requests: ResourceRequests };
  /** Called when a control plane this provider runs goes down by itself, so its owner can bring it back. */
  onDown?: (tenant: string) => void;
  /**
   * Starts the tenant's control plane if it is not running with `spec`, and renews its certificates that
   * are due (or were issued before `rotateIssuedBefore`) without downtime; resolves once it is ready.
   */
  ensure(tenant: string, spec?: ControlPlaneSpec, rotateIssuedBefore?: Date): Promise<ControlPlaneEndpoint>;
  /** Stops it, keeping its data (so a later ensure() brings the same cluster back). */
  stop(tenant: string): Promise<void>;
  /** Stops it and deletes its data. Idempotent. */
  destroy(tenant: string): Promise<void>;
  /** Stops every control plane this provider runs here (process shutdown). */
  close(): Promise<void>;
}
