import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import { freePort } from '../../src/controlplane/ports.js';
import { NODE_IP } from '../../src/dev/node-config.js';
import { readState } from '../../src/dev/state.js';
import { packageRoot } from '../../src/paths.js';
import { eventually, isolatedEnv, kplex, kubectl, processesMentioning } from './helpers.js';

/** Short enough for a test, long enough that two cores starting tenant API servers do not starve a renew. */
export const LEASE_MS = 8_000;
export const RETRY_MS = 1_000;
const TIMING = ['--lease-duration', `${LEASE_MS / 1000}s`, '--renew-deadline', '5s', '--retry-period', `${RETRY_MS / 1000}s`];

export interface Replica {
  name: string;
  proc: ChildProcess;
  port: number;
  identity: string;
  tenantDir: string;
  /** pino's JSON lines from its stderr. */
  lines: { time: number; msg: string; [k: string]: unknown }[];
}

export interface LeaseSpec {
  holderIdentity: string;
  acquireTime: string;
  leaseTransitions: number;
}

/**
 * Gateway replicas campaigning for the tenant controller's Lease, as separate `kplex gateway` processes
 * on a host of `kplex dev up --no-gateway`. With the local provider each runs its tenants' control planes
 * beside it, in a tenant folder of its own; with the cluster provider they are StatefulSets on the host,
 * which then has a real node to run them.
 */
export class GatewayReplicas {
  readonly dataDir: string;
  readonly env: Record<string, string>;
  readonly hostKubeconfig: string;
  readonly replicas: Replica[] = [];
  private readonly certs: string;
  private etcdServers = '';

  constructor(private readonly dir: string, private readonly provider: 'local' | 'cluster' = 'local') {
    this.dataDir = path.join(dir, 'data');
    this.env = isolatedEnv(dir);
    this.hostKubeconfig = path.join(this.dataDir, 'admin.kubeconfig');
    this.certs = path.join(dir, 'certs');
  }

  /** The host cluster (a real node only for the cluster provider's pods) and the gateways' serving certificate. */
  async up(): Promise<void> {
    const nodes = this.provider === 'cluster' ? '1' : '0';
    const up = await kplex(['dev', 'up', '--nodes', nodes, '--simulated-nodes', '0', '--detach', '--no-gateway', '--data-dir', this.dataDir], this.env, 300_000);
    expect(up.code, up.stderr).toBe(0);
    this.etcdServers = readState(this.dataDir)!.etcdServers!;
    const made = await kplex(['gateway', 'certs', '--out', this.certs], this.env);
    expect(made.code, made.stderr).toBe(0);
  }

  /** The host, then a replica of each name; returns once one of them leads. */
  async upWith(names: string[]): Promise<void> {
    await this.up();
    for (const name of names) await this.start(name);
    await this.leader();
  }

  async start(name: string): Promise<Replica> {
    const port = await freePort();
    const tenantDir = path.join(this.dir, `tenants-${name}`);
    const proc = spawn(process.execPath, [
      path.join(packageRoot, 'bin', 'kplex.js'), 'gateway',
      '--listen', `127.0.0.1:${port}`,
      '--metrics-listen', '127.0.0.1:0',
      '--certs', this.certs,
      '--advertise-url', 'https://127.0.0.1:{port}',
      // The cluster provider's tenants run on the real node; their API servers reach the leader's metrics adapter there.
      ...(this.provider === 'local' ? ['--etcd-servers', this.etcdServers, '--tenant-dir', tenantDir] : ['--providers', 'cluster', '--metrics-adapter-address', NODE_IP]),
      '--context', 'kplex-host',
      ...TIMING,
    ], { env: { ...process.env, ...this.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const r: Replica = { name, proc, port, identity: `${os.hostname()}-${proc.pid}`, tenantDir, lines: [] };
    let partial = '';
    // Kept beside the test's other files, for when a test fails.
    const log = createWriteStream(path.join(this.dir, `gateway-${name}.log`));
    proc.once('exit', () => log.end());
    proc.stderr!.on('data', (d: Buffer) => {
      log.write(d);
      const text = partial + d.toString();
      const complete = text.split('\n');
      partial = complete.pop()!;
      for (const line of complete) if (line.startsWith('{')) r.lines.push(JSON.parse(line) as Replica['lines'][number]);
    });
    this.replicas.push(r);
    await eventually(async () => (r.lines.some((l) => l.msg === 'gateway listening') ? true : undefined), 60_000, `gateway ${name} to listen`);
    return r;
  }

  async lease(): Promise<LeaseSpec> {
    const r = await kubectl(this.hostKubeconfig, ['get', 'lease', '-n', 'kplex-system', 'kplex-tenant-controller', '-o', 'json']);
    if (r.code !== 0) throw new Error(r.stderr);
    return (JSON.parse(r.stdout) as { spec: LeaseSpec }).spec;
  }

  async holder(): Promise<string> {
    return (await this.lease()).holderIdentity ?? '';
  }

  /** The running replica that holds the Lease, once there is one. */
  async leader(timeoutMs = 60_000): Promise<Replica> {
    const id = await eventually(async () => {
      const h = await this.holder().catch(() => '');
      return this.byIdentity(h) ? h : undefined;
    }, timeoutMs, 'a leader');
    return this.byIdentity(id)!;
  }

  /** `r` holds the Lease and runs the tenant controller. */
  async takenOverBy(r: Replica): Promise<void> {
    await eventually(async () => ((await this.holder()) === r.identity ? true : undefined), 30_000, `${r.name} to take over`);
    await eventually(async () => (r.lines.some((l) => l.msg === 'leading: running the tenant controller') ? true : undefined), 10_000, `${r.name} to run the tenant controller`);
  }

  running(r: Replica): boolean {
    return r.proc.exitCode === null && r.proc.signalCode === null;
  }

  byIdentity(id: string): Replica | undefined {
    return this.replicas.find((r) => r.identity === id && this.running(r));
  }

  /** The host's kube-apiserver, by pid. */
  hostApiServer(): string {
    const found = processesMentioning(`${this.dataDir}/`).filter((l) => l.includes('kube-apiserver') && !l.includes(path.join(this.dir, 'tenants-')));
    expect(found, found.join('\n')).toHaveLength(1);
    return found[0]!.split(' ')[0]!;
  }

  /** The tenant API servers a replica's provider runs, by pid. */
  apiServers(r: Replica): string[] {
    return processesMentioning(r.tenantDir).filter((l) => l.includes('kube-apiserver')).map((l) => l.split(' ')[0]!);
  }

  logOf(r: Replica): string {
    return r.lines.map((l) => JSON.stringify(l)).join('\n');
  }

  async down(): Promise<void> {
    for (const r of this.replicas) {
      r.proc.kill('SIGCONT');
      r.proc.kill('SIGKILL');
    }
    // A killed gateway's tenant processes die with it (the kernel's parent-death signal).
    await eventually(async () => (processesMentioning(path.join(this.dir, 'tenants-')).length === 0 ? true : undefined), 10_000, 'no tenant process left by a killed gateway');
    await kplex(['dev', 'down', '--data-dir', this.dataDir], this.env);
  }
}
