import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import type { ClusterAccess } from '../k8s/client.js';
import { kubeconfigFor, toYaml, writePrivateFile } from '../k8s/kubeconfig.js';
import type { Binaries, Program } from './binaries.js';
import { apiServerArgs, controllerManagerArgs, FRONT_PROXY_CLIENT, KUBERNETES_SERVICE_IP, pkiFiles, schedulerArgs } from './components.js';
import { probe } from './health.js';
import { certificateIps, createAuthority, createSigningKey, loadAuthority, readKeyPair, writeKeyPair } from './pki.js';
import { freePort, portInUse } from './ports.js';
import { ComponentError, ManagedProcess } from './process.js';

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
}

export interface RunningControlPlane {
  /** The admin credential (system:masters) of this control plane. */
  access: ClusterAccess;
  kubeconfigFile: string;
  processes: ManagedProcess[];
  /** Milliseconds from the first process start until /readyz answered. */
  readyMs: number;
  /** The CA of the API server's front-proxy client certificate (ControlPlanePki). */
  frontProxyCa: string;
  stop(): Promise<void>;
}

export interface ControlPlanePki {
  ca: string;
  admin: { cert: string; key: string };
  /** The CA of the API server's front-proxy client certificate: what an aggregated API server trusts. */
  frontProxyCa: string;
}

/**
 * Creates the control plane's CA, serving and admin certificates and service-account key once. The
 * serving certificate is made again when it lacks an address in `servingIps` (a data folder from a run
 * without a real node).
 */
export async function ensurePki(pkiDir: string, name: string, servingIps: string[] = []): Promise<ControlPlanePki> {
  const files = pkiFiles(pkiDir);
  let caPair = await readKeyPair(pkiDir, 'ca');
  if (!caPair) {
    const ca = await createAuthority(`kplex-${name}-ca`);
    caPair = { cert: ca.cert, key: ca.key };
    await writeKeyPair(pkiDir, 'ca', caPair);
  }
  const ca = await loadAuthority(caPair);
  const servingCovers = async (): Promise<boolean> => {
    if (!existsSync(files.servingCert)) return false;
    const ips = certificateIps(await readFile(files.servingCert, 'utf8'));
    return servingIps.every((ip) => ips.includes(ip));
  };
  if (!(await servingCovers())) {
    const serving = await ca.sign({
      commonName: 'kube-apiserver',
      server: true,
      dnsNames: ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local'],
      ipAddresses: ['127.0.0.1', KUBERNETES_SERVICE_IP, ...servingIps],
    });
    await writeKeyPair(pkiDir, 'apiserver', serving);
  }
  if (!existsSync(files.adminCert)) {
    await writeKeyPair(pkiDir, 'admin', await ca.sign({ commonName: 'kplex-admin', organizations: ['system:masters'], client: true }));
  }
  let frontProxyPair = await readKeyPair(pkiDir, 'front-proxy-ca');
  if (!frontProxyPair || !existsSync(files.frontProxyClientCert)) {
    const frontProxyCa = await createAuthority(`kplex-${name}-front-proxy-ca`);
    frontProxyPair = { cert: frontProxyCa.cert, key: frontProxyCa.key };
    await writeKeyPair(pkiDir, 'front-proxy-ca', frontProxyPair);
    await writeKeyPair(pkiDir, 'front-proxy-client', await frontProxyCa.sign({ commonName: FRONT_PROXY_CLIENT, client: true }));
  }
  if (!existsSync(files.serviceAccountKey)) {
    const sa = await createSigningKey();
    await mkdir(pkiDir, { recursive: true });
    await writeFile(files.serviceAccountKey, sa.key, { mode: 0o600 });
    await writeFile(files.serviceAccountPublicKey, sa.publicKey);
  }
  return {
    ca: caPair.cert,
    admin: { cert: await readFile(files.adminCert, 'utf8'), key: await readFile(files.adminKey, 'utf8') },
    frontProxyCa: frontProxyPair.cert,
  };
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
  const pki = await ensurePki(pkiDir, o.name, [...(o.address ? [o.address] : []), ...(o.servingIps ?? [])]);
  const port = await choosePort(o.apiServerPort, address);
  const access: ClusterAccess = { server: `https://${address}:${port}`, ca: pki.ca, ...pki.admin };
  const kubeconfigFile = path.join(o.dir, 'admin.kubeconfig');
  writePrivateFile(kubeconfigFile, toYaml(kubeconfigFor(`kplex-${o.name}`, access)));
  const admissionFile = path.join(o.dir, 'admission.yaml');
  if (o.admissionConfiguration) await writeFile(admissionFile, YAML.stringify(o.admissionConfiguration));
  else await rm(admissionFile, { force: true });

  const started: ManagedProcess[] = [];
  const stop = async (): Promise<void> => {
    for (const p of [...started].reverse()) await p.stop();
  };
  const begin = Date.now();
  try {
    const bin = o.binaries.paths;
    const apiserver = ManagedProcess.start({
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
      logFile: path.join(logDir, 'kube-apiserver.log'),
    });
    started.push(apiserver);
    await apiserver.waitReady(() => probe(`${access.server}/readyz`, access), 90_000);
    const readyMs = Date.now() - begin;

    const kcm = ManagedProcess.start({
      name: 'kube-controller-manager',
      command: bin['kube-controller-manager'],
      args: controllerManagerArgs({
        kubeconfig: kubeconfigFile,
        port: await freePort(),
        pkiDir,
        controllers: o.controllers,
        extraArgs: o.componentArgs?.['kube-controller-manager'],
      }),
      logFile: path.join(logDir, 'kube-controller-manager.log'),
    });
    started.push(kcm);
    const kcmPort = Number(kcm.spec.args.find((a) => a.startsWith('--secure-port='))?.split('=')[1]);
    const waits = [kcm.waitReady(() => probe(`https://127.0.0.1:${kcmPort}/healthz`), 60_000)];

    if (o.withScheduler) {
      const schedulerPort = await freePort();
      const scheduler = ManagedProcess.start({
        name: 'kube-scheduler',
        command: bin['kube-scheduler'],
        args: schedulerArgs({ kubeconfig: kubeconfigFile, port: schedulerPort, extraArgs: o.componentArgs?.['kube-scheduler'] }),
        logFile: path.join(logDir, 'kube-scheduler.log'),
      });
      started.push(scheduler);
      waits.push(scheduler.waitReady(() => probe(`https://127.0.0.1:${schedulerPort}/healthz`), 60_000));
    }
    await Promise.all(waits);
    return { access, kubeconfigFile, processes: started, readyMs, frontProxyCa: pki.frontProxyCa, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
