import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { portInUse } from '../../src/controlplane/ports.js';
import { readState } from '../../src/dev/state.js';
import { createTenant, eventually, isolatedEnv, kplex, kubectl, kubectlPath, processesMentioning, tmpDir } from './helpers.js';

type Conditions = { type: string; status: string }[];
interface NodeJson {
  metadata: { name: string };
  status: { conditions?: Conditions; addresses?: { type: string; address: string }[] };
}
interface LeaseJson {
  metadata: { name: string };
  spec: { holderIdentity?: string; renewTime?: string };
}

const SIMULATED = ['kplex-node-0', 'kplex-node-1', 'kplex-node-2'];
const isReady = (o: { status: { conditions?: Conditions } }): boolean => !!o.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');

describe('kplex dev up: the embedded host cluster', () => {
  const dir = tmpDir('dev');
  const dataDir = path.join(dir, 'data');
  const env = isolatedEnv(dir);
  const kubeconfig = env.KUBECONFIG!;
  let firstUp: string;

  const getJson = async <T>(args: string[]): Promise<T> => {
    const r = await kubectl(kubeconfig, ['--context', 'kplex-host', 'get', ...args, '-o', 'json']);
    if (r.code !== 0) throw new Error(r.stderr);
    return JSON.parse(r.stdout) as T;
  };
  const nodeLeases = async (): Promise<Map<string, LeaseJson['spec']>> =>
    new Map((await getJson<{ items: LeaseJson[] }>(['leases', '-n', 'kube-node-lease'])).items.map((l) => [l.metadata.name, l.spec]));

  beforeAll(async () => {
    // A fresh machine: no kubeconfig at all.
    expect(existsSync(kubeconfig)).toBe(false);
    const up = await kplex(['dev', 'up', '--nodes', '0', '--simulated-nodes', '3', '--detach', '--no-gateway', '--data-dir', dataDir], env);
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout).toMatch(/host API server ready in \d+\.\ds/);
    firstUp = up.stdout;
  });

  afterAll(async () => {
    await kplex(['dev', 'down', '--data-dir', dataDir], env);
  });

  it('is usable when up returns: a first kubectl run, on the context up made current, starts a pod', async () => {
    // No --context: up made kplex-host current on a kubeconfig that had none, as kind does.
    const run = await kubectl(kubeconfig, ['run', 'first', '--image=nginx']);
    expect(run.code, run.stderr).toBe(0);
    expect(firstUp).toContain('context:         Switched to context "kplex-host"');
    const current = await kubectl(kubeconfig, ['config', 'current-context']);
    expect(current.stdout.trim()).toBe('kplex-host');
    await eventually(async () => {
      const pod = await getJson<{ status: { phase: string; conditions?: Conditions } }>(['pod', 'first']);
      return pod.status.phase === 'Running' && isReady(pod) ? pod : undefined;
    }, 30_000, 'the first pod Running and Ready');
  });

  it('heartbeats every simulated node by a Lease that kwok renews', async () => {
    const before = await nodeLeases();
    for (const n of SIMULATED) expect(before.get(n)?.renewTime, n).toBeTruthy();
    // kwok renews a 40-second Lease every 10 seconds, as kubelet does.
    await eventually(async () => {
      const now = await nodeLeases();
      return SIMULATED.every((n) => Date.parse(now.get(n)!.renewTime!) > Date.parse(before.get(n)!.renewTime!)) ? now : undefined;
    }, 30_000, 'renewed node Leases');
  });

  it('makes a pod marked not Ready (as the node lifecycle controller does) Ready again', async () => {
    const patch = await kubectl(kubeconfig, ['--context', 'kplex-host', 'patch', 'pod', 'first', '--subresource=status', '--type=strategic', '-p', JSON.stringify({ status: { conditions: [{ type: 'Ready', status: 'False', reason: 'NodeNotReady' }] } })]);
    expect(patch.code, patch.stderr).toBe(0);
    await eventually(async () => (isReady(await getJson<{ status: { conditions?: Conditions } }>(['pod', 'first'])) ? true : undefined), 30_000, 'the pod Ready again');
  });

  it('brings a node marked NotReady back to Ready with its address, every time', async () => {
    for (let flap = 0; flap < 2; flap++) {
      const patch = await kubectl(kubeconfig, ['--context', 'kplex-host', 'patch', 'node', 'kplex-node-0', '--subresource=status', '--type=strategic', '-p', JSON.stringify({ status: { conditions: [{ type: 'Ready', status: 'Unknown', reason: 'NodeStatusUnknown' }] } })]);
      expect(patch.code, patch.stderr).toBe(0);
      const node = await eventually(async () => {
        const n = await getJson<NodeJson>(['node', 'kplex-node-0']);
        return isReady(n) ? n : undefined;
      }, 30_000, 'the node Ready again');
      expect(node.status.addresses, `flap ${flap}`).toContainEqual({ type: 'InternalIP', address: '127.0.0.1' });
    }
    const logs = await kubectl(kubeconfig, ['--context', 'kplex-host', 'logs', 'first']);
    expect(logs.code, logs.stderr).toBe(0);
  });

  it('merges a kplex-host context and serves 3 Ready nodes to plain kubectl', async () => {
    const config = readFileSync(kubeconfig, 'utf8');
    expect(config).toContain('kplex-host');
    const nodes = await kubectl(kubeconfig, ['--context', 'kplex-host', 'get', 'nodes', '--no-headers']);
    expect(nodes.code, nodes.stderr).toBe(0);
    const lines = nodes.stdout.trim().split('\n');
    expect(lines).toHaveLength(3);
    for (const line of lines) expect(line.split(/\s+/)[1]).toBe('Ready');
  });

  it('runs a Deployment of 2 replicas as 2 Running pods with pod IPs', async () => {
    const manifest = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: nginx, image: nginx}]}
`;
    const apply = await kubectl(kubeconfig, ['--context', 'kplex-host', 'apply', '-f', '-'], { input: manifest });
    expect(apply.code, apply.stderr).toBe(0);
    const pods = await eventually(async () => {
      const r = await kubectl(kubeconfig, ['--context', 'kplex-host', 'get', 'pods', '-l', 'app=web', '-o', 'json']);
      const items = (JSON.parse(r.stdout) as { items: { status: { phase: string; podIP?: string } }[] }).items;
      return items.length === 2 && items.every((p) => p.status.phase === 'Running' && p.status.podIP) ? items : undefined;
    }, 60_000, '2 Running pods');
    expect(new Set(pods.map((p) => p.status.podIP)).size).toBe(2);
  });

  it('refuses a second up on the same data dir while one runs', async () => {
    const again = await kplex(['dev', 'up', '--detach', '--data-dir', dataDir], env);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/already running/);
  });

  it('reports status, and down leaves no process and no port behind', async () => {
    const status = await kplex(['dev', 'status', '--data-dir', dataDir], env);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/kube-apiserver\s+pid \d+\s+running/);

    const state = readState(dataDir)!;
    const port = Number(new URL(state.server!).port);
    const down = await kplex(['dev', 'down', '--data-dir', dataDir], env);
    expect(down.code, down.stderr).toBe(0);
    expect(processesMentioning(dataDir)).toEqual([]);
    expect(await portInUse(port)).toBe(false);
    expect(readFileSync(kubeconfig, 'utf8')).not.toContain('kplex-host');
    const after = await kplex(['dev', 'status', '--data-dir', dataDir], env);
    expect(after.code).not.toBe(0);
  });

  it('up on the same data dir brings the cluster back with its pods, and their logs from the new kwok', async () => {
    // Someone else's cluster is current now: up switches from it, and down switches back.
    const other = await kubectl(kubeconfig, ['config', 'set-context', 'other', '--cluster=nowhere', '--user=nobody']);
    expect(other.code, other.stderr).toBe(0);
    await kubectl(kubeconfig, ['config', 'use-context', 'other']);
    const up = await kplex(['dev', 'up', '--nodes', '0', '--simulated-nodes', '3', '--detach', '--no-gateway', '--data-dir', dataDir], env);
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout).toContain('Switched to context "kplex-host" (was "other"; kplex dev down switches back)');
    const pods = await kubectl(kubeconfig, ['--context', 'kplex-host', 'get', 'pods', '-l', 'app=web', '-o', 'name']);
    expect(pods.stdout.trim().split('\n')).toHaveLength(2);
    // The kept nodes come back with their addresses and with Leases of the new kwok.
    const nodes = await getJson<{ items: NodeJson[] }>(['nodes']);
    for (const n of nodes.items) {
      expect(isReady(n), n.metadata.name).toBe(true);
      expect(n.status.addresses, n.metadata.name).toContainEqual({ type: 'InternalIP', address: '127.0.0.1' });
    }
    const leases = await nodeLeases();
    for (const n of SIMULATED) expect(leases.get(n)?.holderIdentity, n).toBeTruthy();
    // ... and kwok manages them at once: a new pod starts without waiting for old Leases to expire.
    const run = await kubectl(kubeconfig, ['--context', 'kplex-host', 'run', 'after-restart', '--image=nginx']);
    expect(run.code, run.stderr).toBe(0);
    await eventually(async () => ((await getJson<{ status: { phase: string } }>(['pod', 'after-restart'])).status.phase === 'Running' ? true : undefined), 20_000, 'a new pod Running after the restart');
    // Every component got new ports; the nodes must point at the kubelet port of this run.
    const logs = await eventually(async () => {
      const r = await kubectl(kubeconfig, ['--context', 'kplex-host', 'logs', 'deployment/web']);
      return r.code === 0 ? r.stdout : undefined;
    }, 30_000, 'logs after the restart');
    expect(logs).toContain('simulated container started');

    const down = await kplex(['dev', 'down', '--data-dir', dataDir], env);
    expect(down.code, down.stderr).toBe(0);
    expect((await kubectl(kubeconfig, ['config', 'current-context'])).stdout.trim()).toBe('other');
  });

  it('with --switch-context=false adds the context and leaves the current one', async () => {
    const up = await kplex(['dev', 'up', '--nodes', '0', '--simulated-nodes', '1', '--detach', '--no-gateway', '--switch-context=false', '--data-dir', dataDir], env);
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout).toContain('current context is still "other" (--switch-context=false)');
    expect((await kubectl(kubeconfig, ['config', 'current-context'])).stdout.trim()).toBe('other');
    const nodes = await kubectl(kubeconfig, ['--context', 'kplex-host', 'get', 'nodes']);
    expect(nodes.code, nodes.stderr).toBe(0);
  });
});

describe('kplex dev down with the gateway', () => {
  const dir = tmpDir('dev-down');
  const dataDir = path.join(dir, 'data');
  const env = isolatedEnv(dir);

  beforeAll(async () => {
    const up = await kplex(['dev', 'up', '--nodes', '0', '--simulated-nodes', '1', '--detach', '--gateway-port', '0', '--data-dir', dataDir], env);
    expect(up.code, up.stderr).toBe(0);
  });

  afterAll(async () => {
    await kplex(['dev', 'down', '--data-dir', dataDir], env);
  });

  it('ends the watches through the gateway as an API server ends a watch, not with a broken stream', async () => {
    const tenant = await createTenant(env, 'watched');
    // kubectl get -w, and a raw watch (whose client sees whether the answer was whole).
    const watches = [
      ['get', 'configmaps', '-w', '-o', 'name'],
      ['get', '--raw', '/api/v1/namespaces/default/configmaps?watch=1'],
    ].map((args) => {
      const child = spawn(kubectlPath(), ['--kubeconfig', tenant, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      const w = { child, exited: once(child, 'exit'), out: '', err: '' };
      child.stdout.on('data', (d: Buffer) => (w.out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (w.err += d.toString()));
      return w;
    });
    try {
      await eventually(async () => (watches.every((w) => w.out.includes('kube-root-ca.crt')) ? true : undefined), 20_000, 'the watches\' first events');
      const down = await kplex(['dev', 'down', '--data-dir', dataDir], env);
      expect(down.code, down.stderr).toBe(0);
      for (const w of watches) {
        const [code] = (await w.exited) as [number | null];
        expect({ code, err: w.err }).toEqual({ code: 0, err: '' });
      }
    } finally {
      for (const w of watches) w.child.kill();
    }
  });
});
