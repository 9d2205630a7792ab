import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tokenSecretName } from '../../src/sync/pod-access.js';
import { Translator } from '../../src/sync/translate.js';
import { eventually, kubectl, useSharedHost, type Run } from './helpers.js';

/**
 * A tenant user (alpha) who tries to reach past its host namespace with what it mirrors: a pod that
 * mounts the tenant's own admin credential or mints a host token, a Service with external IPs, Endpoints
 * pointing at another tenant's pod, pod affinity that would count another tenant's pods, an Ingress for
 * another tenant's host name.
 */
describe('workload security: what a tenant mirrors stays its own', () => {
  const shared = useSharedHost('workloads', ['alpha', 'beta']);
  const dir = shared.dir;
  const kubeconfigs: Record<string, string> = {};
  const host = (args: string[]) => kubectl(shared.hostKubeconfig, args);
  const as = (tenant: string, args: string[], input?: string) => kubectl(kubeconfigs[tenant]!, args, { input });
  const twin = (tenant: string, kind: string, name: string, ns = 'default') => new Translator(tenant).name(ns, name, kind);
  const json = <T>(r: Run): T => {
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as T;
  };
  /** A host object once it exists, as JSON. */
  const onHost = <T>(tenant: string, resource: string, name: string, what: string) =>
    eventually(async () => {
      const r = await host(['-n', `kplex-${tenant}`, 'get', resource, name, '-o', 'json']);
      return r.code === 0 ? (JSON.parse(r.stdout) as T) : undefined;
    }, 60_000, what);

  beforeAll(async () => {
    await Promise.all(['alpha', 'beta'].map(async (tenant) => (kubeconfigs[tenant] = await shared.createTenant(tenant, { sync: { ingresses: { enabled: true } } }))));
  });

  it("names the translated Secret for a CSI volume's nodePublishSecretRef, and mints no host ServiceAccount token: the tenant issues it", async () => {
    const pod = `apiVersion: v1
kind: Pod
metadata: {name: steal}
spec:
  containers:
  - name: c
    image: busybox
    volumeMounts: [{name: creds, mountPath: /creds}, {name: token, mountPath: /token}]
  volumes:
  - name: creds
    csi: {driver: secrets-store.csi.k8s.io, nodePublishSecretRef: {name: vc-alpha}}
  - name: token
    projected: {sources: [{serviceAccountToken: {path: token, audience: host}}, {downwardAPI: {items: [{path: name, fieldRef: {fieldPath: metadata.name}}]}}]}
`;
    const r = await as('alpha', ['apply', '-f', '-'], pod);
    expect(r.code, r.stderr).toBe(0);
    type Volume = { name: string; csi?: { nodePublishSecretRef?: { name: string } }; projected?: { sources: Record<string, unknown>[] } };
    const h = await onHost<{ spec: { volumes: Volume[] } }>('alpha', 'pod', twin('alpha', 'Pod', 'steal'), 'the host twin of the pod');
    const volumes = new Map(h.spec.volumes.map((v) => [v.name, v]));
    expect(volumes.get('creds')?.csi?.nodePublishSecretRef?.name).toBe(twin('alpha', 'Secret', 'vc-alpha'));
    // No host token: the projection is the pod's own token Secret, which the tenant's API server issued.
    const sources = volumes.get('token')?.projected?.sources ?? [];
    expect(sources.map((s) => Object.keys(s))).toEqual([['secret'], ['downwardAPI']]);
    const tokenSecret = tokenSecretName(twin('alpha', 'Pod', 'steal'));
    expect(sources[0]).toEqual({ secret: { name: tokenSecret, items: [{ key: 'token-0', path: 'token' }] } });
    const issued = await host(['-n', 'kplex-alpha', 'get', 'secret', tokenSecret, '-o', "jsonpath={.data['token-0']}"]);
    const claims = JSON.parse(Buffer.from(Buffer.from(issued.stdout, 'base64').toString().split('.')[1]!, 'base64url').toString()) as { aud: string[]; sub: string };
    expect(claims).toMatchObject({ aud: ['host'], sub: 'system:serviceaccount:default:default' });
    // The tenant has no Secret of that name, so nothing was mirrored under the translated name either;
    // the host's own vc-alpha is not what the pod names.
    expect((await host(['-n', 'kplex-alpha', 'get', 'secret', twin('alpha', 'Secret', 'vc-alpha')])).code).not.toBe(0);
    expect((await host(['-n', 'kplex-alpha', 'get', 'secret', 'vc-alpha', '-o', 'name'])).stdout.trim()).toBe('secret/vc-alpha');
  });

  it('leaves external IPs off the host Service (CVE-2020-8554): none are allowed by default', async () => {
    const svc = 'apiVersion: v1\nkind: Service\nmetadata: {name: ext}\nspec: {ports: [{port: 80}], externalIPs: [203.0.113.10]}\n';
    const r = await as('alpha', ['apply', '-f', '-'], svc);
    expect(r.code, r.stderr).toBe(0);
    expect((await as('alpha', ['get', 'svc', 'ext', '-o', 'jsonpath={.spec.externalIPs}'])).stdout).toContain('203.0.113.10');
    const h = await onHost<{ spec: { clusterIP: string; externalIPs?: string[] } }>('alpha', 'svc', twin('alpha', 'Service', 'ext'), 'the host Service');
    expect(h.spec.clusterIP).toBeTruthy();
    expect(h.spec.externalIPs).toBeUndefined();
  });

  it("keeps another tenant's pod IP and host Service IPs out of selectorless Endpoints; keeps its own pod and the outside", async () => {
    for (const tenant of ['alpha', 'beta']) expect((await as(tenant, ['run', 'web', '--image=nginx'])).code).toBe(0);
    const ipOf = (tenant: string) =>
      eventually(async () => {
        const r = await host(['-n', `kplex-${tenant}`, 'get', 'pod', twin(tenant, 'Pod', 'web'), '-o', 'jsonpath={.status.podIP}']);
        return r.stdout || undefined;
      }, 60_000, `the pod IP of ${tenant}'s web`);
    const [own, victim] = [await ipOf('alpha'), await ipOf('beta')];
    expect(own).not.toBe(victim);
    const hostKubernetes = (await host(['-n', 'default', 'get', 'svc', 'kubernetes', '-o', 'jsonpath={.spec.clusterIP}'])).stdout;

    const manifest = `apiVersion: v1
kind: Service
metadata: {name: db}
spec: {ports: [{port: 5432}]}
---
apiVersion: v1
kind: Endpoints
metadata: {name: db}
subsets:
- addresses: [{ip: ${victim}}, {ip: ${own}}, {ip: 192.0.2.10}, {ip: ${hostKubernetes}}]
  ports: [{port: 5432}]
`;
    const r = await as('alpha', ['apply', '-f', '-'], manifest);
    expect(r.code, r.stderr).toBe(0);
    // Already when kubectl returns (the gateway's mirror), and after the syncer has looked at it too.
    const ips = async () => {
      const ep = json<{ subsets?: { addresses?: { ip: string }[] }[] }>(await host(['-n', 'kplex-alpha', 'get', 'endpoints', twin('alpha', 'Endpoints', 'db'), '-o', 'json']));
      return (ep.subsets ?? []).flatMap((s) => s.addresses ?? []).map((a) => a.ip).sort();
    };
    expect(await ips()).toEqual([own, '192.0.2.10'].sort());
    const message = await eventually(async () => {
      const e = await as('alpha', ['get', 'events', '--field-selector', 'reason=HostRefused,involvedObject.kind=Endpoints', '-o', 'jsonpath={.items[*].message}']);
      return e.stdout || undefined;
    }, 30_000, 'the HostRefused event on the Endpoints');
    expect(message).toContain(victim);
    expect(message).toContain(hostKubernetes);
    expect(message).not.toContain(own);
    expect(await ips()).toEqual([own, '192.0.2.10'].sort());
  });

  it("counts only its own pods in pod (anti-)affinity and topology spread: another tenant's pods and host namespaces are out of reach", async () => {
    const victim = 'apiVersion: v1\nkind: Pod\nmetadata: {name: victim, labels: {role: victim}}\nspec: {containers: [{name: c, image: nginx}]}\n';
    expect((await as('beta', ['apply', '-f', '-'], victim)).code).toBe(0);
    await eventually(async () => ((await host(['-n', 'kplex-beta', 'get', 'pod', twin('beta', 'Pod', 'victim'), '-o', 'jsonpath={.spec.nodeName}'])).stdout || undefined), 60_000, "beta's victim scheduled");
    // Affinity to the victim's labels in every namespace ({}) and in host namespaces by name: only alpha's
    // own pods count, and it has none such, so the lure never lands next to the victim.
    // Anti-affinity to anything labelled as beta's twins are: a tenant key, so it counts nothing, and the
    // pod runs on the one node the victim is on.
    const attacks = `apiVersion: v1
kind: Pod
metadata: {name: lure, labels: {role: attacker}}
spec:
  containers: [{name: c, image: nginx}]
  affinity:
    podAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
      - {topologyKey: kubernetes.io/hostname, labelSelector: {matchLabels: {role: victim}}, namespaceSelector: {}}
      - {topologyKey: kubernetes.io/hostname, labelSelector: {matchLabels: {role: victim}}, namespaces: [kplex-beta, default, kube-system]}
---
apiVersion: v1
kind: Pod
metadata: {name: dodge, labels: {role: attacker}}
spec:
  containers: [{name: c, image: nginx}]
  affinity:
    podAntiAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
      - {topologyKey: kubernetes.io/hostname, labelSelector: {matchLabels: {kplex.dev/tenant: beta}}, namespaceSelector: {}}
      - {topologyKey: kubernetes.io/hostname, labelSelector: {matchExpressions: [{key: role, operator: In, values: [victim]}]}, namespaceSelector: {matchExpressions: [{key: kubernetes.io/metadata.name, operator: In, values: [kplex-beta]}]}}
  topologySpreadConstraints:
  - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {role: victim}}}
`;
    const r = await as('alpha', ['apply', '-f', '-'], attacks);
    expect(r.code, r.stderr).toBe(0);
    type HostPod = { spec: { nodeName?: string; affinity?: Record<string, any>; topologySpreadConstraints?: Record<string, any>[] }; status: { conditions?: { type: string; reason?: string }[] } };
    const get = async (name: string) => json<HostPod>(await host(['-n', 'kplex-alpha', 'get', 'pod', twin('alpha', 'Pod', name), '-o', 'json']));
    await eventually(async () => ((await get('dodge')).spec.nodeName ? true : undefined), 60_000, 'dodge scheduled beside the victim');
    const lure = await eventually(async () => {
      const p = await get('lure');
      return p.status.conditions?.some((c) => c.type === 'PodScheduled' && c.reason === 'Unschedulable') ? p : undefined;
    }, 60_000, 'the lure unschedulable');
    expect(lure.spec.nodeName).toBeUndefined();
    // Every selector the host got is scoped to alpha's twins, in alpha's host namespace.
    const dodge = await get('dodge');
    const terms = [...lure.spec.affinity!.podAffinity.requiredDuringSchedulingIgnoredDuringExecution, ...dodge.spec.affinity!.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution];
    for (const term of [...terms, ...dodge.spec.topologySpreadConstraints!]) {
      expect(term).not.toHaveProperty('namespaces');
      expect(term).not.toHaveProperty('namespaceSelector');
      expect(term.labelSelector.matchLabels['kplex.dev/tenant']).toBe('alpha');
    }
  });

  it("refuses an Ingress for a host name another tenant serves: 403 through the gateway, an event when written behind it", async () => {
    const ingress = (name: string, hostName: string) => `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: ${name}}
spec:
  rules: [{host: ${hostName}, http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}}]
`;
    expect((await as('beta', ['apply', '-f', '-'], ingress('shop', 'shop.example.com'))).code).toBe(0);
    await onHost('beta', 'ingress', twin('beta', 'Ingress', 'shop'), "beta's host Ingress");

    const refused = await as('alpha', ['apply', '-f', '-'], ingress('shop', 'shop.example.com'));
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('ingresses.networking.k8s.io "shop" is forbidden: host "shop.example.com" is already served by another namespace of the host cluster');
    expect(refused.stderr).not.toContain('beta');
    expect((await as('alpha', ['get', 'ingress', 'shop'])).stderr).toContain('NotFound');
    // A free name is served.
    expect((await as('alpha', ['apply', '-f', '-'], ingress('own', 'alpha.example.com'))).code).toBe(0);
    await onHost('alpha', 'ingress', twin('alpha', 'Ingress', 'own'), "alpha's own host Ingress");

    // Written to alpha's API server directly (as its controllers would), the syncer refuses it and says why.
    const direct = path.join(dir, 'alpha-direct.kubeconfig');
    const config = (await host(['-n', 'kplex-alpha', 'get', 'secret', 'vc-alpha', '-o', 'jsonpath={.data.config}'])).stdout;
    writeFileSync(direct, Buffer.from(config, 'base64'));
    const behind = await kubectl(direct, ['apply', '-f', '-'], { input: ingress('behind', 'shop.example.com') });
    expect(behind.code, behind.stderr).toBe(0);
    const event = await eventually(async () => {
      const e = await as('alpha', ['get', 'events', '--field-selector', 'reason=HostRefused,involvedObject.kind=Ingress', '-o', 'jsonpath={.items[*].message}']);
      return e.stdout || undefined;
    }, 30_000, 'the HostRefused event on the Ingress');
    expect(event).toContain('the host cluster refused it: ingresses.networking.k8s.io "behind" is forbidden: host "shop.example.com"');
    expect((await host(['-n', 'kplex-alpha', 'get', 'ingress', twin('alpha', 'Ingress', 'behind')])).code).not.toBe(0);
  });
});
