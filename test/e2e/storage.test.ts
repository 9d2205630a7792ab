import { readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/controlplane/ports.js';
import { Translator } from '../../src/sync/translate.js';
import { hostVolumeName } from '../../src/sync/volumes.js';
import { eventually, isolatedEnv, kplex, kubectl, tmpDir, type Run } from './helpers.js';

interface PV {
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: { claimRef?: { namespace?: string; name?: string }; storageClassName?: string; hostPath?: unknown };
  status?: { phase?: string };
}

/**
 * Storage as in a cluster of one's own, on a real node: a claim of the default class is provisioned by
 * the host's local-path-provisioner and keeps its data from one pod to the next; the host's
 * StorageClasses and the volumes of the tenant's claims show in the tenant when its values say so; a
 * tenant PV naming the host's files, or a claim naming another's volume, gets nothing of the host.
 */
describe('storage of tenant workloads on a real node', () => {
  const dir = tmpDir('storage');
  const dataDir = path.join(dir, 'data');
  const env = isolatedEnv(dir);
  const hostKc = path.join(dataDir, 'admin.kubeconfig');
  const kc = (tenant: string) => path.join(dir, `${tenant}.kubeconfig`);
  const host = (args: string[]) => kubectl(hostKc, args);
  const as = (tenant: string, args: string[], input?: string, timeoutMs?: number) => kubectl(kc(tenant), args, { input, timeoutMs });
  const ok = (r: Run): string => {
    expect(r.code, r.stderr).toBe(0);
    return r.stdout;
  };
  const hostPVs = async () => (JSON.parse(ok(await host(['get', 'pv', '-o', 'json']))) as { items: PV[] }).items;
  const phase = async (tenant: string, kind: string, name: string) => (await as(tenant, ['get', kind, name, '-o', 'jsonpath={.status.phase}'])).stdout;

  const pod = (name: string, script: string) => `apiVersion: v1
kind: Pod
metadata: {name: ${name}}
spec:
  restartPolicy: Never
  containers: [{name: c, image: busybox, imagePullPolicy: IfNotPresent, command: [sh, -c, '${script}'], volumeMounts: [{name: d, mountPath: /data}]}]
  volumes: [{name: d, persistentVolumeClaim: {claimName: data}}]
`;
  const finishedLogs = async (tenant: string, name: string): Promise<string> => {
    await eventually(async () => ((await phase(tenant, 'pod', name)) === 'Succeeded' ? true : undefined), 120_000, `${name} Succeeded`);
    return ok(await as(tenant, ['logs', name]));
  };

  beforeAll(async () => {
    const up = await kplex(['dev', 'up', '--nodes', '1', '--simulated-nodes', '1', '--detach', '--gateway-port', String(await freePort()), '--data-dir', dataDir], env, 300_000);
    expect(up.code, up.stderr + up.stdout).toBe(0);
    expect(up.stdout).not.toContain('no real node');
    const valuesFile = path.join(dir, 'store.yaml');
    writeFileSync(valuesFile, 'sync:\n  storageClasses: {enabled: true}\n  persistentVolumes: {enabled: true}\n');
    for (const [tenant, values] of [['store', ['-f', valuesFile]], ['plain', []]] as const) {
      const c = await kplex(['create', tenant, ...values, '--connect=false', '--context', 'kplex-host'], env);
      expect(c.code, c.stderr).toBe(0);
      const p = await kplex(['connect', tenant, '--print', '--context', 'kplex-host'], env);
      expect(p.code, p.stderr).toBe(0);
      writeFileSync(kc(tenant), p.stdout);
    }
  }, 360_000);

  afterAll(async () => {
    await kplex(['dev', 'down', '--data-dir', dataDir], env);
  });

  it("shows the host's default StorageClass in the tenant that enables it, read-only, and none in the other", async () => {
    const cls = await eventually(async () => {
      const r = await as('store', ['get', 'storageclass', 'standard', '-o', 'json']);
      return r.code === 0 ? (JSON.parse(r.stdout) as { provisioner: string; metadata: { annotations?: Record<string, string> } }) : undefined;
    }, 30_000, "the host's StorageClass in tenant store");
    expect(cls.provisioner).toBe('rancher.io/local-path');
    expect(cls.metadata.annotations?.['storageclass.kubernetes.io/is-default-class']).toBe('true');
    expect(ok(await as('store', ['get', 'storageclass']))).toMatch(/standard \(default\)\s+rancher\.io\/local-path/);
    // A tenant's change is undone: the class stays the host's default.
    ok(await as('store', ['annotate', 'storageclass', 'standard', 'storageclass.kubernetes.io/is-default-class=false', '--overwrite']));
    await eventually(async () => {
      const r = await as('store', ['get', 'storageclass', 'standard', '-o', 'jsonpath={.metadata.annotations.storageclass\\.kubernetes\\.io/is-default-class}']);
      return r.stdout === 'true' ? true : undefined;
    }, 30_000, 'the default marking restored');
    expect(ok(await as('plain', ['get', 'storageclass', '-o', 'name']))).toBe('');
  });

  it('binds a claim of the default class; a file a pod wrote is read back by the next pod on the claim', async () => {
    ok(await as('store', ['apply', '-f', '-'], 'apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data}\nspec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 10Mi}}}\n'));
    // The tenant's default class is the host's, filled in by the tenant's own admission.
    expect(ok(await as('store', ['get', 'pvc', 'data', '-o', 'jsonpath={.spec.storageClassName}']))).toBe('standard');
    ok(await as('store', ['apply', '-f', '-'], pod('writer', 'echo kept-by-the-claim > /data/note && cat /data/note')));
    expect((await finishedLogs('store', 'writer')).trim()).toBe('kept-by-the-claim');
    await eventually(async () => ((await phase('store', 'pvc', 'data')) === 'Bound' ? true : undefined), 30_000, 'claim Bound in the tenant');
    ok(await as('store', ['delete', 'pod', 'writer', '--wait=true', '--timeout=60s'], undefined, 70_000));
    ok(await as('store', ['apply', '-f', '-'], pod('reader', 'cat /data/note')));
    expect((await finishedLogs('store', 'reader')).trim()).toBe('kept-by-the-claim');
    // The host volume bound to the claim shows in the tenant, bound to the tenant's claim.
    const pv = await eventually(async () => {
      const r = await as('store', ['get', 'pv', '-o', 'json']);
      const items = r.code === 0 ? (JSON.parse(r.stdout) as { items: PV[] }).items : [];
      return items.find((v) => v.spec.claimRef?.name === 'data' && v.status?.phase === 'Bound');
    }, 30_000, "the claim's volume in the tenant");
    expect(pv.spec.claimRef?.namespace).toBe('default');
    expect(pv.spec.storageClassName).toBe('standard');
    // The other tenant sees no volume of this one.
    expect(ok(await as('plain', ['get', 'pv', '-o', 'name']))).toBe('');
  });

  it("refuses a tenant PV on the host's files and never binds a claim to another's volume", async () => {
    const t = new Translator('store');
    ok(await as('store', ['apply', '-f', '-'], `apiVersion: v1
kind: PersistentVolume
metadata: {name: etc}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  storageClassName: manual
  hostPath: {path: /etc}
  claimRef: {namespace: default, name: grab}
`));
    await eventually(async () => {
      const r = await as('store', ['get', 'events', '-n', 'default', '--field-selector', 'involvedObject.name=etc', '-o', 'jsonpath={.items[*].message}']);
      return r.stdout.includes('hostPath volumes name storage on the host directly') ? true : undefined;
    }, 30_000, 'a HostRefused event on the PV');
    expect((await hostPVs()).find((v) => v.metadata.name === hostVolumeName(t, 'etc') || JSON.stringify(v.spec.hostPath ?? {}).includes('"/etc"'))).toBeUndefined();

    // A claim naming the host volume of store's claim, from both tenants: neither twin names it.
    const victim = (await hostPVs()).find((v) => v.spec.claimRef?.namespace === 'kplex-store' && v.status?.phase === 'Bound');
    expect(victim).toBeDefined();
    const claim = (name: string) => `apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: ${name}}\nspec: {accessModes: [ReadWriteOnce], volumeName: ${victim!.metadata.name}, resources: {requests: {storage: 10Mi}}}\n`;
    ok(await as('store', ['apply', '-f', '-'], claim('steal')));
    ok(await as('plain', ['apply', '-f', '-'], claim('steal')));
    for (const tenant of ['store', 'plain']) {
      const twin = new Translator(tenant).name('default', 'steal', 'PersistentVolumeClaim');
      const volumeName = await eventually(async () => {
        const r = await host(['-n', `kplex-${tenant}`, 'get', 'pvc', twin, '-o', 'jsonpath={.spec.volumeName}']);
        return r.code === 0 ? r.stdout : undefined;
      }, 30_000, `${tenant}'s claim twin`);
      expect(volumeName).not.toBe(victim!.metadata.name);
      // With PV sync on, the name is the twin of store's own PV of that name; off, the claim names none.
      expect(volumeName).toBe(tenant === 'store' ? hostVolumeName(t, victim!.metadata.name) : '');
    }
    const after = (await hostPVs()).find((v) => v.metadata.name === victim!.metadata.name);
    expect(after?.spec.claimRef?.name).toBe(victim!.spec.claimRef?.name);
    expect(after?.status?.phase).toBe('Bound');
  });

  it("deletes the claim's volume, its directory and its PV in the tenant with the claim", async () => {
    const bound = (await hostPVs()).find((v) => v.spec.claimRef?.namespace === 'kplex-store' && v.status?.phase === 'Bound');
    expect(bound).toBeDefined();
    const dirs = () => readdirSync(path.join(dataDir, 'node', 'volumes')).filter((d) => d.startsWith(`${bound!.metadata.name}_`));
    expect(dirs()).toHaveLength(1);
    ok(await as('store', ['delete', 'pod', 'reader', '--wait=true', '--timeout=60s'], undefined, 70_000));
    ok(await as('store', ['delete', 'pvc', 'data', '--wait=true', '--timeout=90s'], undefined, 100_000));
    await eventually(async () => ((await hostPVs()).some((v) => v.metadata.name === bound!.metadata.name) ? undefined : true), 90_000, 'the host volume deleted');
    expect(dirs()).toEqual([]);
    await eventually(async () => {
      const r = await as('store', ['get', 'pv', '-o', 'name']);
      return r.code === 0 && !r.stdout.includes(bound!.metadata.name) ? true : undefined;
    }, 30_000, "the volume's PV gone from the tenant");
  });
});
