import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/controlplane/ports.js';
import { readState } from '../../src/dev/state.js';
import { packageRoot } from '../../src/paths.js';
import { eventually, isolatedEnv, kplex, kubectl, processesMentioning, tmpDir } from './helpers.js';

// Short enough for a test, long enough that two cores starting tenant API servers do not starve a renew.
const LEASE_MS = 8_000;
const RETRY_MS = 1_000;
const TIMING = ['--lease-duration', `${LEASE_MS / 1000}s`, '--renew-deadline', '5s', '--retry-period', `${RETRY_MS / 1000}s`];

interface Replica {
  name: string;
  proc: ChildProcess;
  port: number;
  identity: string;
  tenantDir: string;
  /** pino's JSON lines from its stderr. */
  lines: { time: number; msg: string; [k: string]: unknown }[];
}

/** Gateway replicas campaigning for the tenant controller's Lease, as separate `kplex gateway` processes. */
describe('leader election among gateway replicas', () => {
  const dir = tmpDir('leader');
  const dataDir = path.join(dir, 'data');
  const env = isolatedEnv(dir);
  const hostKc = path.join(dataDir, 'admin.kubeconfig');
  const certs = path.join(dir, 'certs');
  const replicas: Replica[] = [];
  let etcdServers = '';

  async function startReplica(name: string): Promise<Replica> {
    const port = await freePort();
    const tenantDir = path.join(dir, `tenants-${name}`);
    const proc = spawn(process.execPath, [
      path.join(packageRoot, 'bin', 'kplex.js'), 'gateway',
      '--listen', `127.0.0.1:${port}`,
      '--metrics-listen', '127.0.0.1:0',
      '--certs', certs,
      '--advertise-url', 'https://127.0.0.1:{port}',
      '--etcd-servers', etcdServers,
      '--tenant-dir', tenantDir,
      '--context', 'kplex-host',
      ...TIMING,
    ], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const r: Replica = { name, proc, port, identity: `${os.hostname()}-${proc.pid}`, tenantDir, lines: [] };
    let partial = '';
    proc.stderr!.on('data', (d: Buffer) => {
      const text = partial + d.toString();
      const complete = text.split('\n');
      partial = complete.pop()!;
      for (const line of complete) if (line.startsWith('{')) r.lines.push(JSON.parse(line) as Replica['lines'][number]);
    });
    replicas.push(r);
    await eventually(async () => (r.lines.some((l) => l.msg === 'gateway listening') ? true : undefined), 60_000, `gateway ${name} to listen`);
    return r;
  }

  async function holder(): Promise<string> {
    const r = await kubectl(hostKc, ['get', 'lease', '-n', 'kplex-system', 'kplex-tenant-controller', '-o', 'json']);
    if (r.code !== 0) throw new Error(r.stderr);
    return (JSON.parse(r.stdout) as { spec: { holderIdentity?: string } }).spec.holderIdentity ?? '';
  }

  async function lease(): Promise<{ holderIdentity: string; acquireTime: string; leaseTransitions: number }> {
    const r = await kubectl(hostKc, ['get', 'lease', '-n', 'kplex-system', 'kplex-tenant-controller', '-o', 'json']);
    expect(r.code, r.stderr).toBe(0);
    return (JSON.parse(r.stdout) as { spec: { holderIdentity: string; acquireTime: string; leaseTransitions: number } }).spec;
  }

  const running = (r: Replica): boolean => r.proc.exitCode === null && r.proc.signalCode === null;
  const byIdentity = (id: string): Replica | undefined => replicas.find((r) => r.identity === id && running(r));
  /** The tenant API servers a replica's provider runs, by pid. */
  const apiServers = (r: Replica): string[] => processesMentioning(r.tenantDir).filter((l) => l.includes('kube-apiserver')).map((l) => l.split(' ')[0]!);
  const logOf = (r: Replica): string => r.lines.map((l) => JSON.stringify(l)).join('\n');

  beforeAll(async () => {
    const up = await kplex(['dev', 'up', '--nodes', '0', '--simulated-nodes', '0', '--detach', '--no-gateway', '--data-dir', dataDir], env);
    expect(up.code, up.stderr).toBe(0);
    etcdServers = readState(dataDir)!.etcdServers!;
    const made = await kplex(['gateway', 'certs', '--out', certs], env);
    expect(made.code, made.stderr).toBe(0);
    await startReplica('a');
    await startReplica('b');
  });

  afterAll(async () => {
    for (const r of replicas) {
      r.proc.kill('SIGCONT');
      r.proc.kill('SIGKILL');
    }
    // A killed gateway leaves its tenant API servers behind (they run detached): end them by pid.
    for (const line of processesMentioning(path.join(dir, 'tenants-'))) {
      const pid = Number(line.split(' ')[0]);
      if (pid > 0) spawnSync('kill', ['-KILL', String(pid)]);
    }
    await kplex(['dev', 'down', '--data-dir', dataDir], env);
  });

  it('one replica leads; when it is killed, another takes over within the lease duration and serves kplex create', async () => {
    const first = byIdentity(await eventually(async () => {
      const h = await holder().catch(() => '');
      return byIdentity(h) ? h : undefined;
    }, 60_000, 'a leader'))!;
    const other = replicas.find((r) => r !== first)!;
    const created = await kplex(['create', 'team-a', '--connect=false', '--context', 'kplex-host'], env);
    expect(created.code, created.stderr).toBe(0);
    expect(first.lines.some((l) => l.msg === 'leading: running the tenant controller')).toBe(true);
    expect(other.lines.some((l) => l.msg === 'leading: running the tenant controller'), logOf(other)).toBe(false);

    const killedAt = Date.now();
    first.proc.kill('SIGKILL');
    await eventually(async () => ((await holder()) === other.identity ? true : undefined), 30_000, `${other.name} to take over`);
    // The other waits a lease duration from when it last saw the record change, which it checks every
    // retry period (with client-go's jitter of up to 1.2 periods more).
    const taken = await lease();
    const tookMs = Date.parse(taken.acquireTime) - killedAt;
    expect(tookMs).toBeLessThan(LEASE_MS + 2.2 * RETRY_MS + 1_000);
    expect(taken.leaseTransitions).toBeGreaterThanOrEqual(1);

    const b = await kplex(['create', 'team-b', '--connect=false', '--context', 'kplex-host'], env);
    expect(b.code, b.stderr).toBe(0);
    const printed = await kplex(['connect', 'team-b', '--print', '--context', 'kplex-host'], env);
    expect(printed.code, printed.stderr).toBe(0);
    const kc = path.join(dir, 'team-b.kubeconfig');
    writeFileSync(kc, printed.stdout.replace(/server: https:\/\/127\.0\.0\.1:\d+/, `server: https://127.0.0.1:${other.port}`));
    const ns = await kubectl(kc, ['get', 'ns', 'default', '-o', 'name']);
    expect(ns.code, ns.stderr).toBe(0);
    expect(ns.stdout.trim()).toBe('namespace/default');
  });

  it('a leader paused longer than the lease duration is replaced, and when resumed it stops leading without acting', async () => {
    const paused = byIdentity(await holder())!;
    expect(paused).toBeDefined();
    const third = await startReplica('c');
    const before = new Set(apiServers(paused));
    expect(before.size).toBeGreaterThan(0);

    paused.proc.kill('SIGSTOP');
    const stoppedAt = Date.now();
    await eventually(async () => ((await holder()) === third.identity ? true : undefined), 30_000, `${third.name} to take over from the paused leader`);
    await eventually(async () => (third.lines.some((l) => l.msg === 'leading: running the tenant controller') ? true : undefined), 10_000, `${third.name} to run the tenant controller`);
    // Paused well past the lease duration, as a frozen VM or a long GC pause would be.
    await new Promise((r) => setTimeout(r, Math.max(0, stoppedAt + LEASE_MS + 3_000 - Date.now())));
    const resumedAt = Date.now();
    paused.proc.kill('SIGCONT');

    const after = () => paused.lines.filter((l) => l.time >= resumedAt);
    await eventually(async () => (after().some((l) => l.msg === 'no longer leading: stopping the tenant controller') ? true : undefined), 10_000, 'the resumed replica to stop leading');
    const lost = after().find((l) => l.msg === 'lost the lease');
    expect(lost?.why, logOf(paused)).toMatch(/not renewed within the renew deadline|answered after the renew deadline/);
    // It does not renew or take the Lease back: the replica that took over keeps it. Meanwhile, note
    // every tenant API server it runs: a controller acting after the pause would start new ones.
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) {
      expect(await holder()).toBe(third.identity);
      for (const pid of apiServers(paused)) seen.add(pid);
      await new Promise((r) => setTimeout(r, RETRY_MS));
    }
    const resumed = after();
    expect(resumed.filter((l) => l.msg === 'acquired the lease' || l.msg === 'leading: running the tenant controller'), logOf(paused)).toEqual([]);
    // No tenant controller action from it: it started no control plane after resuming, and ends its own.
    expect(resumed.filter((l) => l.msg === 'tenant deleted' || l.msg === 'control plane went down; restarting it')).toEqual([]);
    await eventually(async () => (apiServers(paused).length === 0 ? true : undefined), 30_000, 'the resumed replica to end its tenant API servers');
    expect([...seen].filter((pid) => !before.has(pid))).toEqual([]);
  });

  it('a leader that shuts down releases the Lease, and another takes over at once', async () => {
    const leader = byIdentity(await holder())!;
    const other = replicas.find((r) => r !== leader && running(r))!;
    const transitions = (await lease()).leaseTransitions;
    leader.proc.kill('SIGTERM');
    await eventually(async () => (leader.proc.exitCode !== null ? true : undefined), 60_000, `${leader.name} to exit`);
    expect(leader.proc.exitCode, logOf(leader)).toBe(0);
    const released = leader.lines.find((l) => l.msg === 'released the lease');
    expect(released, logOf(leader)).toBeDefined();
    await eventually(async () => ((await holder()) === other.identity ? true : undefined), 10_000, `${other.name} to take the released lease`);
    const taken = await lease();
    // Not a lease duration later: within the other's next try or two.
    expect(Date.parse(taken.acquireTime) - released!.time).toBeLessThan(2.2 * RETRY_MS + 1_000);
    expect(taken.leaseTransitions).toBe(transitions + 1);
  });
});
