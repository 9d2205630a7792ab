import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayReplicas, LEASE_MS, RETRY_MS } from './gateway-replicas.js';
import { eventually, kplex, kubectl, tmpDir } from './helpers.js';

/** Gateway replicas campaigning for the tenant controller's Lease, as separate `kplex gateway` processes. */
describe('leader election among gateway replicas', () => {
  const dir = tmpDir('leader');
  const set = new GatewayReplicas(dir);
  const { env, replicas } = set;
  const holder = () => set.holder();
  const lease = () => set.lease();
  const running = set.running.bind(set);
  const byIdentity = set.byIdentity.bind(set);
  const apiServers = set.apiServers.bind(set);
  const logOf = set.logOf.bind(set);

  beforeAll(() => set.upWith(['a', 'b']));

  afterAll(() => set.down());

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
    expect(apiServers(first).length).toBeGreaterThan(0);
    first.proc.kill('SIGKILL');
    // Its tenant control planes die with it, and are started again by the replica that takes over.
    await eventually(async () => (apiServers(first).length === 0 ? true : undefined), 10_000, `${first.name}'s tenant API servers to end with it`);
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
    const third = await set.start('c');
    const before = new Set(apiServers(paused));
    expect(before.size).toBeGreaterThan(0);

    paused.proc.kill('SIGSTOP');
    const stoppedAt = Date.now();
    await set.takenOverBy(third);
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
