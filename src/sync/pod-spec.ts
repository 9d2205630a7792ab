// What a tenant pod's spec becomes on the host, as far as the objects it names are concerned. Built from
// allow-lists of the v1 PodSpec (Kubernetes 1.35), so that a field or volume source this code does not
// know is left out rather than passed through: anything a pod names on the host is looked up in the
// tenant's host namespace, next to objects the tenant must not reach (its `vc-NAME` kubeconfig Secret),
// or elsewhere in the host (ServiceAccount tokens, DRA claims).
import { dnsOnHost, tokenKey, withApiEnv, type PodAccess } from './pod-access.js';

type Json = Record<string, unknown>;
const clone = <T>(o: T): T => structuredClone(o);
const asList = (v: unknown): Json[] => (Array.isArray(v) ? (v as Json[]) : []);
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The kinds of object a pod names, each translated like that object's own twin. */
export type PodReferenceKind = 'ConfigMap' | 'Secret' | 'PersistentVolumeClaim' | 'ServiceAccount' | 'Service';

/** Gives a tenant object's host name; referencesOf passes one that records what the host pod names. */
export type Rename = (kind: PodReferenceKind, name: string) => string;

/** Where a reference sits inside a source (a path of keys) and what it names. */
type Refs = readonly (readonly [path: readonly string[], kind: PodReferenceKind])[];

/**
 * Renames each reference in place. A reference that is not a name is removed: the tenant API server
 * validated the pod, so that never happens, and if it did, the host gets no reference rather than an
 * untranslated one.
 */
function renameIn(obj: Json, refs: Refs, rename: Rename): Json {
  for (const [path, kind] of refs) {
    let holder: unknown = obj;
    for (const key of path.slice(0, -1)) holder = isObject(holder) ? holder[key] : undefined;
    const leaf = path[path.length - 1]!;
    if (!isObject(holder) || !(leaf in holder)) continue;
    const name = holder[leaf];
    if (typeof name === 'string' && name) holder[leaf] = rename(kind, name);
    else delete holder[leaf];
  }
  return obj;
}

const SECRET_REF: Refs = [[['secretRef', 'name'], 'Secret']];

/**
 * Every volume source of the v1 API the host pod may have, with the references it holds. Left out, so
 * dropped: `glusterfs` (it names an Endpoints object; its plugin was removed in 1.26), `projected` and
 * `ephemeral` (below), and any source this table does not know. A container that mounts a dropped
 * volume makes the host refuse the pod, which the tenant sees as a HostRefused event: fail closed.
 */
const VOLUME_SOURCES: Record<string, Refs> = {
  hostPath: [],
  emptyDir: [],
  gcePersistentDisk: [],
  awsElasticBlockStore: [],
  gitRepo: [],
  nfs: [],
  downwardAPI: [],
  fc: [],
  vsphereVolume: [],
  quobyte: [],
  azureDisk: [],
  photonPersistentDisk: [],
  portworxVolume: [],
  flocker: [],
  image: [],
  secret: [[['secretName'], 'Secret']],
  configMap: [[['name'], 'ConfigMap']],
  persistentVolumeClaim: [[['claimName'], 'PersistentVolumeClaim']],
  azureFile: [[['secretName'], 'Secret']],
  csi: [[['nodePublishSecretRef', 'name'], 'Secret']],
  iscsi: SECRET_REF,
  rbd: SECRET_REF,
  flexVolume: SECRET_REF,
  cinder: SECRET_REF,
  cephfs: SECRET_REF,
  scaleIO: SECRET_REF,
  storageos: SECRET_REF,
};

/**
 * Projected sources the host pod may have. Left out: `serviceAccountToken` (the host would mint a token
 * of a host ServiceAccount; the tenant's tokens come from the pod's token Secret instead, below),
 * `clusterTrustBundle` and `podCertificate` (host-wide trust material and certificates the host's
 * signers issue), and any source this table does not know.
 */
const PROJECTED_SOURCES: Record<string, Refs> = {
  configMap: [[['name'], 'ConfigMap']],
  secret: [[['name'], 'Secret']],
  downwardAPI: [],
};

/** The first known source of a volume or projection, renamed; undefined when it has none. */
function knownSource(v: Json, table: Record<string, Refs>, rename: Rename): Json | undefined {
  for (const [source, refs] of Object.entries(table)) {
    if (isObject(v[source])) return { [source]: renameIn(clone(v[source]), refs, rename) };
  }
  return undefined;
}

/**
 * A claim spec on the host: the volume it binds (`volumeName`), the volumes it may select (`selector`)
 * and where its data comes from (`dataSource`, `dataSourceRef`) name host or tenant objects, so they go;
 * the host's provisioner makes a new volume of the storage class.
 */
export function claimSpecOnHost(spec: unknown): Json {
  const out = isObject(spec) ? clone(spec) : {};
  delete out.volumeName;
  delete out.selector;
  delete out.dataSource;
  delete out.dataSourceRef;
  return out;
}

/** The pod field a downward API reference reads, as the host pod holds it (Translator: the tenant's name is in an annotation). */
export type FieldPath = (path: string) => string;

/** Every downward API field reference of a translated spec: env of every container, downwardAPI volumes and projections. */
function fieldRefs(spec: Json): Json[] {
  const refs: Json[] = [];
  const items = (source: unknown): void => {
    for (const item of asList(isObject(source) ? source.items : undefined)) if (isObject(item.fieldRef)) refs.push(item.fieldRef);
  };
  for (const v of asList(spec.volumes)) {
    items(v.downwardAPI);
    for (const s of asList(isObject(v.projected) ? v.projected.sources : undefined)) items(s.downwardAPI);
  }
  for (const field of ['initContainers', 'containers', 'ephemeralContainers']) {
    for (const c of asList(spec[field])) {
      for (const e of asList(c.env)) {
        const ref = isObject(e.valueFrom) ? e.valueFrom.fieldRef : undefined;
        if (isObject(ref)) refs.push(ref);
      }
    }
  }
  return refs;
}

/**
 * How the host pod reaches its own tenant (pod-access.ts): the tenant's DNS and API address, and the
 * Secret the pod's tenant-issued tokens are written to. Without it (no pod network reaches the tenant)
 * the pod gets no API access and the host's DNS.
 */
export interface TenantApi {
  access: PodAccess;
  namespace: string;
  tokenSecret: string;
}

/** A token projection as the host pod has it: the n-th token of the pod's token Secret; without API access, none. */
function tokenSource(s: Json, api: TenantApi | undefined, counter: { n: number }): Json | undefined {
  const n = counter.n++;
  if (!api || !isObject(s.serviceAccountToken)) return undefined;
  const path = typeof s.serviceAccountToken.path === 'string' ? s.serviceAccountToken.path : 'token';
  return { secret: { name: api.tokenSecret, items: [{ key: tokenKey(n), path }] } };
}

function volumeOnHost(v: Json, rename: Rename, api: TenantApi | undefined, tokens: { n: number }): Json | undefined {
  const known = knownSource(v, VOLUME_SOURCES, rename);
  if (known) return { name: v.name, ...known };
  if (isObject(v.projected)) {
    const sources = asList(v.projected.sources).flatMap((s) =>
      (isObject(s.serviceAccountToken) ? tokenSource(s, api, tokens) : knownSource(s, PROJECTED_SOURCES, rename)) ?? []);
    const projected: Json = { sources };
    if (v.projected.defaultMode !== undefined) projected.defaultMode = v.projected.defaultMode;
    return { name: v.name, projected };
  }
  if (isObject(v.ephemeral)) {
    const template = isObject(v.ephemeral.volumeClaimTemplate) ? v.ephemeral.volumeClaimTemplate : {};
    const meta = isObject(template.metadata) ? template.metadata : {};
    const metadata: Json = {};
    if (meta.labels) metadata.labels = clone(meta.labels);
    if (meta.annotations) metadata.annotations = clone(meta.annotations);
    return { name: v.name, ephemeral: { volumeClaimTemplate: { metadata, spec: claimSpecOnHost(template.spec) } } };
  }
  return undefined;
}

/** The ways a container's env var gets its value; one this list does not know drops the variable. */
const ENV_SOURCES: Record<string, Refs> = {
  fieldRef: [],
  resourceFieldRef: [],
  fileKeyRef: [],
  configMapKeyRef: [[['name'], 'ConfigMap']],
  secretKeyRef: [[['name'], 'Secret']],
};

const ENV_FROM_SOURCES: Record<string, Refs> = {
  configMapRef: [[['name'], 'ConfigMap']],
  secretRef: [[['name'], 'Secret']],
};

/** Container fields of the v1 API (ephemeral containers add targetContainerName); others are left out. */
const CONTAINER_FIELDS = [
  'name', 'image', 'command', 'args', 'workingDir', 'ports', 'resizePolicy', 'restartPolicy', 'restartPolicyRules',
  'volumeMounts', 'volumeDevices', 'livenessProbe', 'readinessProbe', 'startupProbe', 'lifecycle', 'terminationMessagePath',
  'terminationMessagePolicy', 'imagePullPolicy', 'securityContext', 'stdin', 'stdinOnce', 'tty', 'targetContainerName',
];

/** Resource requirements without `claims`: those name the pod's DRA claims, which are not mirrored. */
function withoutClaims(resources: unknown): Json | undefined {
  if (!isObject(resources)) return undefined;
  const { claims: _claims, ...rest } = clone(resources);
  return rest;
}

function containerOnHost(c: Json, dropMounts: Set<string>, rename: Rename, api: TenantApi | undefined): Json {
  const out: Json = {};
  for (const key of CONTAINER_FIELDS) if (c[key] !== undefined) out[key] = clone(c[key]);
  if (out.volumeMounts) out.volumeMounts = asList(out.volumeMounts).filter((m) => !dropMounts.has(String(m.name)));
  const resources = withoutClaims(c.resources);
  if (resources) out.resources = resources;
  if (c.env !== undefined) {
    out.env = asList(c.env).flatMap((e) => {
      if (e.valueFrom === undefined) return [clone(e)];
      const from = isObject(e.valueFrom) ? knownSource(e.valueFrom, ENV_SOURCES, rename) : undefined;
      return from ? [{ ...clone(e), valueFrom: from }] : [];
    });
  }
  if (c.envFrom !== undefined) {
    out.envFrom = asList(c.envFrom).flatMap((e) => {
      const from = knownSource(e, ENV_FROM_SOURCES, rename);
      return from ? [e.prefix === undefined ? from : { prefix: e.prefix, ...from }] : [];
    });
  }
  if (api) out.env = withApiEnv(out.env, api.access);
  return out;
}

/**
 * PodSpec fields of the v1 API that reach the host as they are, or as rewritten below. Left out:
 * `serviceAccount` (the deprecated alias; the name goes to serviceAccountName), `nodeName`, `priority`
 * and `preemptionPolicy` (the tenant's PriorityClass set them; the host's admission sets them from its
 * own class of that name, and refuses a pod that brings other values), `resourceClaims` (DRA objects of
 * the tenant) and `workloadRef` (a tenant Workload object), and any field not listed. `affinity` and
 * `topologySpreadConstraints` select pods: the Translator writes them over the tenant's twins
 * (pod-scheduling.ts).
 */
const POD_FIELDS = [
  'restartPolicy', 'terminationGracePeriodSeconds', 'activeDeadlineSeconds', 'dnsPolicy', 'nodeSelector', 'hostNetwork',
  'hostPID', 'hostIPC', 'shareProcessNamespace', 'securityContext', 'hostname', 'schedulerName', 'tolerations',
  'hostAliases', 'dnsConfig', 'readinessGates', 'runtimeClassName', 'enableServiceLinks', 'overhead',
  'setHostnameAsFQDN', 'os', 'hostUsers', 'schedulingGates', 'hostnameOverride', 'priorityClassName',
];

/**
 * A tenant pod's spec as its host twin's: every reference to another object renamed through `rename`
 * (ConfigMaps, Secrets, PVCs, the ServiceAccount, the Service of `subdomain`) or dropped; with `api`,
 * the tenant's DNS, API address and tokens (pod-access.ts). Pure; the Translator gives it the naming
 * rule, referencesOf a rename that records what the host pod names.
 */
export function podSpecOnHost(spec: Json, rename: Rename, api?: TenantApi, fieldPath: FieldPath = (p) => p): Json {
  // Without API access the tenant's own API volume (kube-api-access-*: its token, its CA, the
  // namespace) would be a token-less shell pointing at nothing: it goes with its mounts.
  const apiAccess = new Set(api ? [] : asList(spec.volumes).map((v) => String(v.name)).filter((n) => n.startsWith('kube-api-access-')));
  const out: Json = {};
  for (const key of POD_FIELDS) if (spec[key] !== undefined) out[key] = clone(spec[key]);
  const tokens = { n: 0 };
  out.volumes = asList(spec.volumes).filter((v) => !apiAccess.has(String(v.name))).flatMap((v) => volumeOnHost(v, rename, api, tokens) ?? []);
  for (const field of ['initContainers', 'containers', 'ephemeralContainers']) {
    if (spec[field] !== undefined) out[field] = asList(spec[field]).map((c) => containerOnHost(c, apiAccess, rename, api));
  }
  for (const ref of fieldRefs(out)) ref.fieldPath = fieldPath(String(ref.fieldPath));
  if (api) {
    delete out.dnsConfig;
    Object.assign(out, dnsOnHost(spec, api.namespace, api.access));
  }
  const account = spec.serviceAccountName || spec.serviceAccount;
  if (typeof account === 'string' && account) out.serviceAccountName = rename('ServiceAccount', account);
  out.automountServiceAccountToken = false;
  out.imagePullSecrets = asList(spec.imagePullSecrets).flatMap((s) => (typeof s.name === 'string' && s.name ? [{ name: rename('Secret', s.name) }] : []));
  // The host's DNS gives the pod a name under its subdomain's headless Service: the translated one.
  if (typeof spec.subdomain === 'string' && spec.subdomain) out.subdomain = rename('Service', spec.subdomain);
  const resources = withoutClaims(spec.resources);
  if (resources) out.resources = resources;
  return out;
}
