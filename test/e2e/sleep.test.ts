import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import YAML from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Tenant } from '../../src/tenants/resources.js';
import { eventually, kplex, kubectl, kubectlPath, onSimulatedNodes, processesMentioning, useSharedHost, type Run } from './helpers.js';

interface Kubeconfig {
  clusters: { cluster: { server: string; 'certificate-authority-data': string } }[];
  users: { user: { token: string } }[];
}

const deployment = (replicas: number) => `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: ${replicas}
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx}]
      nodeSelector: ${JSON.stringify(onSimulatedNodes.nodeSelector)}
      tolerations: ${JSON.stringify(onSimulatedNodes.tolerations)}
`;

/**
 * Sleep and wake on the shared host: `kplex sleep` stops a tenant's control plane (no process left,
 * its pods kept or stopped as its values say), the next authenticated request through the gateway
 * wakes it and is answered (a watch too), an unauthenticated one never does, and sleep.afterInactivity
 * puts an idle tenant to sleep by itself.
 */
describe('sleep and wake', () => {
  const shared = useSharedHost('sleep', ['nap', 'doze']);
  const kubeconfigs: Record<string, string> = {};
  const as = (tenant: string, args: string[], input?: string) => kubectl(kubeconfigs[tenant]!, args, { input });
  const host = (args: string[]) => kubectl(shared.hostKubeconfig, args);
  const ok = (r: Run): string => {
    expect(r.code, r.stderr).toBe(0);
    return r.stdout;
  };
  const tenantObject = async (name: string): Promise<Tenant> => JSON.parse(ok(await host(['get', 'tenants.kplex.dev', name, '-o', 'json']))) as Tenant;
  const listed = async (name: string) => {
    const rows = JSON.parse(ok(await kplex(['list', '-o', 'json', '--context', 'kplex-host'], shared.env))) as { name: string; status: string; sleepingSince?: string }[];
    return rows.find((r) => r.name === name);
  };
  /** The tenant's control-plane processes on this machine (the local provider keeps them under tenants/NAME/). */
  const processesOf = (name: string) => processesMentioning(path.join(shared.dataDir, 'tenants', name, '/')).filter((l) => /kube-apiserver|kube-controller-manager/.test(l));
  const hostPods = async (name: string) =>
    ok(await host(['-n', `kplex-${name}`, 'get', 'pods', '-l', `kplex.dev/tenant=${name}`, '-o', 'jsonpath={.items[*].metadata.name}'])).split(' ').filter(Boolean);
  const kubeconfigOf = (name: string) => YAML.parse(readFileSync(kubeconfigs[name]!, 'utf8')) as Kubeconfig;

  /** One raw HTTPS request to the gateway, with the given Authorization header (or none). */
  function raw(urlPath: string, authorization?: string): Promise<{ status: number; text: string }> {
    const c = kubeconfigOf('nap').clusters[0]!.cluster;
    const url = new URL(c.server);
    const ca = Buffer.from(c['certificate-authority-data'], 'base64').toString('utf8');
    return new Promise((resolve, reject) => {
      const req = https.request({ host: url.hostname, port: url.port, method: 'GET', path: urlPath, ca, agent: false, headers: authorization ? { authorization } : {} }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.once('end', () => resolve({ status: res.statusCode ?? 0, text }));
      });
      req.once('error', reject);
      req.end();
    });
  }

  const sleepNow = async (name: string) => {
    const r = await kplex(['sleep', name, '--context', 'kplex-host'], shared.env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`tenant ${name} is asleep`);
  };

  beforeAll(async () => {
    await Promise.all([
      (async () => (kubeconfigs.nap = await shared.createTenant('nap')))(),
      (async () => (kubeconfigs.doze = await shared.createTenant('doze', { sleep: { afterInactivity: '5s', workloads: 'stop' } })))(),
    ]);
    ok(await as('nap', ['apply', '-f', '-'], deployment(1)));
    await eventually(async () => ((await hostPods('nap')).length === 1 ? true : undefined), 60_000, "nap's pod on the host");
  });

  it('kplex sleep stops the control plane, keeps the pods, and kplex list says Sleeping since when', async () => {
    expect(processesOf('nap').length).toBeGreaterThan(0);
    const podsBefore = await hostPods('nap');
    await sleepNow('nap');
    const row = await listed('nap');
    expect(row?.status).toBe('Sleeping');
    expect(Date.now() - Date.parse(row!.sleepingSince!)).toBeLessThan(60_000);
    expect(ok(await kplex(['list', '--context', 'kplex-host'], shared.env))).toMatch(/^nap\s+kplex-nap\s+Sleeping \(\d+s\)/m);
    expect(processesOf('nap')).toEqual([]);
    // sleep.workloads keep (the default): the host twins run on.
    expect(await hostPods('nap')).toEqual(podsBefore);
  });

  it('attack: no token, a forged token or a token of another tenant never wakes a sleeping tenant', async () => {
    const doze = kubeconfigOf('doze').users[0]!.user.token;
    const nap = kubeconfigOf('nap').users[0]!.user.token;
    const [header, payload] = nap.split('.');
    const attempts = [
      await raw('/tenants/nap/api/v1/pods'),
      await raw('/tenants/nap/api/v1/pods', 'Bearer not-a-jwt'),
      await raw('/tenants/nap/api/v1/pods', `Bearer ${header}.${payload}.${'A'.repeat(43)}`),
      await raw('/tenants/nap/api/v1/pods', `Bearer ${doze}`),
    ];
    for (const a of attempts) expect(a.status, a.text).toBe(401);
    // A valid token of nap, but a path for nothing nap has: refused before any wake is asked.
    expect((await raw('/tenants/nap/api/v1/namespaces/a%2Fb/pods', `Bearer ${nap}`)).status).toBe(400);
    await new Promise((r) => setTimeout(r, 2_000));
    const t = await tenantObject('nap');
    expect(t.spec.asleep).toBe(true);
    expect(t.status?.phase).toBe('Sleeping');
    expect(processesOf('nap')).toEqual([]);
  });

  it('the next kubectl request wakes it and is answered', async () => {
    const begin = Date.now();
    const out = ok(await as('nap', ['get', 'deployments', 'web', '-o', 'jsonpath={.spec.replicas}']));
    expect(out).toBe('1');
    expect(Date.now() - begin).toBeLessThan(30_000);
    expect((await listed('nap'))?.status).toBe('Ready');
    expect(processesOf('nap').length).toBeGreaterThan(0);
    // Host changes while it slept are caught up: its pod is there and Running in the tenant.
    await eventually(async () => (ok(await as('nap', ['get', 'pods', '-l', 'app=web', '-o', 'jsonpath={.items[*].status.phase}'])) === 'Running' ? true : undefined), 30_000, "nap's pod Running");
  });

  it('a watch started while it sleeps waits for the wake and then sees changes', async () => {
    await sleepNow('nap');
    const watch = spawn(kubectlPath(), ['--kubeconfig', kubeconfigs.nap!, 'get', 'pods', '-l', 'app=web', '--watch', '--no-headers', '-o', 'custom-columns=NAME:.metadata.name'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let seen = '';
    let errors = '';
    watch.stdout.on('data', (d: Buffer) => (seen += d.toString()));
    watch.stderr.on('data', (d: Buffer) => (errors += d.toString()));
    try {
      const names = () => new Set(seen.split('\n').map((l) => l.trim()).filter(Boolean));
      await eventually(async () => (names().size === 1 ? true : undefined), 60_000, `the watch's first pod (stderr: ${errors})`);
      ok(await as('nap', ['scale', 'deployment', 'web', '--replicas=2']));
      await eventually(async () => (names().size === 2 ? true : undefined), 60_000, `the watch to see the second pod (stderr: ${errors})`);
    } finally {
      watch.kill();
    }
    expect(errors).toBe('');
  });

  it('kubectl exec into a pod of a sleeping tenant wakes it and runs', async () => {
    await sleepNow('nap');
    const pod = ok(await host(['-n', 'kplex-nap', 'get', 'pods', '-l', 'kplex.dev/tenant=nap', '-o', 'jsonpath={.items[0].metadata.annotations.kplex\\.dev/name}']));
    expect(pod).toMatch(/^web-/);
    expect(ok(await as('nap', ['exec', pod, '--', 'echo', 'awake'])).trim()).toBe('awake');
  });

  it('sleep.afterInactivity puts an idle tenant to sleep by itself; workloads stop removes its pods and a wake brings them back', async () => {
    ok(await as('doze', ['apply', '-f', '-'], deployment(1)));
    // Requests keep it awake while the pod starts; each one also wakes it if it fell asleep meanwhile.
    await eventually(async () => (ok(await as('doze', ['get', 'pods', '-l', 'app=web', '-o', 'jsonpath={.items[*].status.phase}'])) === 'Running' ? true : undefined), 60_000, "doze's pod Running");
    expect((await hostPods('doze')).length).toBe(1);
    // Busy for longer than afterInactivity (5s): it stays awake.
    for (let i = 0; i < 8; i++) {
      ok(await as('doze', ['get', 'namespaces']));
      await new Promise((r) => setTimeout(r, 1_000));
    }
    expect((await tenantObject('doze')).status?.phase).toBe('Ready');
    // Idle: asleep within afterInactivity and the gateway's activity interval, with no pods on the host.
    await eventually(async () => ((await listed('doze'))?.status === 'Sleeping' ? true : undefined), 30_000, 'doze asleep by itself');
    expect(processesOf('doze')).toEqual([]);
    await eventually(async () => ((await hostPods('doze')).length === 0 ? true : undefined), 30_000, "doze's host pods removed");
    // A request wakes it; the syncer makes the pod's twin again from the tenant's pod.
    expect(ok(await as('doze', ['get', 'deployments', 'web', '-o', 'jsonpath={.metadata.name}']))).toBe('web');
    await eventually(async () => ((await hostPods('doze')).length === 1 ? true : undefined), 60_000, "doze's pod back on the host");
  });

  it('kplex wake wakes it without a request, and tells about names it does not know', async () => {
    await sleepNow('nap');
    const woken = await kplex(['wake', 'nap', '--context', 'kplex-host'], shared.env);
    expect(woken.code, woken.stderr).toBe(0);
    expect(woken.stdout).toContain('tenant nap is awake');
    expect((await listed('nap'))?.status).toBe('Ready');
    const missing = await kplex(['sleep', 'no-such-tenant', '--context', 'kplex-host'], shared.env);
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim()).toBe('kplex: tenant "no-such-tenant" not found');
  });
});
