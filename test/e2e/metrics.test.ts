import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/controlplane/ports.js';
import { eventually, isolatedEnv, kplex, kubectl, tmpDir, type Run } from './helpers.js';

/** A deployment whose pod asks for CPU (what an HPA on CPU utilization divides by) and uses next to none. */
const deployment = (name: string) =>
  JSON.stringify({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: 'main', image: 'busybox', command: ['sleep', '3600'], resources: { requests: { cpu: '50m', memory: '16Mi' } } }] },
      },
    },
  });

/**
 * `kubectl top` and CPU autoscaling in tenants, from the host's metrics-server scraping the real node:
 * each tenant sees its own pods under its own names, never another tenant's.
 */
describe('resource metrics on the real node', () => {
  const dir = tmpDir('metrics');
  const dataDir = path.join(dir, 'data');
  const env = isolatedEnv(dir);
  const TENANTS = { a: 'top-a', b: 'top-b' } as const;
  /** A tenant whose control plane is host pods (provider cluster): its API server reaches the adapter from a pod. */
  const IN_PODS = 'top-pods';
  type Key = keyof typeof TENANTS | 'pods';
  const kc = (t: Key) => path.join(dir, `${t}.kubeconfig`);
  const tenant = (t: Key, args: string[], input?: string) => kubectl(kc(t), args, { input });
  const host = (args: string[]) => kubectl(env.KUBECONFIG!, ['--context', 'kplex-host', ...args]);
  const ok = (r: Run): string => {
    expect(r.code, r.stderr).toBe(0);
    return r.stdout;
  };
  /** `kubectl top` output once it has a line for `name` (metrics-server answers after a scrape or two). */
  const topShows = (run: () => Promise<Run>, name: string, what: string) =>
    eventually(async () => {
      const r = await run();
      return r.code === 0 && r.stdout.split('\n').some((l) => l.split(/\s+/)[0] === name) ? r.stdout : undefined;
    }, 120_000, what);

  beforeAll(async () => {
    const up = await kplex(['dev', 'up', '--nodes', '1', '--simulated-nodes', '0', '--detach', '--gateway-port', String(await freePort()), '--data-dir', dataDir], env, 300_000);
    expect(up.code, up.stderr + up.stdout).toBe(0);
    expect(up.stdout).not.toContain('no real node');
    for (const [key, name] of Object.entries(TENANTS) as [Key, string][]) {
      const c = await kplex(['create', name, '--connect=false', '--context', 'kplex-host'], env);
      expect(c.code, c.stderr).toBe(0);
      writeFileSync(kc(key), (await kplex(['connect', name, '--print', '--context', 'kplex-host'], env)).stdout);
      ok(await tenant(key, ['apply', '-f', '-'], deployment(`work-${key}`)));
    }
    const values = path.join(dir, 'in-pods.yaml');
    writeFileSync(values, 'controlPlane: {provider: cluster}\n');
    const c = await kplex(['create', IN_PODS, '--connect=false', '--context', 'kplex-host', '-f', values], env);
    expect(c.code, c.stderr).toBe(0);
    writeFileSync(kc('pods'), (await kplex(['connect', IN_PODS, '--print', '--context', 'kplex-host'], env)).stdout);
    ok(await tenant('pods', ['apply', '-f', '-'], deployment('work-pods')));
    for (const key of [...Object.keys(TENANTS), 'pods'] as Key[]) ok(await kubectl(kc(key), ['rollout', 'status', `deployment/work-${key}`, '--timeout=120s'], { timeoutMs: 130_000 }));
  }, 600_000);

  afterAll(async () => {
    await kplex(['dev', 'down', '--data-dir', dataDir], env);
  });

  it('the host serves metrics.k8s.io: kubectl top node and top pod in a tenant’s host namespace', async () => {
    await topShows(() => host(['top', 'node']), 'kplex-real-0', 'kubectl top node on the host');
    const twin = ok(await host(['get', 'pods', '-n', `kplex-${TENANTS.a}`, '-o', 'jsonpath={.items[0].metadata.name}']));
    await topShows(() => host(['top', 'pod', '-n', `kplex-${TENANTS.a}`]), twin, 'kubectl top pod on the host');
  });

  it('kubectl top pod in a tenant lists its own pod under its own name, and none of another tenant’s', async () => {
    for (const [key, other] of [['a', 'b'], ['b', 'a']] as [Key, Key][]) {
      const pod = ok(await tenant(key, ['get', 'pods', '-l', `app=work-${key}`, '-o', 'jsonpath={.items[0].metadata.name}']));
      const top = await topShows(() => tenant(key, ['top', 'pod']), pod, `kubectl top pod in ${key}`);
      expect(top).not.toContain(`work-${other}`);
      expect(top).not.toContain('-x-');
      const all = ok(await tenant(key, ['top', 'pod', '-A']));
      expect(all).toContain(pod);
      expect(all).not.toContain(`work-${other}`);
      // By name and by label selector, in the tenant's terms.
      expect(ok(await tenant(key, ['top', 'pod', pod]))).toContain(pod);
      expect(ok(await tenant(key, ['top', 'pod', '-l', `app=work-${key}`]))).toContain(pod);
      const otherPod = ok(await tenant(other, ['get', 'pods', '-l', `app=work-${other}`, '-o', 'jsonpath={.items[0].metadata.name}']));
      const byName = await tenant(key, ['top', 'pod', otherPod]);
      expect(byName.code).not.toBe(0);
      expect(byName.stderr).toContain('not found');
    }
  });

  it('kubectl top pod in a tenant whose control plane is host pods (provider cluster) lists its own pod', async () => {
    const pod = ok(await tenant('pods', ['get', 'pods', '-l', 'app=work-pods', '-o', 'jsonpath={.items[0].metadata.name}']));
    const top = await topShows(() => tenant('pods', ['top', 'pod']), pod, 'kubectl top pod in the tenant of provider cluster');
    expect(top).not.toContain('work-a');
    expect(top).not.toContain('-x-');
  });

  it('kubectl top node in a tenant shows the real node its pod runs on', async () => {
    await topShows(() => tenant('a', ['top', 'node']), 'kplex-real-0', 'kubectl top node in a tenant');
  });

  it('an HPA on CPU in a tenant reads its pods’ current utilization', async () => {
    ok(await tenant('a', ['autoscale', 'deployment', 'work-a', '--cpu-percent=50', '--min=1', '--max=2']));
    const utilization = await eventually(async () => {
      const r = await tenant('a', ['get', 'hpa', 'work-a', '-o', 'jsonpath={.status.currentMetrics[0].resource.current.averageUtilization}']);
      return r.code === 0 && /^\d+$/.test(r.stdout) ? Number(r.stdout) : undefined;
    }, 120_000, 'the HPA to read CPU utilization');
    expect(utilization).toBeGreaterThanOrEqual(0);
    expect(ok(await tenant('a', ['get', 'hpa', 'work-a']))).toMatch(/cpu: \d+%\/50%|\d+%\/50%/);
  });

  describe('attacks', () => {
    const raw = (key: Key, url: string) => tenant(key, ['get', '--raw', url]);

    it('crafted namespaces and names reach nothing outside the tenant: another tenant’s host namespace, traversal, encoded slashes', async () => {
      for (const url of [
        `/apis/metrics.k8s.io/v1beta1/namespaces/kplex-${TENANTS.b}/pods`,
        '/apis/metrics.k8s.io/v1beta1/namespaces/kube-system/pods',
      ]) {
        const r = await raw('a', url);
        expect(r.code, url).toBe(0);
        expect(JSON.parse(r.stdout).items, url).toEqual([]);
      }
      for (const url of [
        `/apis/metrics.k8s.io/v1beta1/namespaces/default%2F..%2F..%2Fkplex-${TENANTS.b}/pods`,
        `/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/..%2F..%2F..%2Fnamespaces%2Fkplex-${TENANTS.b}%2Fpods`,
      ]) {
        const r = await raw('a', url);
        expect(r.code, url).not.toBe(0);
        expect(r.stdout + r.stderr, url).not.toContain('work-b');
      }
    });

    it('a crafted label selector selects among the tenant’s own pods only', async () => {
      const r = await raw('a', `/apis/metrics.k8s.io/v1beta1/pods?labelSelector=${encodeURIComponent(`app in (work-a,work-b),kplex.dev/tenant!=x`)}`);
      expect(r.code, r.stderr).toBe(0);
      const names = (JSON.parse(r.stdout) as { items: { metadata: { name: string; namespace: string } }[] }).items.map((i) => i.metadata.name);
      expect(names.some((n) => n.startsWith('work-a'))).toBe(true);
      expect(names.some((n) => n.startsWith('work-b'))).toBe(false);
    });

    it('a tenant admin cannot register an aggregated API of its own, nor re-register metrics.k8s.io', async () => {
      const apiService = (name: string, group: string) => JSON.stringify({
        apiVersion: 'apiregistration.k8s.io/v1',
        kind: 'APIService',
        metadata: { name },
        spec: { group, version: 'v1', service: { namespace: 'default', name: 'x', port: 443 }, insecureSkipTLSVerify: true, groupPriorityMinimum: 100, versionPriority: 100 },
      });
      for (const body of [apiService('v1.evil.example.com', 'evil.example.com'), apiService('v1beta1.metrics.k8s.io', 'metrics.k8s.io')]) {
        const r = await tenant('a', ['apply', '-f', '-'], body);
        expect(r.code).not.toBe(0);
        expect(r.stderr).toMatch(/forbidden/i);
      }
      const del = await tenant('a', ['delete', 'apiservice', 'v1beta1.metrics.k8s.io']);
      expect(del.stderr).toMatch(/forbidden/i);
    });

    it('calling an adapter directly at the endpoint its tenant can read, without the client certificate of that tenant’s API server, is refused at the TLS handshake', async () => {
      const slice = ['-n', 'kube-system', 'get', 'endpointslice', 'kplex-metrics', '-o', 'jsonpath={.endpoints[0].addresses[0]} {.ports[0].port}'];
      // What a pod of any tenant could send: no client certificate, the server's own not checked.
      const anyone = new Agent({ connect: { rejectUnauthorized: false } });
      try {
        for (const key of ['a', 'pods'] as Key[]) {
          const [address, port] = ok(await tenant(key, slice)).split(' ');
          const answer = await request(`https://${address}:${port}/apis/metrics.k8s.io/v1beta1/pods`, { dispatcher: anyone })
            .then((r) => `answered ${r.statusCode}`, (err: Error & { code?: string }) => `${err.code ?? ''} ${err.message}`);
          // Reached, and turned away by TLS: not refused for want of a listener.
          expect(answer, `${key}: ${address}:${port}`).not.toMatch(/^answered|ECONNREFUSED|EHOSTUNREACH|ETIMEDOUT/);
          expect(answer, `${key}: ${address}:${port}`).toMatch(/certificate|SSL|TLS|ECONNRESET|other side closed/i);
        }
      } finally {
        await anyone.close();
      }
    });

    it('pointing its metrics endpoint at another tenant’s adapter gets a tenant nothing: that adapter refuses its API server', async () => {
      const slice = ['-n', 'kube-system', 'endpointslice', 'kplex-metrics'];
      const portOf = async (key: Key) => Number(ok(await tenant(key, ['get', ...slice, '-o', 'jsonpath={.ports[0].port}'])));
      const own = await portOf('a');
      const patch = (port: number) => tenant('a', ['patch', ...slice, '--type=json', '-p', JSON.stringify([{ op: 'replace', path: '/ports/0/port', value: port }])]);
      ok(await patch(await portOf('b')));
      try {
        // The aggregator picks the new endpoint within moments; until then it still reaches its own adapter.
        await eventually(async () => {
          const r = await tenant('a', ['top', 'pod', '-A']);
          expect(r.stdout).not.toContain('work-b');
          return r.code !== 0 ? r : undefined;
        }, 60_000, 'the other adapter to refuse tenant a');
        const all = await raw('a', '/apis/metrics.k8s.io/v1beta1/pods');
        expect(all.code).not.toBe(0);
        expect(all.stdout + all.stderr).not.toContain('work-b');
      } finally {
        ok(await patch(own));
      }
    });
  });
});
