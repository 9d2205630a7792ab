import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findBinaries, PROGRAMS } from '../../src/controlplane/binaries.js';
import { freePort } from '../../src/controlplane/ports.js';
import { eventually, isolatedEnv, kplex, kubectl, kubectlPath, processesMentioning, tmpDir, type Run } from './helpers.js';

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

/**
 * The embedded cluster with a real node: kubelet, containerd, runc, the CNI bridge, kube-proxy and CoreDNS
 * run real containers from locally built images, and everything the gateway routes to the host works.
 */
describe('real nodes', () => {
  const dir = tmpDir('real-nodes');
  const dataDir = path.join(dir, 'data');
  const env = isolatedEnv(dir);
  const hostKc = path.join(dataDir, 'admin.kubeconfig');
  const tenantKc = path.join(dir, 'team.kubeconfig');
  const host = (args: string[], timeoutMs?: number) => kubectl(hostKc, args, { timeoutMs });
  const tenant = (args: string[], input?: string, timeoutMs?: number) => kubectl(tenantKc, args, { input, timeoutMs });
  const ok = (r: Run): string => {
    expect(r.code, r.stderr).toBe(0);
    return r.stdout;
  };
  const up = () => kplex(['dev', 'up', '--nodes', '1', '--simulated-nodes', '1', '--detach', '--gateway-port', String(gatewayPort), '--data-dir', dataDir], env, 300_000);
  let gatewayPort = 0;

  /** The log of a pod that ran to completion, once it has. */
  const finishedLogs = async (run: (args: string[]) => Promise<Run>, pod: string): Promise<string> => {
    await eventually(async () => ((await run(['get', 'pod', pod, '-o', 'jsonpath={.status.phase}'])).stdout === 'Succeeded' ? true : undefined), 90_000, `${pod} Succeeded`);
    return ok(await run(['logs', pod]));
  };

  beforeAll(async () => {
    gatewayPort = await freePort();
    const r = await up();
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).not.toContain('no real node');
    const c = await kplex(['create', 'team', '--connect=false', '--context', 'kplex-host'], env);
    expect(c.code, c.stderr).toBe(0);
    writeFileSync(tenantKc, (await kplex(['connect', 'team', '--print', '--context', 'kplex-host'], env)).stdout);
  });

  afterAll(async () => {
    await kplex(['dev', 'down', '--data-dir', dataDir], env);
  });

  it('runs a tenant nginx; port-forward through the gateway gets its welcome page, logs show the request', async () => {
    ok(await tenant(['create', 'deployment', 'nginx', '--image=nginx', '--port=80']));
    ok(await tenant(['rollout', 'status', 'deployment/nginx', '--timeout=120s'], undefined, 130_000));
    const pod = ok(await tenant(['get', 'pods', '-l', 'app=nginx', '-o', 'jsonpath={.items[0].metadata.name}']));

    const pf = spawn(kubectlPath(), ['--kubeconfig', tenantKc, 'port-forward', `pod/${pod}`, ':80'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const localPort = await new Promise<number>((resolve, reject) => {
        let out = '';
        pf.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /Forwarding from 127\.0\.0\.1:(\d+)/.exec(out);
          if (m) resolve(Number(m[1]));
        });
        pf.once('exit', (code) => reject(new Error(`port-forward exited with ${code}`)));
      });
      const page = await (await fetch(`http://127.0.0.1:${localPort}/`, { headers: { 'user-agent': 'kplex-e2e' } })).text();
      expect(page).toContain('Welcome to nginx!');
    } finally {
      pf.kill();
    }
    const logs = await eventually(async () => {
      const l = ok(await tenant(['logs', pod]));
      return l.includes('"GET / HTTP/1.1" 200') ? l : undefined;
    }, 30_000, 'the access-log line');
    expect(logs).toContain('kplex-e2e');
  });

  it('execs in the container: hostname prints the pod name', async () => {
    const pod = ok(await tenant(['get', 'pods', '-l', 'app=nginx', '-o', 'jsonpath={.items[0].metadata.name}']));
    const r = await tenant(['exec', pod, '--', 'hostname']);
    expect(ok(r).trim()).toBe(pod);
  });

  it('a busybox pod fetches a Service of another namespace by its ClusterIP', async () => {
    ok(await tenant(['create', 'namespace', 'web']));
    ok(await tenant(['-n', 'web', 'create', 'deployment', 'site', '--image=nginx', '--port=80']));
    ok(await tenant(['-n', 'web', 'expose', 'deployment', 'site', '--port=80']));
    ok(await tenant(['-n', 'web', 'rollout', 'status', 'deployment/site', '--timeout=120s'], undefined, 130_000));
    const ip = ok(await tenant(['-n', 'web', 'get', 'service', 'site', '-o', 'jsonpath={.spec.clusterIP}']));
    expect(ip).toMatch(/^10\.96\./);
    ok(await tenant(['run', 'fetch', '--image=busybox', '--restart=Never', '--', 'wget', '-q', '-O', '-', `http://${ip}/`]));
    expect(await finishedLogs(tenant, 'fetch')).toContain('Welcome to nginx!');
  });

  it('a host pod resolves kubernetes.default.svc.cluster.local through the cluster DNS', async () => {
    ok(await host(['run', 'lookup', '--image=busybox', '--restart=Never', '--', 'nslookup', 'kubernetes.default.svc.cluster.local']));
    expect(await finishedLogs(host, 'lookup')).toMatch(/Address:\s+10\.96\.0\.1\b/);
  });

  it('the real node and the simulated one heartbeat by Leases that are renewed', async () => {
    const renewed = async (): Promise<Map<string, number>> => {
      const leases = JSON.parse(ok(await host(['get', 'leases', '-n', 'kube-node-lease', '-o', 'json']))) as { items: { metadata: { name: string }; spec: { renewTime: string } }[] };
      return new Map(leases.items.map((l) => [l.metadata.name, Date.parse(l.spec.renewTime)]));
    };
    const before = await renewed();
    const nodes = ['kplex-real-0', 'kplex-node-0'];
    for (const n of nodes) expect(before.get(n), n).toBeGreaterThan(0);
    // kubelet and kwok both renew a 40-second Lease every 10 seconds.
    await eventually(async () => {
      const now = await renewed();
      return nodes.every((n) => now.get(n)! > before.get(n)!) ? true : undefined;
    }, 30_000, 'renewed node Leases');
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

  it('dev down leaves no process, shim, link, iptables chain, ipset, mount, network namespace or pod cgroup', async () => {
    const r = await kplex(['dev', 'down', '--data-dir', dataDir], env);
    expect(r.code, r.stderr).toBe(0);
    expect(leftovers(dataDir)).toEqual(nothingLeft(dataDir));
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
    } finally {
      await kplex(['dev', 'down', '--data-dir', dataDir], { ...env, ...more });
    }
    expect(processesMentioning(dataDir)).toEqual([]);
  });
});
