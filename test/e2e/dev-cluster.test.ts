import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { portInUse } from '../../src/controlplane/ports.js';
import { readState } from '../../src/dev/state.js';
import { eventually, isolatedEnv, kplex, kubectl, processesMentioning, tmpDir } from './helpers.js';

describe('kplex dev up: the embedded host cluster', () => {
  const dir = tmpDir('dev');
  const dataDir = path.join(dir, 'data');
  const env = isolatedEnv(dir);
  const kubeconfig = env.KUBECONFIG!;

  beforeAll(async () => {
    const up = await kplex(['dev', 'up', '--nodes', '0', '--simulated-nodes', '3', '--detach', '--no-gateway', '--data-dir', dataDir], env);
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout).toMatch(/host API server ready in \d+\.\ds/);
  });

  afterAll(async () => {
    await kplex(['dev', 'down', '--data-dir', dataDir], env);
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
    const up = await kplex(['dev', 'up', '--nodes', '0', '--simulated-nodes', '3', '--detach', '--no-gateway', '--data-dir', dataDir], env);
    expect(up.code, up.stderr).toBe(0);
    const pods = await kubectl(kubeconfig, ['--context', 'kplex-host', 'get', 'pods', '-l', 'app=web', '-o', 'name']);
    expect(pods.stdout.trim().split('\n')).toHaveLength(2);
    // Every component got new ports; the nodes must point at the kubelet port of this run.
    const logs = await eventually(async () => {
      const r = await kubectl(kubeconfig, ['--context', 'kplex-host', 'logs', 'deployment/web']);
      return r.code === 0 ? r.stdout : undefined;
    }, 30_000, 'logs after the restart');
    expect(logs).toContain('simulated container started');
  });
});
