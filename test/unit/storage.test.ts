import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { nodePaths, PROVISIONER_NAME, provisionerArgs, provisionerConfig, provisionerHelperPod, STORAGE_NAMESPACE } from '../../src/dev/node-config.js';
import type { KubeObject } from '../../src/k8s/client.js';
import { mirroredKinds } from '../../src/sync/kinds.js';
import { MIRRORED_STORAGE_CLASS_LABEL, storageClassAction, tenantStorageClass } from '../../src/sync/storage-classes.js';
import { originOf, Translator } from '../../src/sync/translate.js';
import { claimVolumeNameOnHost, HOST_VOLUME_LABEL, hostVolumeName, persistentVolumeOnHost, tenantVolume, volumeSourceRefusal } from '../../src/sync/volumes.js';
import { parseValues, ValuesError } from '../../src/tenants/values.js';

const t = new Translator('demo');
const policy = (p: { csiDrivers?: string[]; localPathPrefixes?: string[] } = {}) => parseValues({ sync: { persistentVolumes: { enabled: true, ...p } } }).sync.persistentVolumes;
const pv = (spec: Record<string, unknown>, name = 'vol'): KubeObject => ({
  apiVersion: 'v1',
  kind: 'PersistentVolume',
  metadata: { name, uid: 'u-pv' },
  spec: { capacity: { storage: '1Gi' }, accessModes: ['ReadWriteOnce'], claimRef: { namespace: 'shop', name: 'data' }, ...spec },
});

describe('storage values', () => {
  it('has both switches off by default and no PV source allowed', () => {
    const v = parseValues({});
    expect(v.sync.storageClasses.enabled).toBe(false);
    expect(v.sync.persistentVolumes).toEqual({ enabled: false, csiDrivers: [], localPathPrefixes: [] });
  });

  it('refuses unknown keys and local prefixes that are not plain absolute paths', () => {
    expect(() => parseValues({ sync: { storageClasses: { enabled: true, mode: 'all' } } })).toThrow(ValuesError);
    for (const bad of ['relative/dir', '/srv/../etc', '/srv/./x', '/srv//x', '/srv/x/']) {
      expect(() => parseValues({ sync: { persistentVolumes: { localPathPrefixes: [bad] } } }), bad).toThrow(/localPathPrefixes\.0: not a plain absolute path/);
    }
    expect(parseValues({ sync: { persistentVolumes: { localPathPrefixes: ['/srv/volumes/team-a'] } } }).sync.persistentVolumes.localPathPrefixes).toEqual(['/srv/volumes/team-a']);
  });
});

describe('tenant PV sources (attacks on the host through a PersistentVolume)', () => {
  it('refuses hostPath anywhere, and every source that names host storage directly', () => {
    for (const spec of [
      { hostPath: { path: '/' } },
      { hostPath: { path: '/var/lib/kubelet' } },
      { nfs: { server: '10.0.0.1', path: '/' } },
      { iscsi: { targetPortal: '10.0.0.1:3260', iqn: 'iqn.x', lun: 0 } },
      { rbd: { monitors: ['10.0.0.1'], image: 'i', secretRef: { name: 'x', namespace: 'kube-system' } } },
      { cephfs: { monitors: ['10.0.0.1'], secretRef: { name: 'x', namespace: 'kube-system' } } },
      { flexVolume: { driver: 'x/y' } },
    ]) {
      expect(volumeSourceRefusal(spec, policy({ csiDrivers: ['csi.example.com'], localPathPrefixes: ['/srv/team'] })), JSON.stringify(spec)).toMatch(/not taken from a tenant/);
    }
  });

  it('refuses none or two sources', () => {
    expect(volumeSourceRefusal({}, policy())).toMatch(/exactly one volume source \(has none\)/);
    expect(volumeSourceRefusal({ local: { path: '/srv/team/a' }, hostPath: { path: '/etc' } }, policy({ localPathPrefixes: ['/srv/team'] }))).toMatch(/has local, hostPath|has hostPath, local/);
  });

  it('takes local paths only inside a listed directory, however the path is spelled', () => {
    const p = policy({ localPathPrefixes: ['/srv/team'] });
    expect(volumeSourceRefusal({ local: { path: '/srv/team' } }, p)).toBeUndefined();
    expect(volumeSourceRefusal({ local: { path: '/srv/team/a/b' } }, p)).toBeUndefined();
    for (const path of ['/srv/teamb', '/srv/team/../../etc', '/srv/team/./a', '/etc', 'srv/team/a', '/', '/srv', 7]) {
      expect(volumeSourceRefusal({ local: { path } }, p), String(path)).toBeDefined();
    }
    expect(volumeSourceRefusal({ local: { path: '/srv/team/a' } }, policy())).toMatch(/outside the directories/);
  });

  it('takes CSI volumes only of listed drivers and without Secret references', () => {
    const p = policy({ csiDrivers: ['csi.example.com'] });
    expect(volumeSourceRefusal({ csi: { driver: 'csi.example.com', volumeHandle: 'v1' } }, p)).toBeUndefined();
    expect(volumeSourceRefusal({ csi: { driver: 'other.example.com', volumeHandle: 'v1' } }, p)).toMatch(/not one this tenant may use/);
    expect(volumeSourceRefusal({ csi: { driver: 'csi.example.com', volumeHandle: 'v1' } }, policy())).toMatch(/not one this tenant may use/);
    for (const ref of ['nodePublishSecretRef', 'nodeStageSecretRef', 'controllerPublishSecretRef', 'controllerExpandSecretRef', 'nodeExpandSecretRef']) {
      expect(volumeSourceRefusal({ csi: { driver: 'csi.example.com', volumeHandle: 'v1', [ref]: { namespace: 'kube-system', name: 'admin' } } }, p)).toMatch(/Secret references/);
    }
  });
});

describe('tenant PVs on the host', () => {
  const p = policy({ csiDrivers: ['csi.example.com'] });

  it('has a translated name, the origin, and its claim the twin of the tenant claim', () => {
    const made = persistentVolumeOnHost(t, pv({ csi: { driver: 'csi.example.com', volumeHandle: 'h' }, claimRef: { namespace: 'shop', name: 'data', uid: 'tenant-uid' } }), p);
    if (!('twin' in made)) throw new Error(made.refused);
    expect(made.twin.metadata.name).toBe(hostVolumeName(t, 'vol'));
    expect(made.twin.metadata.name).not.toBe('vol');
    expect(originOf(made.twin)).toEqual({ tenant: 'demo', namespace: '', name: 'vol', uid: 'u-pv' });
    // Never the tenant's uid, never a namespace other than the tenant's own host namespace.
    expect((made.twin.spec as Record<string, unknown>).claimRef).toEqual({ kind: 'PersistentVolumeClaim', apiVersion: 'v1', namespace: t.hostNamespace, name: t.name('shop', 'data', 'PersistentVolumeClaim') });
  });

  it("binds ahead only to the tenant's own claims: a claimRef into a host namespace stays in the tenant's", () => {
    const made = persistentVolumeOnHost(t, pv({ csi: { driver: 'csi.example.com', volumeHandle: 'h' }, claimRef: { namespace: 'kplex-other', name: 'db' } }), p);
    if (!('twin' in made)) throw new Error(made.refused);
    expect((made.twin.spec as { claimRef: { namespace: string; name: string } }).claimRef.namespace).toBe(t.hostNamespace);
  });

  it('refuses an unclaimed PV (any claim of the class, another tenant\'s too, could bind it) and the Recycle policy', () => {
    const unclaimed = pv({ csi: { driver: 'csi.example.com', volumeHandle: 'h' }, claimRef: undefined });
    expect(persistentVolumeOnHost(t, unclaimed, p)).toEqual({ refused: expect.stringMatching(/only bound ahead to a claim of this tenant/) });
    expect(persistentVolumeOnHost(t, pv({ csi: { driver: 'csi.example.com', volumeHandle: 'h' }, persistentVolumeReclaimPolicy: 'Recycle' }), p)).toEqual({ refused: expect.stringMatching(/Recycle/) });
    expect(persistentVolumeOnHost(t, pv({ hostPath: { path: '/etc' } }), p)).toEqual({ refused: expect.stringMatching(/hostPath/) });
  });

  it("translates a claim's volumeName to the tenant's own PV twin, and drops it with PV sync off", () => {
    expect(claimVolumeNameOnHost(t, 'pvc-1234', true)).toBe(hostVolumeName(t, 'pvc-1234'));
    expect(claimVolumeNameOnHost(t, 'pvc-1234', false)).toBeUndefined();
    expect(claimVolumeNameOnHost(t, '', true)).toBeUndefined();
    // Two tenants naming the same volume get different host names.
    expect(hostVolumeName(new Translator('other'), 'pvc-1234')).not.toBe(hostVolumeName(t, 'pvc-1234'));
    const claim = { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: 'data', namespace: 'shop', uid: 'u' }, spec: { volumeName: 'pvc-1234', storageClassName: 'standard' } };
    const kind = (enabled: boolean) => mirroredKinds(parseValues({ sync: { persistentVolumes: { enabled } } })).find((k) => k.kind === 'PersistentVolumeClaim')!;
    expect((kind(true).toHost(t, claim).spec as Record<string, unknown>).volumeName).toBe(hostVolumeName(t, 'pvc-1234'));
    expect((kind(false).toHost(t, claim).spec as Record<string, unknown>).volumeName).toBeUndefined();
    expect((kind(false).toHost(t, claim).spec as Record<string, unknown>).storageClassName).toBe('standard');
  });

  it('shows a host volume in the tenant bound to the tenant claim, marked so it never goes back to the host', () => {
    const host = { apiVersion: 'v1', kind: 'PersistentVolume', metadata: { name: 'pvc-1', annotations: { 'pv.kubernetes.io/provisioned-by': 'rancher.io/local-path' } }, spec: { hostPath: { path: '/data/x' }, storageClassName: 'standard', claimRef: { namespace: 'kplex-demo', name: 'data-x-shop-x-demo', uid: 'host-uid' } }, status: { phase: 'Bound' } };
    const shown = tenantVolume(host, { namespace: 'shop', name: 'data', uid: 'tenant-uid' });
    expect(shown.metadata).toEqual({ name: 'pvc-1', labels: { [HOST_VOLUME_LABEL]: 'true' } });
    expect((shown.spec as Record<string, unknown>).claimRef).toEqual({ kind: 'PersistentVolumeClaim', apiVersion: 'v1', namespace: 'shop', name: 'data', uid: 'tenant-uid' });
    expect(shown.status).toEqual({ phase: 'Bound' });
  });
});

describe('host StorageClasses in a tenant', () => {
  const host: KubeObject = {
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: { name: 'standard', uid: 'h', resourceVersion: '5', annotations: { 'storageclass.kubernetes.io/is-default-class': 'true', 'kubectl.kubernetes.io/last-applied-configuration': '{}' }, labels: { team: 'platform' } },
    provisioner: 'rancher.io/local-path',
    reclaimPolicy: 'Delete',
    volumeBindingMode: 'WaitForFirstConsumer',
    allowedTopologies: [{ matchLabelExpressions: [{ key: 'kplex.dev/real-node', values: ['true'] }] }],
  };

  it("keeps the class's fields and default marking, nothing else of the host's metadata", () => {
    const c = tenantStorageClass(host);
    expect(c.metadata).toEqual({ name: 'standard', labels: { [MIRRORED_STORAGE_CLASS_LABEL]: 'true' }, annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } });
    expect(c.provisioner).toBe('rancher.io/local-path');
    expect(c.allowedTopologies).toEqual(host.allowedTopologies);
  });

  it("undoes the tenant's changes: metadata by update, immutable fields (or a tenant class of that name) by making it again", () => {
    const desired = tenantStorageClass(host);
    expect(storageClassAction(undefined, desired)).toBe('create');
    expect(storageClassAction({ ...desired, metadata: { ...desired.metadata, uid: 't', resourceVersion: '1' } }, desired)).toBe('leave');
    expect(storageClassAction({ ...desired, metadata: { ...desired.metadata, annotations: { 'storageclass.kubernetes.io/is-default-class': 'false' } } }, desired)).toBe('update');
    expect(storageClassAction({ ...desired, metadata: { name: 'standard' } }, desired)).toBe('update');
    expect(storageClassAction({ ...desired, allowVolumeExpansion: true }, desired)).toBe('update');
    expect(storageClassAction({ ...desired, provisioner: 'evil.example.com' }, desired)).toBe('replace');
    expect(storageClassAction({ ...desired, parameters: { nodePath: '/etc' } }, desired)).toBe('replace');
  });
});

describe("the real node's provisioner", () => {
  const p = nodePaths('/data');

  it('keeps every volume under the data folder and names its helper pod, class and namespace', () => {
    expect(JSON.parse(provisionerConfig(p))).toEqual({ nodePathMap: [{ node: 'DEFAULT_PATH_FOR_NON_LISTED_NODES', paths: ['/data/node/volumes'] }] });
    const args = provisionerArgs(p);
    expect(args[0]).toBe('start');
    expect(args).toContain('--kubeconfig=/data/node/local-path-provisioner.kubeconfig');
    expect(args).toContain(`--provisioner-name=${PROVISIONER_NAME}`);
    expect(args).toContain(`--namespace=${STORAGE_NAMESPACE}`);
  });

  it('runs helpers from the node image without an API token', () => {
    const pod = YAML.parse(provisionerHelperPod()) as { spec: { automountServiceAccountToken: boolean; containers: { image: string; imagePullPolicy: string }[] } };
    expect(pod.spec.automountServiceAccountToken).toBe(false);
    expect(pod.spec.containers).toEqual([{ name: 'helper-pod', image: 'docker.io/library/busybox:latest', imagePullPolicy: 'IfNotPresent' }]);
  });
});
