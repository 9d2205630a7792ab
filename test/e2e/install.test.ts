import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/paths.js';
import { eventually, helmPath, isolatedEnv, kplex, kubectl, processesMentioning, run, tmpDir, type Run } from './helpers.js';

const NODE_IP = '10.250.0.1';
const NODE_PORT = 31443;
const TENANT = 't1';

interface Pod {
  metadata: { name: string };
  status: { phase: string; conditions?: { type: string; status: string }[] };
}

/**
 * kplex installed into a cluster that runs no kplex (a host from `kplex dev up --no-gateway`): the
 * gateway image built here (scripts/gateway-image.sh) loaded onto the node, `helm install` of
 * deploy/chart, gateways Ready behind a NodePort, and a tenant made by the CLI whose control plane is a
 * StatefulSet on the host and whose Deployment runs there, reached through the NodePort.
 */
describe('install into a cluster: the Helm chart, the gateway image, provider cluster', () => {
  const dir = tmpDir('install');
  const dataDir = path.join(dir, 'data');
  const env = isolatedEnv(dir);
  const hostKc = path.join(dataDir, 'admin.kubeconfig');
  const host = (args: string[]): Promise<Run> => kubectl(hostKc, args);
  const helmEnv = { HELM_CONFIG_HOME: path.join(dir, 'helm', 'config'), HELM_CACHE_HOME: path.join(dir, 'helm', 'cache'), HELM_DATA_HOME: path.join(dir, 'helm', 'data') };
  const helm = (args: string[], timeoutMs = 300_000): Promise<Run> => run(helmPath(), ['--kubeconfig', hostKc, ...args], helmEnv, timeoutMs);
  const ok = (r: Run): string => {
    expect(r.code, r.stderr + r.stdout).toBe(0);
    return r.stdout;
  };
  let tenantKc = '';

  beforeAll(async () => {
    ok(await run('bash', [path.join(packageRoot, 'scripts', 'gateway-image.sh')], {}, 240_000));
    ok(await kplex(['dev', 'up', '--nodes', '1', '--simulated-nodes', '0', '--no-gateway', '--detach', '--data-dir', dataDir], env, 300_000));
    ok(await kplex(['dev', 'image', 'load', path.join(packageRoot, 'dist', 'images', 'gateway.tar'), '--data-dir', dataDir], env, 120_000));
  }, 600_000);

  afterAll(async () => {
    await kplex(['dev', 'down', '--data-dir', dataDir], env);
    expect(processesMentioning(dataDir)).toEqual([]);
  }, 120_000);

  it('helm install: every manifest is accepted by the API server, the gateways become Ready behind the NodePort', async () => {
    const values = ['--set', 'service.type=NodePort', '--set', `service.nodePort=${NODE_PORT}`, '--set', `advertiseUrl=https://${NODE_IP}:${NODE_PORT}`, '--set', `tls.names={${NODE_IP}}`];
    const rendered = ok(await helm(['template', 'kplex', path.join(packageRoot, 'deploy', 'chart'), '--namespace', 'kplex-system', ...values]));
    ok(await host(['create', 'namespace', 'kplex-system']));
    const dryRun = await kubectl(hostKc, ['apply', '--dry-run=server', '-n', 'kplex-system', '-f', '-'], { input: rendered });
    expect(dryRun.code, dryRun.stderr).toBe(0);
    ok(await helm(['install', 'kplex', path.join(packageRoot, 'deploy', 'chart'), '--namespace', 'kplex-system', '--wait', '--timeout', '4m', ...values], 300_000));
    const pods = JSON.parse(ok(await host(['-n', 'kplex-system', 'get', 'pods', '-l', 'app.kubernetes.io/name=kplex-gateway', '-o', 'json']))) as { items: Pod[] };
    expect(pods.items).toHaveLength(2);
    for (const p of pods.items) expect(p.status.conditions?.find((c) => c.type === 'Ready')?.status, p.metadata.name).toBe('True');
  }, 360_000);

  it('kplex create makes the tenant through the installed gateway; kubectl through the NodePort runs a Deployment with logs and exec', async () => {
    ok(await kplex(['create', TENANT, '--connect=false', '--context', 'kplex-host'], env, 300_000));
    const sts = JSON.parse(ok(await host(['-n', `kplex-${TENANT}`, 'get', 'statefulset', 'kplex-control-plane', '-o', 'json']))) as { status: { readyReplicas?: number } };
    expect(sts.status.readyReplicas).toBe(1);
    tenantKc = path.join(dir, `${TENANT}.kubeconfig`);
    const printed = ok(await kplex(['connect', TENANT, '--print', '--context', 'kplex-host'], env));
    expect(printed).toContain(`server: https://${NODE_IP}:${NODE_PORT}/tenants/${TENANT}`);
    writeFileSync(tenantKc, printed);
    ok(await kubectl(tenantKc, ['create', 'deployment', 'web', '--image=nginx']));
    const name = await eventually(async () => {
      const items = (JSON.parse(ok(await kubectl(tenantKc, ['get', 'pods', '-l', 'app=web', '-o', 'json']))) as { items: Pod[] }).items;
      return items.find((p) => p.status.phase === 'Running')?.metadata.name;
    }, 180_000, 'a Running pod of the Deployment');
    expect(ok(await kubectl(tenantKc, ['exec', name, '--', 'cat', '/etc/hostname'])).trim()).toBe(name);
    ok(await kubectl(tenantKc, ['logs', name]));
  }, 400_000);

  it('losing a gateway pod keeps the tenant served by the other replica', async () => {
    const pods = ok(await host(['-n', 'kplex-system', 'get', 'pods', '-l', 'app.kubernetes.io/name=kplex-gateway', '-o', 'name'])).trim().split('\n');
    ok(await host(['-n', 'kplex-system', 'delete', pods[0]!, '--wait=false']));
    await eventually(async () => ((await kubectl(tenantKc, ['get', 'deployment', 'web', '-o', 'name'])).code === 0 ? true : undefined), 60_000, 'the tenant through the remaining gateway');
  }, 120_000);

  it('kplex delete and helm uninstall leave only what the README says is kept (the gateway CA, the CRD, the signing keys)', async () => {
    ok(await kplex(['delete', TENANT, '--context', 'kplex-host'], env, 180_000));
    expect((await host(['get', 'namespace', `kplex-${TENANT}`])).code).not.toBe(0);
    // The claim's volume goes after the claim (reclaim policy Delete).
    await eventually(async () => (ok(await host(['get', 'pv', '-o', 'name'])).trim() === '' ? true : undefined), 60_000, 'the control plane volume to go');
    ok(await helm(['uninstall', 'kplex', '--namespace', 'kplex-system', '--wait']));
    // Its pods end after the release is gone (their grace period).
    await eventually(async () => (ok(await host(['-n', 'kplex-system', 'get', 'deployments,services,pods,serviceaccounts', '-l', 'app.kubernetes.io/name=kplex-gateway', '-o', 'name'])).trim() === '' ? true : undefined), 90_000, 'nothing of the release left');
    expect(ok(await host(['get', 'clusterroles,clusterrolebindings', '-o', 'name'])).split('\n').filter((n) => n.endsWith('/kplex-gateway'))).toEqual([]);
    expect(ok(await host(['-n', 'kplex-system', 'get', 'secret', 'kplex-gateway-tls', '-o', 'name'])).trim()).toBe('secret/kplex-gateway-tls');
  }, 300_000);
});
