import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NODE_LABEL } from '../../src/dev/host-cluster.js';
import { hostLabelKey } from '../../src/sync/names.js';
import { Translator } from '../../src/sync/translate.js';
import { eventually, kubectl, onSimulatedNodes, useSharedHost, type Run } from './helpers.js';

interface Pod {
  metadata: { name: string; annotations?: Record<string, string> };
  spec: { nodeName?: string; hostname?: string; subdomain?: string; priorityClassName?: string; priority?: number };
  status: { phase: string; conditions?: { type: string; status: string; reason?: string }[] };
}

/**
 * Scheduling constraints as in a cluster of one's own, on the three simulated nodes of the shared host
 * (the pods that spread are placed there): two tenants run the same Deployment (same labels) with a
 * required anti-affinity per node, and each gets its own three nodes' worth; StatefulSet pods keep their
 * names under the translated headless Service; a PriorityClass counts only where the host has it.
 */
describe('scheduling constraints of tenant pods on the host', () => {
  const shared = useSharedHost('scheduling', ['alpha', 'beta', 'gamma']);
  const kubeconfigs: Record<string, string> = {};
  const host = (args: string[], input?: string) => kubectl(shared.hostKubeconfig, args, { input });
  const as = (tenant: string, args: string[], input?: string) => kubectl(kubeconfigs[tenant]!, args, { input });
  const json = <T>(r: Run): T => {
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as T;
  };
  const hostPods = async (tenant: string, app: string) =>
    json<{ items: Pod[] }>(await host(['-n', `kplex-${tenant}`, 'get', 'pods', '-l', `kplex.dev/tenant=${tenant},${hostLabelKey('app')}=${app}`, '-o', 'json'])).items;
  const scheduled = (pods: Pod[]) => pods.filter((p) => p.spec.nodeName);

  const spread = (replicas: number) => `apiVersion: apps/v1
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
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - topologyKey: kubernetes.io/hostname
            labelSelector: {matchLabels: {app: web}}
`;

  beforeAll(async () => {
    await Promise.all(['alpha', 'beta'].map(async (tenant) => (kubeconfigs[tenant] = await shared.createTenant(tenant))));
  });

  afterAll(async () => {
    // The host's own class, made below: the cluster outlives this file.
    await host(['delete', 'priorityclass', 'shared-high', '--ignore-not-found']);
  });

  it("spreads each tenant's 3 replicas over 3 nodes by required anti-affinity, counting only its own pods", async () => {
    for (const tenant of ['alpha', 'beta']) {
      const r = await as(tenant, ['apply', '-f', '-'], spread(3));
      expect(r.code, r.stderr).toBe(0);
    }
    for (const tenant of ['alpha', 'beta']) {
      const pods = await eventually(async () => {
        const p = scheduled(await hostPods(tenant, 'web'));
        return p.length === 3 ? p : undefined;
      }, 60_000, `3 scheduled pods of ${tenant}`);
      expect(new Set(pods.map((p) => p.spec.nodeName)).size).toBe(3);
      // As the tenant sees them.
      const nodes = await eventually(async () => {
        const r = await as(tenant, ['get', 'pods', '-l', 'app=web', '-o', 'jsonpath={.items[*].spec.nodeName}']);
        const names = r.stdout.split(' ').filter(Boolean);
        return names.length === 3 ? names : undefined;
      }, 30_000, `${tenant}'s pods bound`);
      expect(new Set(nodes).size).toBe(3);
    }
  });

  it('leaves a 4th replica Pending: no node is free of its own replicas', async () => {
    expect((await as('alpha', ['apply', '-f', '-'], spread(4))).code).toBe(0);
    const pending = await eventually(async () => {
      const p = (await hostPods('alpha', 'web')).find((x) => !x.spec.nodeName && x.status.conditions?.some((c) => c.type === 'PodScheduled' && c.reason === 'Unschedulable'));
      return p;
    }, 60_000, "alpha's unschedulable 4th replica");
    const name = pending.metadata.annotations?.['kplex.dev/name'];
    expect((await as('alpha', ['get', 'pod', name!, '-o', 'jsonpath={.status.phase}'])).stdout).toBe('Pending');
    expect(scheduled(await hostPods('alpha', 'web'))).toHaveLength(3);
    // beta's three stay where they are; alpha's fourth does not take one of their places either.
    expect(scheduled(await hostPods('beta', 'web'))).toHaveLength(3);
  });

  it('spreads by topology constraint over its own pods only', async () => {
    const deployment = (replicas: number, onNode?: string) => `apiVersion: apps/v1
kind: Deployment
metadata: {name: even}
spec:
  replicas: ${replicas}
  selector: {matchLabels: {app: even}}
  template:
    metadata: {labels: {app: even}}
    spec:
      containers: [{name: c, image: nginx}]
      ${onNode ? `nodeSelector: {kubernetes.io/hostname: ${onNode}}` : `nodeSelector: ${JSON.stringify(onSimulatedNodes.nodeSelector)}`}
      tolerations: ${JSON.stringify(onSimulatedNodes.tolerations)}
      topologySpreadConstraints:
      - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {app: even}}, matchLabelKeys: [pod-template-hash]}
`;
    // beta piles 4 pods labelled the same onto one node; were they counted, alpha could not put two there.
    const node0 = (await host(['get', 'nodes', '-l', NODE_LABEL, '-o', 'jsonpath={.items[0].metadata.name}'])).stdout;
    expect((await as('beta', ['apply', '-f', '-'], deployment(4, node0))).code).toBe(0);
    await eventually(async () => (scheduled(await hostPods('beta', 'even')).length === 4 ? true : undefined), 60_000, "beta's 4 pods");
    expect((await as('alpha', ['apply', '-f', '-'], deployment(6))).code).toBe(0);
    const pods = await eventually(async () => {
      const p = scheduled(await hostPods('alpha', 'even'));
      return p.length === 6 ? p : undefined;
    }, 60_000, "alpha's 6 spread pods");
    const perNode = new Map<string, number>();
    for (const p of pods) perNode.set(p.spec.nodeName!, (perNode.get(p.spec.nodeName!) ?? 0) + 1);
    expect([...perNode.values()]).toEqual([2, 2, 2]);
  });

  it("names a StatefulSet pod as in the tenant, under the translated headless Service, on the host's Endpoints", async () => {
    const manifest = `apiVersion: v1
kind: Service
metadata: {name: db}
spec: {clusterIP: None, selector: {app: db}, ports: [{port: 5432}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 1
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: nginx}]}
`;
    expect((await as('alpha', ['apply', '-f', '-'], manifest)).code).toBe(0);
    const t = new Translator('alpha');
    const svc = t.name('default', 'db', 'Service');
    const twin = await eventually(async () => {
      const r = await host(['-n', 'kplex-alpha', 'get', 'pod', t.name('default', 'db-0', 'Pod'), '-o', 'json']);
      return r.code === 0 ? (JSON.parse(r.stdout) as Pod) : undefined;
    }, 60_000, 'the twin of db-0');
    expect(twin.spec.hostname).toBe('db-0');
    expect(twin.spec.subdomain).toBe(svc);
    // The host's Endpoints name the pod by its hostname: what its DNS serves as db-0.<svc>.kplex-alpha.svc.
    const hostname = await eventually(async () => {
      const r = await host(['-n', 'kplex-alpha', 'get', 'endpoints', svc, '-o', 'jsonpath={.subsets[0].addresses[0].hostname}']);
      return r.stdout || undefined;
    }, 60_000, "the host Endpoints' hostname");
    expect(hostname).toBe('db-0');
  });

  it('honours a PriorityClass the host has, and leaves out one it lacks, saying so', async () => {
    const priorityClass = (name: string, value: number) => `apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: ${name}}\nvalue: ${value}\n`;
    expect((await host(['apply', '-f', '-'], priorityClass('shared-high', 1000))).code).toBe(0);
    expect((await as('alpha', ['apply', '-f', '-'], priorityClass('shared-high', 5) + '---\n' + priorityClass('tenant-only', 7))).code).toBe(0);
    const pod = (name: string, cls: string) => `apiVersion: v1\nkind: Pod\nmetadata: {name: ${name}}\nspec: {priorityClassName: ${cls}, containers: [{name: c, image: nginx}]}\n`;
    const t = new Translator('alpha');
    const twin = async (name: string) => json<Pod>(await host(['-n', 'kplex-alpha', 'get', 'pod', t.name('default', name, 'Pod'), '-o', 'json']));

    const kept = await as('alpha', ['apply', '-f', '-'], pod('urgent', 'shared-high'));
    expect(kept.code, kept.stderr).toBe(0);
    expect(kept.stderr).not.toContain('left out');
    expect((await twin('urgent')).spec).toMatchObject({ priorityClassName: 'shared-high', priority: 1000 });

    const dropped = await as('alpha', ['apply', '-f', '-'], pod('own-class', 'tenant-only'));
    expect(dropped.code, dropped.stderr).toBe(0);
    expect(dropped.stderr).toContain('Warning: priorityClassName "tenant-only" left out on the host: the host cluster has no PriorityClass of that name');
    const spec = (await twin('own-class')).spec;
    expect(spec.priorityClassName).toBeUndefined();
    expect(spec.priority).toBe(0);
    await eventually(async () => ((await twin('own-class')).spec.nodeName ? true : undefined), 60_000, 'the pod without its class scheduled');
  });

  it("shows the host's PriorityClasses in a tenant that asks for them, read-only", async () => {
    kubeconfigs.gamma = await shared.createTenant('gamma', { sync: { priorityClasses: { enabled: true } } });
    const value = async () => (await as('gamma', ['get', 'priorityclass', 'shared-high', '-o', 'jsonpath={.value}/{.description}'])).stdout;
    // shared-high is the host's, made by the test before.
    expect(await eventually(async () => ((await value()).startsWith('1000/') ? value() : undefined), 30_000, 'the host class in the tenant')).toBe('1000/');
    expect((await as('gamma', ['annotate', 'priorityclass', 'shared-high', 'note=x'])).code).toBe(0);
    expect((await as('gamma', ['patch', 'priorityclass', 'shared-high', '--type=merge', '-p', '{"description":"mine"}'])).code).toBe(0);
    await eventually(async () => ((await value()) === '1000/' ? true : undefined), 30_000, "the tenant's change undone");
    // Its own system classes stay its own API server's; a tenant without the switch sees none of the host's.
    expect((await as('gamma', ['get', 'priorityclass', 'system-node-critical', '-o', 'jsonpath={.metadata.labels}'])).stdout).not.toContain('kplex.dev/host-priority-class');
    expect((await as('beta', ['get', 'priorityclass', 'shared-high'])).stderr).toMatch(/NotFound/);
  });
});
