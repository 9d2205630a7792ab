import { beforeAll, describe, expect, it } from 'vitest';
import { eventually, kubectl, useSharedHost, type Run } from './helpers.js';

/**
 * NetworkPolicies enforced with packets on the embedded cluster's real node: isolated tenants cannot
 * open connections to each other's pods or Services, their own pods and the cluster DNS stay reachable,
 * and a tenant's own NetworkPolicies are mirrored and enforced, scoped to the tenant.
 */
describe('network policies on the real node', () => {
  /** Two isolated tenants and a plain one, all with their NetworkPolicies mirrored. */
  const TENANTS = { a: 'iso-a', b: 'iso-b', open: 'open' } as const;
  type Key = keyof typeof TENANTS;
  const shared = useSharedHost('netpol', Object.values(TENANTS));
  const kubeconfigs = {} as Record<Key, string>;
  const tenant = (t: Key, args: string[], input?: string, timeoutMs?: number) => kubectl(kubeconfigs[t], args, { input, timeoutMs });
  const ok = (r: Run): string => {
    expect(r.code, r.stderr).toBe(0);
    return r.stdout;
  };
  /** Where each tenant's nginx answers: its pod IP and its Service's ClusterIP. */
  const web = {} as Record<Key, { pod: string; service: string }>;

  /**
   * Whether the tenant's client pod gets nginx's page from `ip`. A blocked connection is dropped, so a
   * timeout ends the attempt (busybox's own `wget -T` crashes in Debian's build: `timeout` instead).
   */
  const reaches = async (from: Key, ip: string): Promise<boolean> => {
    const r = await tenant(from, ['exec', 'client', '--', 'timeout', '3', 'wget', '-q', '-O', '-', `http://${ip}/`], undefined, 20_000);
    return r.code === 0 && r.stdout.includes('Welcome to nginx!');
  };
  /** Waits until `from` reaches (or no longer reaches) `ip`: the agent applies a policy change within seconds. */
  const settles = (from: Key, ip: string, want: boolean) =>
    eventually(async () => ((await reaches(from, ip)) === want ? true : undefined), 30_000, `${from} ${want ? 'reaching' : 'blocked from'} ${ip}`);

  beforeAll(async () => {
    expect(ok(await kubectl(shared.hostKubeconfig, ['get', 'node', 'kplex-real-0', '-o', 'name'])).trim()).toBe('node/kplex-real-0');
    await Promise.all((Object.entries(TENANTS) as [Key, string][]).map(async ([key, name]) => {
      kubeconfigs[key] = await shared.createTenant(name, { isolate: key !== 'open', sync: { networkPolicies: { enabled: true } } });
    }));
    for (const key of Object.keys(TENANTS) as Key[]) {
      ok(await tenant(key, ['create', 'deployment', 'web', '--image=nginx', '--port=80']));
      ok(await tenant(key, ['expose', 'deployment', 'web', '--port=80']));
      // sleep as PID 1 ignores SIGTERM: a short grace period keeps the tenants' deletion from waiting 30 s for it.
      ok(await tenant(key, ['run', 'client', '--image=busybox', `--overrides=${JSON.stringify({ spec: { terminationGracePeriodSeconds: 1 } })}`, '--', 'sleep', '3600']));
    }
    for (const key of Object.keys(TENANTS) as Key[]) {
      ok(await tenant(key, ['rollout', 'status', 'deployment/web', '--timeout=120s'], undefined, 130_000));
      ok(await tenant(key, ['wait', '--for=condition=Ready', 'pod/client', '--timeout=120s'], undefined, 130_000));
      web[key] = {
        pod: ok(await tenant(key, ['get', 'pods', '-l', 'app=web', '-o', 'jsonpath={.items[0].status.podIP}'])),
        service: ok(await tenant(key, ['get', 'service', 'web', '-o', 'jsonpath={.spec.clusterIP}'])),
      };
    }
  }, 600_000);

  it('pods of a tenant reach each other by pod IP and Service IP, and resolve names through the cluster DNS', async () => {
    for (const key of Object.keys(TENANTS) as Key[]) {
      expect(await reaches(key, web[key].pod), `${key} to its own pod`).toBe(true);
      expect(await reaches(key, web[key].service), `${key} to its own Service`).toBe(true);
      // The tenant's own DNS answers: kubernetes.default is its API server's Service address (pod-access.test.ts).
      const dns = await tenant(key, ['exec', 'client', '--', 'timeout', '5', 'nslookup', 'kubernetes.default.svc.cluster.local']);
      const own = ok(await kubectl(shared.hostKubeconfig, ['get', 'tenant', TENANTS[key], '-o', 'jsonpath={.status.podAccess.serviceIP}']));
      expect(own).toMatch(/^10\.96\./);
      expect(ok(dns)).toMatch(new RegExp(`Name:\\s+kubernetes\\.default\\.svc\\.cluster\\.local\\nAddress:\\s+${own.replace(/\./g, '\\.')}\\b`));
    }
  });

  it('an isolated tenant cannot open a connection to another tenant’s pods or Services, nor they to it', async () => {
    // All at once: each blocked attempt lasts until its timeout.
    const attempts = ([['a', 'b'], ['b', 'a'], ['open', 'a'], ['open', 'b']] as [Key, Key][]).flatMap(([from, to]) => [
      { from, to: web[to].pod, what: `${from} to ${to}'s pod` },
      { from, to: web[to].service, what: `${from} to ${to}'s Service` },
    ]);
    const reached = await Promise.all(attempts.map((a) => reaches(a.from, a.to)));
    attempts.forEach((a, i) => expect(reached[i], a.what).toBe(false));
  });

  const policy = (name: string, spec: unknown) => JSON.stringify({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name }, spec });

  it('a tenant NetworkPolicy is mirrored and enforced: default-deny ingress stops a wget that worked, deleting it lets it through', async () => {
    expect(await reaches('open', web.open.service)).toBe(true);
    ok(await tenant('open', ['apply', '-f', '-'], policy('deny-in', { podSelector: {}, policyTypes: ['Ingress'] })));
    await settles('open', web.open.service, false);
    expect(await reaches('open', web.open.pod)).toBe(false);
    expect(await reaches('a', web.open.pod)).toBe(false);
    ok(await tenant('open', ['delete', 'networkpolicy', 'deny-in']));
    await settles('open', web.open.service, true);
  });

  it('an isolated tenant’s egress policy is enforced; its ingress policies add to what the isolation lets in', async () => {
    ok(await tenant('a', ['apply', '-f', '-'], policy('deny-out', { podSelector: { matchLabels: { run: 'client' } }, policyTypes: ['Egress'] })));
    await settles('a', web.a.service, false);
    expect(await reaches('a', web.a.pod)).toBe(false);
    ok(await tenant('a', ['delete', 'networkpolicy', 'deny-out']));
    await settles('a', web.a.service, true);
    // NetworkPolicies add up: kplex-isolate lets in every pod of the tenant, whatever the tenant's own say.
    ok(await tenant('a', ['apply', '-f', '-'], policy('deny-in', { podSelector: {}, policyTypes: ['Ingress'] })));
    await new Promise((r) => setTimeout(r, 5_000));
    expect(await reaches('a', web.a.service)).toBe(true);
    expect(await reaches('b', web.a.service)).toBe(false);
    ok(await tenant('a', ['delete', 'networkpolicy', 'deny-in']));
  });

  describe('attacks', () => {
    /** Lets into the tenant's nginx only what `from` names. */
    const allowOnly = (from: unknown[]) => policy('web-from', { podSelector: { matchLabels: { app: 'web' } }, policyTypes: ['Ingress'], ingress: [{ from }] });

    it('a plain tenant’s policy naming every namespace, or another tenant’s host namespace, lets in its own pods only', async () => {
      expect(await reaches('a', web.open.pod)).toBe(true);
      const peers = [
        { namespaceSelector: {} },
        { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kplex-iso-a' } } },
        { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } }, podSelector: {} },
      ];
      ok(await tenant('open', ['apply', '-f', '-'], allowOnly(peers)));
      await settles('a', web.open.pod, false);
      expect(await reaches('a', web.open.service)).toBe(false);
      expect(await reaches('open', web.open.service)).toBe(true);
      ok(await tenant('open', ['delete', 'networkpolicy', 'web-from']));
    });

    it('an isolated tenant’s policy naming another tenant’s namespace does not open it to that tenant', async () => {
      const peers = [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kplex-iso-b' } } }, { namespaceSelector: {}, podSelector: {} }];
      ok(await tenant('a', ['apply', '-f', '-'], allowOnly(peers)));
      // The policy is in force once it is mirrored: give the agent the time a change takes.
      await settles('a', web.a.pod, true);
      await new Promise((r) => setTimeout(r, 5_000));
      expect(await reaches('b', web.a.pod)).toBe(false);
      expect(await reaches('b', web.a.service)).toBe(false);
      expect(await reaches('open', web.a.pod)).toBe(false);
      ok(await tenant('a', ['delete', 'networkpolicy', 'web-from']));
    });
  });
});
