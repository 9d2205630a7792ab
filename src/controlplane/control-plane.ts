import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import type { ClusterAccess } from '../k8s/client.js';
import { kubeconfigFor, toYaml, writePrivateFile } from '../k8s/kubeconfig.js';
import type { Binaries, Program } from './binaries.js';
import { apiServerArgs, controllerManagerArgs, FRONT_PROXY_CLIENT, KUBERNETES_SERVICE_IP, pkiFiles, schedulerArgs } from './components.js';
import { probe } from './health.js';
import { certificateIps, certificateValidity, createAuthority, createSigningKey, ensureLeaf, loadAuthority, readKeyPair, writeKeyPair, type CertificateAuthority, type LeafRequest, type Renewal } from './pki.js';
import type { CertificateStatus } from './provider.js';
import { freePort, portInUse } from './ports.js';
import { ComponentError, ManagedProcess, type ProcessSpec } from './process.js';

export interface ControlPlaneOptions {
  /** "host", or the tenant's name: used in messages and certificate names. */
  name: string;
  /** Holds pki/, logs/ and the admin kubeconfig; kept across restarts so credentials stay valid. */
  dir: string;
  binaries: Binaries;
  etcdServers: string;
  etcdPrefix: string;
  authorizationModes: string;
  controllers: string;
  withScheduler: boolean;
  apiServerPort?: number;
  /** Where the API server listens (default 127.0.0.1); the host's is on the real node's address when it has one. */
  address?: string;
  /** More addresses its serving certificate names (a Service address pods use). */
  servingIps?: string[];
  /** kube-apiserver's AdmissionConfiguration (e.g. PodSecurity defaults), if any. */
  admissionConfiguration?: Record<string, unknown>;
  /** Extra flags per component, for operators (and for tests of start failures). */
  componentArgs?: Partial<Record<Program, string[]>>;
  /** Which certificates to renew before starting, besides those due. */
  renewal?: Renewal;
  /** Environment per component on top of this process's (GOMEMLIMIT, GOGC). */
  componentEnv?: Partial<Record<Program, Record<string, string>>>;
  /** Its processes end when this one dies (ProcessSpec.diesWithParent): a tenant's, not the dev host's. */
  diesWithParent?: boolean;
  /**
   * What else needs the API server (a tenant's DNS server): started once it answers, beside the
   * controller manager rather than after it, and awaited with it. If the start fails, its caller
   * stops what `alongside` started.
   */
  alongside?: (access: ClusterAccess) => Promise<void>;
}

export interface RunningControlPlane {
  /** The admin credential (system:masters) of this control plane; renewCertificates() replaces it. */
  access: ClusterAccess;
  kubeconfigFile: string;
  /** The processes running now (a renewal restarts some). */
  readonly processes: ManagedProcess[];
  /** Milliseconds from the first process start until /readyz answered. */
  readyMs: number;
  /** The CA of the API server's front-proxy client certificate (ControlPlanePki). */
  frontProxyCa: string;
  /** Calls `handler` when any of its processes, now or after a restart, ends without being stopped. */
  onCrash(handler: (err: ComponentError) => void): void;
  /**
   * Renews the leaf certificates that are due, without taking the API server down: it reloads its serving
   * and front-proxy certificates from their files by itself; the components that read the admin
   * credential only at start are restarted one by one. Resolves to what was renewed.
   */
  renewCertificates(renewal?: Renewal): Promise<string[]>;
  /** Its certificates and their validity. */
  certificates(): Promise<CertificateStatus[]>;
  stop(): Promise<void>;
}

/** A process of a control plane and how to tell it is ready. */
interface Component {
  process: ManagedProcess;
  ready: () => Promise<boolean>;
  timeoutMs: number;
}

/** The processes of one control plane: started in order, stopped in reverse, restartable one at a time. */
class Components {
  private readonly list: Component[] = [];
  private readonly crashHandlers: ((err: ComponentError) => void)[] = [];

  get processes(): ManagedProcess[] {
    return this.list.map((c) => c.process);
  }

  /** Starts a process; resolves once it is ready. */
  async start(spec: ProcessSpec, ready: () => Promise<boolean>, timeoutMs: number): Promise<void> {
    const c = { process: ManagedProcess.start(spec), ready, timeoutMs };
    this.list.push(c);
    for (const h of this.crashHandlers) c.process.onCrash(h);
    await c.process.waitReady(ready, timeoutMs);
  }

  /** Starts the process `name` again with the same arguments (they name files whose content changed). */
  async restart(name: string): Promise<void> {
    const c = this.list.find((x) => x.process.name === name);
    if (!c) return;
    await c.process.stop();
    c.process = ManagedProcess.start(c.process.spec);
    for (const h of this.crashHandlers) c.process.onCrash(h);
    await c.process.waitReady(c.ready, c.timeoutMs);
  }

  onCrash(handler: (err: ComponentError) => void): void {
    this.crashHandlers.push(handler);
    for (const c of this.list) c.process.onCrash(handler);
  }

  async stop(): Promise<void> {
    for (const c of [...this.list].reverse()) await c.process.stop();
  }
}

export interface ControlPlanePki {
  ca: string;
  admin: { cert: string; key: string };
  /** The CA of the API server's front-proxy client certificate: what an aggregated API server trusts. */
  frontProxyCa: string;
  /** The leaf certificates this call made (first made, or renewed). */
  renewed: string[];
}

/**
 * Creates the control plane's CAs and service-account key once, and its leaf certificates (API serving,
 * admin, front-proxy client) whenever they are missing or due. The serving certificate is made again
 * when it lacks an address in `servingIps` (a data folder from a run without a real node).
 */
/** The CA in `file` of the PKI folder, made (valid ten years) when missing. */
export async function loadOrCreateAuthority(pkiDir: string, file: string, commonName: string): Promise<CertificateAuthority> {
  const pair = await readKeyPair(pkiDir, file);
  if (pair) return loadAuthority(pair);
  const created = await createAuthority(commonName);
  await writeKeyPair(pkiDir, file, { cert: created.cert, key: created.key });
  return created;
}

export async function ensurePki(pkiDir: string, name: string, servingIps: string[] = [], renewal: Renewal = {}): Promise<ControlPlanePki> {
  const files = pkiFiles(pkiDir);
  const ca = await loadOrCreateAuthority(pkiDir, 'ca', `kplex-${name}-ca`);
  const frontProxyCa = await loadOrCreateAuthority(pkiDir, 'front-proxy-ca', `kplex-${name}-front-proxy-ca`);
  const renewed: string[] = [];
  const leaf = async (file: string, authority: CertificateAuthority, req: LeafRequest, fits?: (pem: string) => boolean): Promise<void> => {
    if (await ensureLeaf(pkiDir, file, authority, req, renewal, fits)) renewed.push(file);
  };
  await leaf('apiserver', ca, {
    commonName: 'kube-apiserver',
    server: true,
    dnsNames: ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local'],
    ipAddresses: ['127.0.0.1', KUBERNETES_SERVICE_IP, ...servingIps],
  }, (pem) => servingIps.every((ip) => certificateIps(pem).includes(ip)));
  await leaf('admin', ca, { commonName: 'kplex-admin', organizations: ['system:masters'], client: true });
  await leaf('front-proxy-client', frontProxyCa, { commonName: FRONT_PROXY_CLIENT, client: true });
  if (!existsSync(files.serviceAccountKey)) {
    const sa = await createSigningKey();
    await mkdir(pkiDir, { recursive: true });
    await writeFile(files.serviceAccountKey, sa.key, { mode: 0o600 });
    await writeFile(files.serviceAccountPublicKey, sa.publicKey);
  }
  return {
    ca: ca.cert,
    admin: { cert: await readFile(files.adminCert, 'utf8'), key: await readFile(files.adminKey, 'utf8') },
    frontProxyCa: frontProxyCa.cert,
    renewed,
  };
}

/** The certificates in a PKI folder, by file name, with their validity: what `kplex certs check` shows. */
export async function certificatesIn(pkiDir: string): Promise<CertificateStatus[]> {
  const out: CertificateStatus[] = [];
  for (const file of (await readdir(pkiDir)).filter((f) => f.endsWith('.crt')).sort()) {
    const v = certificateValidity(await readFile(path.join(pkiDir, file), 'utf8'));
    out.push({ name: file.slice(0, -'.crt'.length), notBefore: v.notBefore.toISOString(), notAfter: v.notAfter.toISOString() });
  }
  return out;
}

async function choosePort(wanted: number | undefined, address: string): Promise<number> {
  if (wanted === undefined) return freePort();
  if (await portInUse(wanted, address)) throw new ComponentError('kube-apiserver', `port ${wanted} is in use on ${address}; choose another or stop what listens there`);
  return wanted;
}

/**
 * Starts kube-apiserver and kube-controller-manager (and kube-scheduler for the host) against an etcd
 * prefix, and waits until the API server is ready. On any failure everything started is stopped again.
 */
export async function startControlPlane(o: ControlPlaneOptions): Promise<RunningControlPlane> {
  const pkiDir = path.join(o.dir, 'pki');
  const logDir = path.join(o.dir, 'logs');
  await mkdir(logDir, { recursive: true });
  const address = o.address ?? '127.0.0.1';
  const servingIps = [...(o.address ? [o.address] : []), ...(o.servingIps ?? [])];
  const pki = await ensurePki(pkiDir, o.name, servingIps, o.renewal);
  const port = await choosePort(o.apiServerPort, address);
  const access: ClusterAccess = { server: `https://${address}:${port}`, ca: pki.ca, ...pki.admin };
  const kubeconfigFile = path.join(o.dir, 'admin.kubeconfig');
  writePrivateFile(kubeconfigFile, toYaml(kubeconfigFor(`kplex-${o.name}`, access)));
  const admissionFile = path.join(o.dir, 'admission.yaml');
  if (o.admissionConfiguration) await writeFile(admissionFile, YAML.stringify(o.admissionConfiguration));
  else await rm(admissionFile, { force: true });

  const components = new Components();
  const stop = (): Promise<void> => components.stop();
  const begin = Date.now();
  try {
    const bin = o.binaries.paths;
    await components.start({
      name: 'kube-apiserver',
      command: bin['kube-apiserver'],
      args: apiServerArgs({
        etcdServers: o.etcdServers,
        etcdPrefix: o.etcdPrefix,
        port,
        address: o.address,
        pkiDir,
        authorizationModes: o.authorizationModes,
        admissionConfigFile: o.admissionConfiguration ? admissionFile : undefined,
        extraArgs: o.componentArgs?.['kube-apiserver'],
      }),
      env: o.componentEnv?.['kube-apiserver'],
      logFile: path.join(logDir, 'kube-apiserver.log'),
      diesWithParent: o.diesWithParent,
    }, () => probe(`${access.server}/readyz`, access), 90_000);
    const readyMs = Date.now() - begin;

    const kcmPort = await freePort();
    const waits = [components.start({
      name: 'kube-controller-manager',
      command: bin['kube-controller-manager'],
      args: controllerManagerArgs({
        kubeconfig: kubeconfigFile,
        port: kcmPort,
        pkiDir,
        controllers: o.controllers,
        extraArgs: o.componentArgs?.['kube-controller-manager'],
      }),
      env: o.componentEnv?.['kube-controller-manager'],
      logFile: path.join(logDir, 'kube-controller-manager.log'),
      diesWithParent: o.diesWithParent,
    }, () => probe(`https://127.0.0.1:${kcmPort}/healthz`), 60_000)];

    if (o.withScheduler) {
      const schedulerPort = await freePort();
      waits.push(components.start({
        name: 'kube-scheduler',
        command: bin['kube-scheduler'],
        args: schedulerArgs({ kubeconfig: kubeconfigFile, port: schedulerPort, extraArgs: o.componentArgs?.['kube-scheduler'] }),
        logFile: path.join(logDir, 'kube-scheduler.log'),
        diesWithParent: o.diesWithParent,
      }, () => probe(`https://127.0.0.1:${schedulerPort}/healthz`), 60_000));
    }
    if (o.alongside) waits.push(o.alongside(access));
    // Settled, not raced: nothing may still be starting when the start has failed and is cleaned up.
    const failed = (await Promise.allSettled(waits)).find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    const running: RunningControlPlane = {
      access,
      kubeconfigFile,
      get processes() {
        return components.processes;
      },
      readyMs,
      frontProxyCa: pki.frontProxyCa,
      onCrash: (handler) => components.onCrash(handler),
      async renewCertificates(renewal = {}) {
        const renewedPki = await ensurePki(pkiDir, o.name, servingIps, renewal);
        if (renewedPki.renewed.includes('admin')) {
          running.access = { ...running.access, ...renewedPki.admin };
          writePrivateFile(kubeconfigFile, toYaml(kubeconfigFor(`kplex-${o.name}`, running.access)));
          // They read the kubeconfig at start only; the old credential stays valid until it expires.
          await components.restart('kube-controller-manager');
          await components.restart('kube-scheduler');
        }
        return renewedPki.renewed;
      },
      certificates: () => certificatesIn(pkiDir),
      stop,
    };
    return running;
  } catch (err) {
    await stop();
    throw err;
  }
}
