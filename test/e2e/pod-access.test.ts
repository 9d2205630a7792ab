import { beforeAll, describe, expect, it } from 'vitest';
import { K8S_VERSION } from '../../src/controlplane/binaries.js';
import { tokenSecretName } from '../../src/sync/pod-access.js';
import { Translator } from '../../src/sync/translate.js';
import { eventually, kubectl, useSharedHost, type Run } from './helpers.js';

/**
 * What a tenant's pods get, on a real node, as in a cluster of their own: the tenant's DNS (its names,
 * and nobody else's unless its values fall back to the host), and its API at kubernetes.default.svc
 * with ServiceAccount tokens the tenant issued, which are worth nothing anywhere else.
 */
describe("tenant pods' DNS and API access", () => {
  const [alpha, beta, gamma] = ['dns-alpha', 'dns-beta', 'dns-gamma'];
  const shared = useSharedHost('pod-access', [alpha, beta, gamma]);
  const kubeconfigs = new Map<string, string>();
  const host = (args: string[]) => kubectl(shared.hostKubeconfig, args);
  const as = (tenant: string, args: string[], input?: string) => kubectl(kubeconfigs.get(tenant)!, args, { input, timeoutMs: 90_000 });
  const ok = (r: Run): string => {
    expect(r.code, r.stderr).toBe(0);
    return r.stdout.trim();
  };
  /** Runs a shell command in a tenant pod. */
  const inPod = (tenant: string, pod: string, cmd: string) => as(tenant, ['exec', pod, '--', 'sh', '-c', cmd]);
  /**
   * The addresses busybox nslookup prints for a name (after its "Name:" line; the server's own comes
   * before), none when it does not resolve. Its exit code is no use: it fails when any search domain
   * does, even with an answer.
   */
  const lookup = async (tenant: string, name: string): Promise<string[]> => {
    const r = await inPod(tenant, 'client', `nslookup ${name}`);
    return [...r.stdout.split(/^Name:.*$/m).slice(1).join('\n').matchAll(/Address(?: \d+)?:\s+([0-9.]+)/g)].map((m) => m[1]!);
  };
  const podAccessIP = async (tenant: string) => ok(await host(['get', 'tenant', tenant, '-o', 'jsonpath={.status.podAccess.serviceIP}']));
  const running = (tenant: string, pod: string) =>
    eventually(async () => ((await as(tenant, ['get', 'pod', pod, '-o', 'jsonpath={.status.phase}'])).stdout === 'Running' ? true : undefined), 120_000, `${tenant}/${pod} Running`);

  const client = `apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  terminationGracePeriodSeconds: 1
  containers: [{name: c, image: busybox, command: [sleep, '3600']}]
`;

  beforeAll(async () => {
    const values: [string, Record<string, unknown> | undefined][] = [[alpha, undefined], [beta, undefined], [gamma, { sync: { dns: { fallbackToHost: true } } }]];
    await Promise.all(values.map(async ([tenant, v]) => {
      kubeconfigs.set(tenant, await shared.createTenant(tenant, v));
      ok(await as(tenant, ['apply', '-f', '-'], client));
    }));
    ok(await as(alpha, ['create', 'deployment', 'web', '--image=nginx']));
    ok(await as(alpha, ['expose', 'deployment', 'web', '--port=80']));
    ok(await as(beta, ['create', 'deployment', 'other', '--image=nginx']));
    ok(await as(beta, ['expose', 'deployment', 'other', '--port=80']));
    ok(await as(alpha, ['apply', '-f', '-'], `apiVersion: v1
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
    spec: {terminationGracePeriodSeconds: 1, containers: [{name: db, image: busybox, command: [sleep, '3600']}]}
`));
    for (const tenant of [alpha, beta, gamma]) await running(tenant, 'client');
  });

  it("puts the tenant's DNS server and search path in the pod's resolv.conf", async () => {
    const resolv = ok(await inPod(alpha, 'client', 'cat /etc/resolv.conf'));
    expect(resolv).toContain(`nameserver ${await podAccessIP(alpha)}`);
    expect(resolv).toMatch(/^search default\.svc\.cluster\.local svc\.cluster\.local cluster\.local$/m);
    expect(resolv).toMatch(/^options ndots:5$/m);
  });

  // busybox's own `wget -T` crashes in Debian's build: `timeout` instead.
  it("resolves the tenant's Services, headless Services, StatefulSet pods and kubernetes.default", async () => {
    const webIP = ok(await as(alpha, ['get', 'svc', 'web', '-o', 'jsonpath={.spec.clusterIP}']));
    // busybox's nslookup applies the search path to names without a dot only; its wget (the C library's
    // resolver, ndots:5) to every name, as applications do.
    for (const name of ['web', 'web.default.svc.cluster.local']) expect(await lookup(alpha, name), name).toEqual([webIP]);
    for (const name of ['web.default', 'web.default.svc']) expect(ok(await inPod(alpha, 'client', `timeout 5 wget -qO- http://${name}`)), name).toContain('Welcome to nginx');
    await running(alpha, 'db-0');
    const dbIP = ok(await as(alpha, ['get', 'pod', 'db-0', '-o', 'jsonpath={.status.podIP}']));
    expect(await eventually(async () => ((await lookup(alpha, 'db-0.db.default.svc.cluster.local')).length ? lookup(alpha, 'db-0.db.default.svc.cluster.local') : undefined), 30_000, 'db-0 in DNS')).toEqual([dbIP]);
    expect(await lookup(alpha, 'db')).toEqual([dbIP]);
    expect(ok(await as(alpha, ['exec', 'db-0', '--', 'hostname', '-f']))).toBe('db-0.db.default.svc.cluster.local');
    expect(await lookup(alpha, 'kubernetes.default.svc.cluster.local')).toEqual([await podAccessIP(alpha)]);
    await eventually(async () => ((await inPod(alpha, 'client', 'timeout 5 wget -qO- http://web')).stdout.includes('Welcome to nginx') ? true : undefined), 60_000, 'nginx through the Service by name');
  });

  it("does not resolve other tenants' names or the host's, unless the values fall back to the host", async () => {
    const otherOnHost = ok(await host(['-n', `kplex-${beta}`, 'get', 'svc', '-l', `kplex.dev/tenant=${beta}`, '-o', 'jsonpath={.items[?(@.metadata.annotations.kplex\\.dev/name=="other")].metadata.name}']));
    expect(otherOnHost).toBe(`other-x-default-x-${beta}`);
    for (const name of ['other', 'other.default.svc.cluster.local', `${otherOnHost}.kplex-${beta}.svc.cluster.local`, 'kube-dns.kube-system.svc.cluster.local']) {
      expect(await lookup(alpha, name), name).toEqual([]);
    }
    // gamma falls back: what it lacks, the host's DNS answers; what it has, it answers itself.
    expect(await lookup(gamma, 'kube-dns.kube-system.svc.cluster.local')).toEqual(['10.96.0.10']);
    expect(await lookup(gamma, 'kubernetes.default.svc.cluster.local')).toEqual([await podAccessIP(gamma)]);
  });

  it("lets a pod use its own tenant's API with its ServiceAccount's RBAC, through in-cluster config", async () => {
    ok(await as(alpha, ['apply', '-f', '-'], `apiVersion: v1
kind: ServiceAccount
metadata: {name: reader}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader}
rules: [{apiGroups: [''], resources: [pods], verbs: [get, list]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}
subjects: [{kind: ServiceAccount, name: reader, namespace: default}]
---
apiVersion: v1
kind: Pod
metadata: {name: kc}
spec:
  serviceAccountName: reader
  terminationGracePeriodSeconds: 1
  containers: [{name: kc, image: 'registry.k8s.io/kubectl:${K8S_VERSION}', command: [sleep, '3600']}]
---
apiVersion: v1
kind: Pod
metadata: {name: no-token}
spec:
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  containers: [{name: c, image: busybox, command: [sleep, '3600']}]
`));
    await running(alpha, 'kc');
    const pods = ok(await inPod(alpha, 'kc', 'kubectl get pods -o name'));
    expect(pods.split('\n')).toEqual(expect.arrayContaining(['pod/client', 'pod/kc']));
    const outside = await inPod(alpha, 'kc', 'kubectl get pods -n kube-system');
    expect(outside.code).not.toBe(0);
    expect(outside.stderr).toMatch(/Forbidden.*system:serviceaccount:default:reader.*namespace "kube-system"/);
    const secrets = await inPod(alpha, 'kc', 'kubectl get secrets');
    expect(secrets.stderr).toMatch(/Forbidden/);
    // The token is the tenant's: issued by its API server, for this pod, with the API's audience.
    const token = ok(await inPod(alpha, 'kc', 'cat /var/run/secrets/kubernetes.io/serviceaccount/token'));
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { sub: string; 'kubernetes.io': { pod: { name: string } } };
    expect(claims.sub).toBe('system:serviceaccount:default:reader');
    expect(claims['kubernetes.io'].pod.name).toBe('kc');
    await running(alpha, 'no-token');
    expect((await inPod(alpha, 'no-token', 'ls /var/run/secrets/kubernetes.io/serviceaccount')).code).not.toBe(0);
  });

  it("renews a pod's tokens when they are due, and the pod reads the new one", async () => {
    // The token Secret says when it is due; made due now, the syncer (which looks every minute) renews
    // it, and kubelet brings the new token into the running pod.
    const secret = tokenSecretName(new Translator(alpha).name('default', 'kc', 'Pod'));
    const read = async () => ok(await inPod(alpha, 'kc', 'cat /var/run/secrets/kubernetes.io/serviceaccount/token'));
    const before = await read();
    ok(await host(['-n', `kplex-${alpha}`, 'annotate', 'secret', secret, '--overwrite', 'kplex.dev/renew-after=2000-01-01T00:00:00Z']));
    const renewed = await eventually(async () => {
      const now = await read();
      return now !== before ? now : undefined;
    }, 200_000, 'the renewed token in the pod');
    const claims = (t: string) => JSON.parse(Buffer.from(t.split('.')[1]!, 'base64url').toString()) as { iat: number; 'kubernetes.io': { pod: { uid: string } } };
    expect(claims(renewed).iat).toBeGreaterThan(claims(before).iat);
    expect(claims(renewed)['kubernetes.io'].pod.uid).toBe(claims(before)['kubernetes.io'].pod.uid);
    expect(ok(await inPod(alpha, 'kc', 'kubectl get pod kc -o name'))).toBe('pod/kc');
    const due = Date.parse(ok(await host(['-n', `kplex-${alpha}`, 'get', 'secret', secret, '-o', "jsonpath={.metadata.annotations['kplex\\.dev/renew-after']}"])));
    expect(due).toBeGreaterThan(Date.now());
  }, 240_000);

  it('makes a tenant token worthless on the host, on the gateway, and once its ServiceAccount is gone', async () => {
    const token = ok(await inPod(alpha, 'kc', 'cat /var/run/secrets/kubernetes.io/serviceaccount/token'));
    const hostServer = ok(await host(['config', 'view', '--minify', '-o', 'jsonpath={.clusters[0].cluster.server}']));
    const withToken = (server: string) => kubectl('/dev/null', ['--server', server, '--token', token, '--insecure-skip-tls-verify', 'get', 'pods']);
    const onHost = await withToken(hostServer);
    expect(onHost.code).not.toBe(0);
    expect(onHost.stderr).toMatch(/Unauthorized|must be logged in/);
    for (const tenant of [alpha, beta]) {
      const server = ok(await kubectl(kubeconfigs.get(tenant)!, ['config', 'view', '--minify', '-o', 'jsonpath={.clusters[0].cluster.server}']));
      const r = await withToken(server);
      expect(r.code, `${tenant} through the gateway`).not.toBe(0);
      expect(r.stderr).toMatch(/Unauthorized|must be logged in/);
    }
    // Straight to beta's API server, which pods can reach too: it did not issue it.
    const betaIP = await podAccessIP(beta);
    const direct = await inPod(alpha, 'kc', `kubectl --kubeconfig=/dev/null --server=https://${betaIP} --token="$(cat /var/run/secrets/kubernetes.io/serviceaccount/token)" --insecure-skip-tls-verify get pods`);
    expect(direct.stderr).toMatch(/Unauthorized|must be logged in/);
    ok(await as(alpha, ['delete', 'serviceaccount', 'reader']));
    await eventually(async () => {
      const r = await inPod(alpha, 'kc', 'kubectl get pods');
      return r.code !== 0 && /Unauthorized|must be logged in/.test(r.stderr) ? true : undefined;
    }, 30_000, 'the token refused once its ServiceAccount is deleted');
  });
});
