import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findBinaries, PROGRAMS } from '../../src/controlplane/binaries.js';
import { freePort } from '../../src/controlplane/ports.js';
import { createTenant, eventually, isolatedEnv, kplex, kubectl, processesMentioning, tmpDir, type Run } from './helpers.js';

const sh = (cmd: string): string => spawnSync('sh', ['-c', cmd], { encoding: 'utf8' }).stdout;

/** What a real node could leave on the machine; each list must be empty once the cluster is down. */
function leftovers(dataDir: string): Record<string, string[]> {
  const lines = (s: string) => s.split('\n').filter(Boolean);
  return {
    processes: processesMentioning(dataDir),
    shims: lines(sh("pgrep -af '^[^ ]*containerd-shim'")),
    links: lines(sh('ip -o link show | grep -E "kplex|master kplex0" || true')),
    chains: lines(sh('(iptables-save; ip6tables-save) 2>/dev/null | grep -E "^:(KUBE-|CNI-)" || true')),
    ipsets: lines(sh('ipset list -n 2>/dev/null | grep -E "KUBE-(SRC|DST)-" || true')),
    mounts: readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(dataDir)),
    netns: existsSync('/run/netns') ? readdirSync('/run/netns').filter((n) => n.startsWith('cni-')) : [],
    cgroups: lines(sh('ls -d /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods 2>/dev/null || true')),
  };
}
const nothingLeft = (dataDir: string) => Object.fromEntries(Object.keys(leftovers(dataDir)).map((k) => [k, []]));

/** The policy agent's state on the machine: kube-router's iptables chains and its ipsets. */
const policyAgentLeftovers = (): string[] =>
  sh('(iptables-save; ip6tables-save) 2>/dev/null | grep -E "^:KUBE-(ROUTER|POD-FW|NWPLCY)"; ipset list -n | grep -E "KUBE-(SRC|DST)-"').split('\n').filter(Boolean);

/**
 * A real node through the life of its cluster, on a cluster of its own (the other real-node suites share
 * one): after SIGKILL of everything `dev up` starts clean and runs the pods again, and `dev down` leaves
 * nothing on the machine, the policy agent's rules included.
 */
describe('a real node across a crash and dev down', () => {
  const dir = tmpDir('real-node-lifecycle');
  const dataDir = path.join(dir, 'data');
  const env = isolatedEnv(dir);
  const hostKc = path.join(dataDir, 'admin.kubeconfig');
  let tenantKc = '';
  const host = (args: string[]) => kubectl(hostKc, args);
  const tenant = (args: string[], timeoutMs?: number) => kubectl(tenantKc, args, { timeoutMs });
  const ok = (r: Run): string => {
    expect(r.code, r.stderr).toBe(0);
    return r.stdout;
  };
  let gatewayPort = 0;
  const up = () => kplex(['dev', 'up', '--nodes', '1', '--simulated-nodes', '1', '--detach', '--gateway-port', String(gatewayPort), '--data-dir', dataDir], env, 300_000);

  beforeAll(async () => {
    gatewayPort = await freePort();
    const r = await up();
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).not.toContain('no real node');
    // Isolated, so that the policy agent has rules of the tenant's to leave behind.
    tenantKc = await createTenant(env, 'team', { isolate: true });
    ok(await tenant(['create', 'deployment', 'nginx', '--image=nginx', '--port=80', '--replicas=2']));
    ok(await tenant(['rollout', 'status', 'deployment/nginx', '--timeout=120s'], 130_000));
  });

  afterAll(async () => {
    await kplex(['dev', 'down', '--data-dir', dataDir], env);
  });

  it('after SIGKILL of everything, dev up starts clean and runs the pods again', async () => {
    const state = JSON.parse(readFileSync(path.join(dataDir, 'state.json'), 'utf8')) as { pid: number };
    process.kill(state.pid, 'SIGKILL');
    for (const line of processesMentioning(dataDir)) {
      try {
        process.kill(Number(line.split(' ')[0]), 'SIGKILL');
      } catch {
        // already gone
      }
    }
    const r = await up();
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).not.toContain('no real node');
    // The tenant's control plane comes back (the gateway restarts it) and the pod's containers start again
    // in new sandboxes: exec reaches the new container.
    const pod = await eventually(async () => {
      const r = await tenant(['get', 'pods', '-l', 'app=nginx', '-o', 'jsonpath={.items[0].metadata.name}']);
      return r.code === 0 && r.stdout ? r.stdout : undefined;
    }, 120_000, 'the tenant back');
    const hostname = await eventually(async () => {
      const r = await tenant(['exec', pod, '--', 'hostname']);
      return r.code === 0 ? r.stdout.trim() : undefined;
    }, 120_000, 'exec in the restarted nginx');
    expect(hostname).toBe(pod);
    // One sandbox per running pod (the two nginx): the crashed run's are gone.
    const crictl = path.join(path.dirname(findBinaries().paths.kubectl), 'crictl');
    const count = (s: string) => s.split('\n').filter(Boolean).length;
    await eventually(async () => {
      const sandboxes = count(sh(`${crictl} --runtime-endpoint unix://${dataDir}/node/containerd.sock pods -q`));
      const running = count(ok(await host(['get', 'pods', '-A', '--field-selector=spec.nodeName=kplex-real-0,status.phase=Running', '-o', 'name'])));
      return sandboxes === 2 && running === 2 ? true : undefined;
    }, 60_000, 'one sandbox for each of the 2 running pods');
  });

  it('dev down leaves no process, shim, link, iptables chain, ipset, mount, network namespace or pod cgroup, nor the policy agent’s rules', async () => {
    expect(policyAgentLeftovers()).not.toEqual([]);
    const r = await kplex(['dev', 'down', '--data-dir', dataDir], env);
    expect(r.code, r.stderr).toBe(0);
    expect(leftovers(dataDir)).toEqual(nothingLeft(dataDir));
    expect(policyAgentLeftovers()).toEqual([]);
  });
});

describe('where a real node cannot run', () => {
  it('says why in one line and starts the cluster with simulated nodes only', async () => {
    const dir = tmpDir('no-real-node');
    const dataDir = path.join(dir, 'data');
    const env = isolatedEnv(dir);
    // The control-plane programs without kubelet and the other node programs.
    const bin = path.join(dir, 'bin');
    mkdirSync(bin);
    const real = findBinaries();
    for (const p of PROGRAMS) symlinkSync(real.paths[p], path.join(bin, p));
    symlinkSync(path.join(path.dirname(real.paths.kwok), 'kwok-stages'), path.join(bin, 'kwok-stages'));
    const more = { KPLEX_BIN_DIR: bin, KPLEX_CACHE_DIR: path.join(dir, 'no-cache') };
    try {
      const r = await kplex(['dev', 'up', '--nodes', '1', '--simulated-nodes', '2', '--detach', '--no-gateway', '--data-dir', dataDir], { ...env, ...more });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^no real node: kubelet is not built in .*; pods run on simulated nodes only$/m);
      const nodes = await kubectl(path.join(dataDir, 'admin.kubeconfig'), ['get', 'nodes', '-o', 'json']);
      const items = (JSON.parse(nodes.stdout) as { items: { metadata: { name: string }; spec: { taints?: unknown[] } }[] }).items;
      // Without a real node, the simulated nodes take every pod: no kwok taint.
      expect(items.map((n) => n.metadata.name).sort()).toEqual(['kplex-node-0', 'kplex-node-1']);
      expect(JSON.stringify(items.map((n) => n.spec.taints ?? []))).not.toContain('kwok.x-k8s.io/node');
      // No node runs images: loading one says so.
      const load = await kplex(['dev', 'image', 'load', path.join(path.dirname(real.paths.kubectl), 'images', 'busybox.tar'), '--data-dir', dataDir], { ...env, ...more });
      expect([load.code, load.stderr]).toEqual([1, `kplex: the kplex dev cluster in ${dataDir} has no real node (its pods run on simulated nodes, which run no images); see why in: kplex dev up\n`]);
    } finally {
      await kplex(['dev', 'down', '--data-dir', dataDir], { ...env, ...more });
    }
    expect(processesMentioning(dataDir)).toEqual([]);
  });
});
