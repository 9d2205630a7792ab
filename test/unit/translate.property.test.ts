import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { KubeObject } from '../../src/k8s/client.js';
import { prerequisitesOf, referencesOf } from '../../src/sync/references.js';
import { Translator } from '../../src/sync/translate.js';

// Pods whose every field that can name another object holds a name of the marker alphabet ("ref-…"),
// and nothing else does: after translation, a marker on the host pod can only be a translated
// reference at a place the host may have one.

type Json = Record<string, any>;
const TENANT = 'tnt';
const t = new Translator(TENANT);
/** A tenant whose pods reach its API and DNS: its host pods name everything referencesOf counts. */
const withAccess = new Translator(TENANT, { serviceIP: '10.96.7.7' });

const ref = fc.stringMatching(/^[a-z0-9]{1,56}$/).map((s) => `ref-${s}`);
const namespace = fc.stringMatching(/^[a-z][a-z0-9]{0,20}$/);
const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
const secretRef = ref.map((name) => ({ name }));

/** Every volume source of the v1 API, one that no version has, and the ones that name nothing. */
const volumeSource: fc.Arbitrary<Json> = fc.oneof(
  ref.map((secretName) => ({ secret: { secretName, defaultMode: 0o400 } })),
  ref.map((name) => ({ configMap: { name, items: [{ key: 'k', path: 'p' }] } })),
  ref.map((claimName) => ({ persistentVolumeClaim: { claimName, readOnly: true } })),
  ref.map((secretName) => ({ azureFile: { secretName, shareName: 'share' } })),
  secretRef.map((nodePublishSecretRef) => ({ csi: { driver: 'csi.example.com', volumeAttributes: { a: 'b' }, nodePublishSecretRef } })),
  secretRef.map((r) => ({ iscsi: { targetPortal: '192.0.2.1:3260', iqn: 'iqn.2001-04.com.example:t', lun: 0, chapAuthSession: true, secretRef: r } })),
  secretRef.map((r) => ({ rbd: { monitors: ['192.0.2.2:6789'], image: 'img', secretRef: r } })),
  secretRef.map((r) => ({ flexVolume: { driver: 'example/flex', secretRef: r } })),
  secretRef.map((r) => ({ cinder: { volumeID: 'v', secretRef: r } })),
  secretRef.map((r) => ({ cephfs: { monitors: ['192.0.2.3:6789'], secretRef: r } })),
  secretRef.map((r) => ({ scaleIO: { gateway: 'https://gw', system: 'sys', secretRef: r } })),
  secretRef.map((r) => ({ storageos: { volumeName: 'v', secretRef: r } })),
  ref.map((endpoints) => ({ glusterfs: { endpoints, path: 'vol' } })),
  fc.record({ sources: fc.array(fc.oneof(
    ref.map((name) => ({ configMap: { name } })),
    ref.map((name) => ({ secret: { name, items: [{ key: 'k', path: 'p' }] } })),
    fc.constant({ downwardAPI: { items: [{ path: 'name', fieldRef: { fieldPath: 'metadata.name' } }] } }),
    ref.map((audience) => ({ serviceAccountToken: { path: 'token', audience, expirationSeconds: 3600 } })),
    ref.map((name) => ({ clusterTrustBundle: { name, path: 'bundle.pem' } })),
    ref.map((signerName) => ({ podCertificate: { signerName, keyType: 'ED25519', credentialBundlePath: 'creds.pem' } })),
    ref.map((name) => ({ somethingNew: { name } })),
  ), { maxLength: 5 }) }).map((projected) => ({ projected })),
  fc.record({ volumeName: maybe(ref), claim: maybe(ref), snapshot: maybe(ref), pv: maybe(ref) }).map(({ volumeName, claim, snapshot, pv }) => ({
    ephemeral: {
      volumeClaimTemplate: {
        metadata: { labels: { app: 'db' } },
        spec: {
          accessModes: ['ReadWriteOnce'],
          resources: { requests: { storage: '1Gi' } },
          ...(volumeName ? { volumeName } : {}),
          ...(pv ? { selector: { matchLabels: { pv } } } : {}),
          ...(claim ? { dataSource: { kind: 'PersistentVolumeClaim', name: claim } } : {}),
          ...(snapshot ? { dataSourceRef: { apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name: snapshot, namespace: snapshot } } : {}),
        },
      },
    },
  })),
  ref.map((secretName) => ({ somethingNew: { secretName } })),
  fc.constantFrom<Json>(
    { emptyDir: { medium: 'Memory' } },
    { hostPath: { path: '/var/log', type: 'Directory' } },
    { nfs: { server: 'nfs.example.com', path: '/export' } },
    { downwardAPI: { items: [{ path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } }] } },
    { image: { reference: 'busybox:1.36', pullPolicy: 'IfNotPresent' } },
    { gitRepo: { repository: 'https://example.com/r.git' } },
  ),
);

const envVar: fc.Arbitrary<Json> = fc.oneof(
  fc.constant({ name: 'PLAIN', value: 'v' }),
  ref.map((name) => ({ name: 'CM', valueFrom: { configMapKeyRef: { name, key: 'k' } } })),
  ref.map((name) => ({ name: 'SEC', valueFrom: { secretKeyRef: { name, key: 'k', optional: true } } })),
  fc.constant({ name: 'FIELD', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } }),
  fc.constant({ name: 'RES', valueFrom: { resourceFieldRef: { resource: 'limits.cpu' } } }),
  fc.constant({ name: 'FILE', valueFrom: { fileKeyRef: { volumeName: 'vol-0', path: 'env', key: 'K' } } }),
  ref.map((name) => ({ name: 'NEW', valueFrom: { somethingNew: { name } } })),
);

const envFrom: fc.Arbitrary<Json> = fc.oneof(
  ref.map((name) => ({ configMapRef: { name }, prefix: 'CM_' })),
  ref.map((name) => ({ secretRef: { name } })),
  ref.map((name) => ({ somethingNew: { name } })),
);

const container = (i: number): fc.Arbitrary<Json> =>
  fc.record({ env: fc.array(envVar, { maxLength: 4 }), envFrom: fc.array(envFrom, { maxLength: 3 }), claims: fc.array(ref, { maxLength: 2 }), future: maybe(ref) }).map(({ env, envFrom, claims, future }) => ({
    name: `c${i}`,
    image: 'busybox',
    env,
    envFrom,
    resources: { limits: { cpu: '1' }, ...(claims.length ? { claims: claims.map((name) => ({ name })) } : {}) },
    volumeMounts: [{ name: 'vol-0', mountPath: '/data' }, { name: 'kube-api-access-abcde', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' }],
    ...(future ? { somethingNew: { secretName: future } } : {}),
  }));

const containers = (n: number) => fc.array(fc.nat(), { minLength: n, maxLength: n + 2 }).chain((xs) => fc.tuple(...xs.map((_, i) => container(i))));

const pod: fc.Arbitrary<KubeObject> = fc
  .record({
    ns: namespace,
    volumes: fc.array(volumeSource, { maxLength: 8 }),
    apiAccess: ref,
    containers: containers(1),
    initContainers: containers(0),
    ephemeralContainers: containers(0),
    imagePullSecrets: fc.array(ref, { maxLength: 3 }),
    serviceAccountName: maybe(ref),
    serviceAccount: maybe(ref),
    subdomain: maybe(ref),
    resourceClaims: fc.array(fc.oneof(ref.map((resourceClaimName) => ({ name: 'gpu', resourceClaimName })), ref.map((resourceClaimTemplateName) => ({ name: 'gpu', resourceClaimTemplateName }))), { maxLength: 2 }),
    workload: maybe(ref),
    podClaims: fc.array(ref, { maxLength: 2 }),
    affinityNamespace: namespace,
    future: maybe(ref),
  })
  .map((g) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: g.ns, uid: 'u', labels: { app: 'web' } },
    spec: {
      volumes: [
        ...g.volumes.map((source, i) => ({ name: `vol-${i}`, ...source })),
        // The tenant API server's own token volume: nothing of it reaches the host.
        { name: 'kube-api-access-abcde', projected: { sources: [{ serviceAccountToken: { path: 'token' } }, { configMap: { name: g.apiAccess } }] } },
      ],
      containers: g.containers,
      initContainers: g.initContainers,
      ephemeralContainers: g.ephemeralContainers.map((c) => ({ ...c, targetContainerName: 'c0' })),
      imagePullSecrets: g.imagePullSecrets.map((name) => ({ name })),
      ...(g.serviceAccountName ? { serviceAccountName: g.serviceAccountName } : {}),
      ...(g.serviceAccount ? { serviceAccount: g.serviceAccount } : {}),
      ...(g.subdomain ? { subdomain: g.subdomain } : {}),
      resourceClaims: g.resourceClaims,
      ...(g.workload ? { workloadRef: { name: g.workload, podGroup: 'g' } } : {}),
      ...(g.podClaims.length ? { resources: { requests: { cpu: '1' }, claims: g.podClaims.map((name) => ({ name })) } } : {}),
      affinity: {
        nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] }] } },
        podAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: { matchLabels: { app: 'db' } }, topologyKey: 'zone', namespaces: [g.affinityNamespace] }] },
      },
      ...(g.future ? { somethingNew: { name: g.future } } : {}),
    },
  }));

/**
 * The references a pod spec holds at the places a host pod may hold one, as [kind, name]: written out
 * here, apart from the code under test, from the v1 PodSpec.
 */
function referencesAt(spec: Json, apiAccess = false): [string, string][] {
  const out: [string, string][] = [];
  const add = (kind: string, name: unknown) => typeof name === 'string' && out.push([kind, name]);
  for (const v of spec.volumes ?? []) {
    if (!apiAccess && String(v.name).startsWith('kube-api-access-')) continue;
    add('Secret', v.secret?.secretName);
    add('ConfigMap', v.configMap?.name);
    add('PersistentVolumeClaim', v.persistentVolumeClaim?.claimName);
    add('Secret', v.azureFile?.secretName);
    add('Secret', v.csi?.nodePublishSecretRef?.name);
    for (const source of ['iscsi', 'rbd', 'flexVolume', 'cinder', 'cephfs', 'scaleIO', 'storageos']) add('Secret', v[source]?.secretRef?.name);
    for (const s of v.projected?.sources ?? []) {
      add('Secret', s.secret?.name);
      add('ConfigMap', s.configMap?.name);
    }
  }
  for (const c of [...(spec.containers ?? []), ...(spec.initContainers ?? []), ...(spec.ephemeralContainers ?? [])]) {
    for (const e of c.env ?? []) {
      add('ConfigMap', e.valueFrom?.configMapKeyRef?.name);
      add('Secret', e.valueFrom?.secretKeyRef?.name);
    }
    for (const e of c.envFrom ?? []) {
      add('ConfigMap', e.configMapRef?.name);
      add('Secret', e.secretRef?.name);
    }
  }
  for (const s of spec.imagePullSecrets ?? []) add('Secret', s.name);
  add('ServiceAccount', spec.serviceAccountName || spec.serviceAccount);
  add('Service', spec.subdomain);
  return out;
}

function stringsIn(v: unknown, out: string[] = []): string[] {
  if (typeof v === 'string') out.push(v);
  else if (Array.isArray(v)) for (const x of v) stringsIn(x, out);
  else if (v && typeof v === 'object') for (const x of Object.values(v)) stringsIn(x, out);
  return out;
}

const keys = (refs: [string, string][]) => [...new Set(refs.map(([k, n]) => `${k}/${n}`))].sort();

describe('Translator.pod (property tests)', () => {
  it('leaves no tenant reference on the host pod: each is translated where the host may have one, or dropped', () => {
    fc.assert(fc.property(pod, (p) => {
      const ns = p.metadata.namespace!;
      const host = t.pod(p);
      const hostRefs = referencesAt(host.spec as Json);
      const raw = new Set(stringsIn(p.spec).filter((s) => s.startsWith('ref-')));
      const onHost = stringsIn(host).filter((s) => s.startsWith('ref-'));

      // No raw name anywhere, and a marker only where a reference may be.
      expect(onHost.filter((s) => raw.has(s))).toEqual([]);
      expect([...new Set(onHost)].sort()).toEqual([...new Set(hostRefs.map(([, n]) => n))].sort());
      // Each kept reference is the translated name of one at the same kind of place in the tenant pod.
      expect(keys(hostRefs)).toEqual(keys(referencesAt(p.spec as Json).map(([k, n]) => [k, t.name(ns, n, k)])));
    }), { numRuns: 500 });
  });

  it('drops what names host-wide or tenant-only objects: tokens, trust bundles, certificates, DRA claims, workloads, claim sources', () => {
    fc.assert(fc.property(pod, (p) => {
      const spec = t.pod(p).spec as Json;
      for (const v of spec.volumes) {
        for (const s of v.projected?.sources ?? []) expect(Object.keys(s)).toSatisfy((k: string[]) => k.length === 1 && ['configMap', 'secret', 'downwardAPI'].includes(k[0]!));
        const claim = v.ephemeral?.volumeClaimTemplate?.spec;
        if (claim) for (const f of ['volumeName', 'selector', 'dataSource', 'dataSourceRef']) expect(claim).not.toHaveProperty(f);
      }
      for (const f of ['resourceClaims', 'workloadRef', 'serviceAccount', 'somethingNew']) expect(spec).not.toHaveProperty(f);
      expect(spec.resources?.claims).toBeUndefined();
      // Pod affinity names namespaces, not objects: it stays, over this tenant's twins only (pod-scheduling.ts).
      const term = spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0];
      expect(term).not.toHaveProperty('namespaces');
      expect(term.labelSelector.matchLabels['kplex.dev/tenant']).toBe(TENANT);
      for (const c of [...spec.containers, ...spec.initContainers, ...spec.ephemeralContainers]) {
        expect(c.resources.claims).toBeUndefined();
        expect(c).not.toHaveProperty('somethingNew');
        expect(c.volumeMounts.map((m: Json) => m.name)).toEqual(['vol-0']);
      }
      expect(spec.automountServiceAccountToken).toBe(false);
    }), { numRuns: 300 });
  });

  it('mirrors first exactly the ConfigMaps and Secrets (and the ServiceAccount) the host pod names', () => {
    fc.assert(fc.property(pod, (p) => {
      const ns = p.metadata.namespace!;
      const named = (tr: Translator) => referencesAt(tr.pod(p).spec as Json, !!tr.access).filter(([k]) => k === 'ConfigMap' || k === 'Secret' || k === 'ServiceAccount');
      const first = prerequisitesOf(p).map((r): [string, string] => [r.kind, t.name(ns, r.name, r.kind)]);
      // The pod's token Secret is kplex's, written with it (its companion), not a tenant object.
      expect(keys(first)).toEqual(keys(named(withAccess).filter(([, name]) => !name.startsWith('kplex-token-'))));
      // Without API access the host pod names less: only the API volume's CA is mirrored for nothing.
      const without = new Set(keys(named(t)));
      expect([...without].every((k) => keys(first).includes(k))).toBe(true);
      expect(referencesOf('Pod', p).every((r) => r.namespace === ns && r.kind !== ('ServiceAccount' as string))).toBe(true);
    }), { numRuns: 500 });
  });
});
