import { readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { Translator } from '../../src/sync/translate.js';
import { decodeSnapshot } from '../../src/tenants/snapshot.js';
import { eventually, kplex, kubectl, onSimulatedNodes, useSharedHost, type Run } from './helpers.js';

interface Pod {
  metadata: { name: string };
  spec: { nodeName?: string };
  status: { phase: string };
}

/**
 * `kplex snapshot` and `kplex create --restore`: a tenant comes back from its file with every object
 * (CRDs and custom resources too), its Services keep their ClusterIPs on both sides, its pods run on
 * the host again, and host twins of what the snapshot does not hold are gone.
 */
describe('tenant snapshot and restore', () => {
  const shared = useSharedHost('snapshot', ['snap', 'snap-copy']);
  const { dir, dataDir, env } = shared;
  const store = ['--data-dir', dataDir, '--context', 'kplex-host'];
  const file = path.join(dir, 'snap.kplex');
  let kc = '';
  const host = (args: string[]) => kubectl(shared.hostKubeconfig, args);
  const tenant = (args: string[], input?: string) => kubectl(kc, args, { input });
  const ok = (r: Run): string => {
    expect(r.code, r.stderr).toBe(0);
    return r.stdout.trim();
  };
  const twin = (kind: string, name: string, t = 'snap') => new Translator(t).name('shop', name, kind);
  const onHost = async (kind: string, name: string, t = 'snap'): Promise<boolean> => (await host(['-n', `kplex-${t}`, 'get', kind, name])).code === 0;
  const runningOnHost = async (t = 'snap'): Promise<Pod[]> =>
    (JSON.parse(ok(await host(['-n', `kplex-${t}`, 'get', 'pods', '-l', `kplex.dev/tenant=${t}`, '-o', 'json']))) as { items: Pod[] }).items.filter((p) => p.status.phase === 'Running' && p.spec.nodeName);
  /** The tenant's admin kubeconfig: a restored tenant is a new Tenant, and a token names the one it was issued for. */
  const connect = async (t: string): Promise<string> => {
    const printed = await kplex(['connect', t, '--print', '--context', 'kplex-host'], env);
    const out = path.join(dir, `${t}.kubeconfig`);
    writeFileSync(out, ok(printed));
    return out;
  };
  const restore = (t: string, from = file) => kplex(['create', t, '--restore', from, '--connect=false', ...store], env);

  const objects = `apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget}
  scope: Namespaced
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}]
---
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: shop}
stringData: {password: s3cret-value}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {selector: {app: web}, ports: [{port: 80}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx, env: [{name: PASSWORD, valueFrom: {secretKeyRef: {name: creds, key: password}}}]}]
      nodeSelector: ${JSON.stringify(onSimulatedNodes.nodeSelector)}
      tolerations: ${JSON.stringify(onSimulatedNodes.tolerations)}
`;
  const widget = `apiVersion: example.com/v1
kind: Widget
metadata: {name: gear, namespace: shop}
spec: {teeth: 12}
`;
  let clusterIP = '';
  let podNames: string[] = [];
  /** A ServiceAccount token the tenant issued before the snapshot. */
  let saToken = '';
  /** Whether tenant `k`'s API server accepts `token` (a TokenReview, asked of the tenant itself). */
  const accepts = async (k: string, token: string): Promise<boolean> => {
    const review = ok(await kubectl(k, ['create', '-o', 'json', '-f', '-'], { input: JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } }) }));
    return (JSON.parse(review) as { status: { authenticated?: boolean } }).status.authenticated === true;
  };
  /** The one line a refused command printed last (progress lines come before it). */
  const lastLine = (r: Run): string => r.stderr.trim().split('\n').pop()!;
  const tenantPods = async (k: string) => ok(await kubectl(k, ['-n', 'shop', 'get', 'pods', '-o', 'jsonpath={.items[*].metadata.name}'])).split(' ').sort();

  beforeAll(async () => {
    kc = await shared.createTenant('snap');
    ok(await tenant(['apply', '-f', '-'], objects));
    await eventually(async () => ((await tenant(['get', 'crd', 'widgets.example.com', '-o', 'jsonpath={.status.acceptedNames.kind}'])).stdout === 'Widget' ? true : undefined), 30_000, 'the CRD established');
    ok(await tenant(['apply', '-f', '-'], widget));
    await eventually(async () => ((await runningOnHost()).length === 2 ? true : undefined), 90_000, '2 Running host pods');
    clusterIP = ok(await tenant(['-n', 'shop', 'get', 'service', 'web', '-o', 'jsonpath={.spec.clusterIP}']));
    expect(clusterIP).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    podNames = await tenantPods(kc);
    expect(podNames).toHaveLength(2);
    saToken = ok(await tenant(['-n', 'shop', 'create', 'token', 'default', '--duration=2h']));
    expect(await accepts(kc, saToken)).toBe(true);
  }, 300_000);

  /** Everything the snapshot holds is in tenant `t` again, with the same ClusterIP on both sides, and its pods run on the host. */
  const expectRestored = async (t: string) => {
    const k = await connect(t);
    const get = async (args: string[]) => ok(await kubectl(k, args));
    expect(await get(['get', 'crd', 'widgets.example.com', '-o', 'name'])).toBe('customresourcedefinition.apiextensions.k8s.io/widgets.example.com');
    expect(await get(['-n', 'shop', 'get', 'widget', 'gear', '-o', 'jsonpath={.spec.teeth}'])).toBe('12');
    expect(Buffer.from(await get(['-n', 'shop', 'get', 'secret', 'creds', '-o', 'jsonpath={.data.password}']), 'base64').toString()).toBe('s3cret-value');
    expect(await get(['-n', 'shop', 'get', 'deployment', 'web', '-o', 'jsonpath={.spec.replicas}'])).toBe('2');
    expect(await get(['-n', 'shop', 'get', 'service', 'web', '-o', 'jsonpath={.spec.clusterIP}'])).toBe(clusterIP);
    const hostIP = await eventually(async () => {
      const r = await host(['-n', `kplex-${t}`, 'get', 'service', twin('Service', 'web', t), '-o', 'jsonpath={.spec.clusterIP}']);
      return r.code === 0 ? r.stdout : undefined;
    }, 60_000, 'the host twin of Service web');
    expect(hostIP).toBe(clusterIP);
    await eventually(async () => ((await runningOnHost(t)).length === 2 ? true : undefined), 90_000, `2 Running host pods of ${t}`);
    // The Deployment's pods are the snapshot's own, not new ones a ReplicaSet made.
    expect(await tenantPods(k)).toEqual(podNames);
    expect(await onHost('secret', twin('Secret', 'creds', t), t)).toBe(true);
    // Restored under its own name it keeps its service-account key: a token issued before is still good.
    expect(await accepts(k, saToken)).toBe(true);
    return k;
  };

  it('writes a snapshot file, readable by its owner only', async () => {
    const r = await kplex(['snapshot', 'snap', '-o', file, ...store], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^snapshot of tenant snap written to .*snap\.kplex: \d+ keys at store revision \d+/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const raw = gunzipSync(readFileSync(file));
    expect(JSON.parse(raw.subarray(0, raw.indexOf(0x0a)).toString())).toMatchObject({ format: 'kplex.dev/tenant-snapshot', version: 1 });
    const keys = decodeSnapshot(readFileSync(file)).store.entries.map((e) => e.key);
    expect(keys).toEqual(expect.arrayContaining(['/apiextensions.k8s.io/customresourcedefinitions/widgets.example.com', '/example.com/widgets/shop/gear', '/secrets/shop/creds', '/deployments/shop/web']));
    // Events live on an etcd lease: restored without one they would never expire, so they stay out.
    expect((await tenant(['-n', 'shop', 'get', 'events', '-o', 'name'])).stdout).not.toBe('');
    expect(keys.filter((k) => k.startsWith('/events/'))).toEqual([]);
  });

  it('refuses to restore onto an existing tenant, a corrupt file or one from a newer kplex, in one line, changing nothing', async () => {
    const exists = await restore('snap');
    expect(exists.code).not.toBe(0);
    expect(lastLine(exists)).toBe(`kplex: tenant "snap" already exists; delete it first, or restore under another name: kplex create NEW-NAME --restore ${file}`);

    const raw = gunzipSync(readFileSync(file));
    const corrupt = Buffer.from(raw);
    corrupt[corrupt.length - 3] = corrupt[corrupt.length - 3]! ^ 0x01;
    const corruptFile = path.join(dir, 'corrupt.kplex');
    writeFileSync(corruptFile, gzipSync(corrupt));
    const newline = raw.indexOf(0x0a);
    const newerFile = path.join(dir, 'newer.kplex');
    const head = { ...JSON.parse(raw.subarray(0, newline).toString()), version: 2 };
    writeFileSync(newerFile, gzipSync(Buffer.concat([Buffer.from(`${JSON.stringify(head)}\n`), raw.subarray(newline + 1)])));
    for (const [from, line] of [
      [corruptFile, `kplex: ${corruptFile} is corrupt: its checksum does not match its contents`],
      [newerFile, `kplex: ${newerFile} has snapshot format version 2, newer than this kplex reads (1): restore it with a newer kplex`],
      [shared.hostKubeconfig, `kplex: ${shared.hostKubeconfig} is not a kplex snapshot (not gzip data)`],
    ]) {
      const r = await restore('snap-copy', from);
      expect(r.code).not.toBe(0);
      expect(r.stderr.trim()).toBe(line);
    }
    // Nothing half-made: no Tenant, no host namespace, no data in the store.
    expect((await host(['get', 'tenants.kplex.dev', 'snap-copy'])).code).not.toBe(0);
    expect(await onHost('namespace', 'kplex-snap-copy')).toBe(false);
    expect((await kplex(['snapshot', 'snap-copy', '-o', path.join(dir, 'none.kplex'), ...store], env)).stderr.trim()).toBe('kplex: tenant "snap-copy" not found');
  });

  it('brings the tenant back after a delete that kept its host namespace, and removes the twin of what the snapshot does not hold', async () => {
    // Made after the snapshot: its host twin stays with the kept namespace, and has no origin after the restore.
    ok(await tenant(['-n', 'shop', 'create', 'service', 'clusterip', 'late', '--tcp=80:80']));
    await eventually(async () => ((await onHost('service', twin('Service', 'late'))) ? true : undefined), 30_000, 'the twin of Service late');
    const del = await kplex(['delete', 'snap', '--keep-namespace', '--context', 'kplex-host'], env);
    expect(del.code, del.stderr).toBe(0);
    expect(await onHost('service', twin('Service', 'late'))).toBe(true);

    const r = await restore('snap');
    expect(r.code, r.stderr).toBe(0);
    kc = await expectRestored('snap');
    expect((await tenant(['-n', 'shop', 'get', 'service', 'late'])).code).not.toBe(0);
    expect(lastLine(await restore('snap'))).toMatch(/^kplex: tenant "snap" already exists/);
    await eventually(async () => (!(await onHost('service', twin('Service', 'late'))) ? true : undefined), 60_000, 'the orphan twin of Service late removed');
  });

  it('brings the tenant back after a full delete: pods run on the host again, with the same ClusterIP', async () => {
    const del = await kplex(['delete', 'snap', '--context', 'kplex-host'], env);
    expect(del.code, del.stderr).toBe(0);
    expect(await onHost('namespace', 'kplex-snap')).toBe(false);
    const r = await restore('snap');
    expect(r.code, r.stderr).toBe(0);
    kc = await expectRestored('snap');
  });

  it('makes a copy under a new name beside the original: its data, its own pods, and a service-account key of its own', async () => {
    const r = await restore('snap-copy');
    expect(r.code, r.stderr).toBe(0);
    const copy = await connect('snap-copy');
    expect(ok(await kubectl(copy, ['-n', 'shop', 'get', 'widget', 'gear', '-o', 'jsonpath={.spec.teeth}']))).toBe('12');
    expect(Buffer.from(ok(await kubectl(copy, ['-n', 'shop', 'get', 'secret', 'creds', '-o', 'jsonpath={.data.password}'])), 'base64').toString()).toBe('s3cret-value');
    await eventually(async () => ((await runningOnHost('snap-copy')).length === 2 ? true : undefined), 90_000, '2 Running host pods of snap-copy');
    // The original's Service has the ClusterIP on the host: the copy's gets another, the same on both sides.
    const copyIP = await eventually(async () => {
      const tenantIP = ok(await kubectl(copy, ['-n', 'shop', 'get', 'service', 'web', '-o', 'jsonpath={.spec.clusterIP}']));
      const r = await host(['-n', 'kplex-snap-copy', 'get', 'service', twin('Service', 'web', 'snap-copy'), '-o', 'jsonpath={.spec.clusterIP}']);
      return r.code === 0 && r.stdout === tenantIP ? tenantIP : undefined;
    }, 60_000, 'one ClusterIP for the copy\'s Service web on both sides');
    expect(copyIP).not.toBe(clusterIP);
    // A token of the original is no good in the copy, though the copy has that ServiceAccount with that uid.
    expect(await accepts(copy, saToken)).toBe(false);
    expect(await accepts(kc, saToken)).toBe(true);
  });
});
