/**
 * The generated attacks: fast-check arbitraries for every dimension of an attempt (token, tenant path,
 * verb, resource, scope, namespace, name, path tricks, impersonation headers) and the one function that
 * turns an attempt into the exact bytes of an HTTP request plus what the request means (its Semantic).
 */
import fc from 'fast-check';
import { RBAC, WRITES, type Role, type Semantic } from './oracle.js';

/** The two tenants (A attacks, B is the victim) and the host node name. */
export interface World {
  a: string;
  b: string;
  node: string;
}

export const TAMPERED = [
  'bad-signature',
  'alg-none',
  'alg-none-upper',
  'expired',
  'not-yet-valid',
  'unknown-kid',
  'foreign-key-real-kid',
  'wrong-audience',
  'wrong-issuer',
  'hs256-confusion',
  'bad-role',
  'wrong-tenant-uid',
  'other-tenant',
  'garbage',
  'no-token',
] as const;
export type TokenKind = 'valid' | (typeof TAMPERED)[number];

/** User names and group sets of valid tokens: ordinary ones and ones that read like roles or system identities. */
export const USERS = ['mallory', 'role:admin', 'role:edit', 'kplex:admin', 'system:admin', 'admin'] as const;
export const GROUP_SETS: string[][] = [[], ['system:masters'], ['kplex:admin'], ['role:admin']];

export interface TokenChoice {
  kind: TokenKind;
  role: Role;
  user: number;
  groups: number;
  garbage: string;
}

export type Verb =
  | 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete' | 'deletecollection'
  | 'log' | 'exec' | 'attach' | 'portforward' | 'proxy' | 'svcproxy';

/** Pod subresources the gateway serves from the mirrored pod on the host. */
export const HOST_ROUTED = new Set<Verb>(['log', 'exec', 'attach', 'portforward']);
const SUBRESOURCE_VERBS = new Set<Verb>(['log', 'exec', 'attach', 'portforward', 'proxy', 'svcproxy']);
const NAMED = new Set<Verb>(['get', 'update', 'patch', 'delete', 'log', 'exec', 'attach', 'portforward', 'proxy', 'svcproxy']);

export const RESOURCES: Record<string, { group: string; version: string; kind: string; namespaced: boolean | undefined }> = {
  pods: { group: '', version: 'v1', kind: 'Pod', namespaced: true },
  configmaps: { group: '', version: 'v1', kind: 'ConfigMap', namespaced: true },
  secrets: { group: '', version: 'v1', kind: 'Secret', namespaced: true },
  services: { group: '', version: 'v1', kind: 'Service', namespaced: true },
  namespaces: { group: '', version: 'v1', kind: 'Namespace', namespaced: false },
  nodes: { group: '', version: 'v1', kind: 'Node', namespaced: false },
  roles: { group: RBAC, version: 'v1', kind: 'Role', namespaced: true },
  clusterrolebindings: { group: RBAC, version: 'v1', kind: 'ClusterRoleBinding', namespaced: false },
  // No CRD defines it: an unknown resource.
  widgets: { group: 'example.com', version: 'v1', kind: 'Widget', namespaced: undefined },
};

export interface Op {
  verb: Verb;
  resource: string;
  scope: 'namespaced' | 'cluster';
  namespace: string;
  name: string;
  /** exec/attach/portforward: plain HTTP, or an upgrade to WebSocket or SPDY. */
  transport: 'plain' | 'websocket' | 'spdy';
  /** exec/attach/portforward over plain HTTP: GET instead of POST. */
  viaGet: boolean;
  legacyWatch: boolean;
  /** A namespace in the body of a create/update that differs from the path's. */
  bodyNamespace: string | undefined;
}

export type Trick =
  | { kind: 'encoded-separator'; where: 'name' | 'namespace'; enc: string; tail: string }
  | { kind: 'host-injection'; payload: number; slash: string; q: string; dot: string }
  | { kind: 'dot-segment'; form: string; at: number; count: number; extra: string }
  | { kind: 'double-slash'; at: number }
  | { kind: 'invalid-name'; value: string }
  | { kind: 'invalid-namespace'; value: string }
  | { kind: 'tenant-path'; form: number }
  | { kind: 'namespace-query' }
  | { kind: 'resource-case'; all: boolean };

export interface Impersonation {
  user: string | undefined;
  groups: string[];
  uid: boolean;
  extra: boolean;
  frontProxy: boolean;
}

export interface Attempt {
  token: TokenChoice;
  /** A's path, B's path, or no `/tenants/NAME` prefix: the server's root, which is the token's own tenant. */
  pathTenant: 'A' | 'B' | 'root';
  op: Op;
  trick: Trick | undefined;
  impersonation: Impersonation | undefined;
}

const w = <T>(weight: number, arbitrary: fc.Arbitrary<T>) => ({ weight, arbitrary });
const c = <T>(weight: number, value: T) => ({ weight, arbitrary: fc.constant(value) });

export const tokenArb: fc.Arbitrary<TokenChoice> = fc.record({
  kind: fc.oneof(c(30, 'valid' as TokenKind), w(7, fc.constantFrom<TokenKind>(...TAMPERED))),
  role: fc.oneof(c(2, 'admin' as Role), c(3, 'edit' as Role), c(3, 'view' as Role)),
  user: fc.oneof(c(8, 0), w(3, fc.integer({ min: 1, max: USERS.length - 1 }))),
  groups: fc.oneof(c(8, 0), w(2, fc.integer({ min: 1, max: GROUP_SETS.length - 1 }))),
  garbage: fc.oneof(
    fc.stringMatching(/^[A-Za-z0-9._-]{0,60}$/),
    fc.constantFrom('a.b.c', '..', 'null', 'eyJhbGciOiJub25lIn0.e30.', 'Basic YWRtaW46YWRtaW4='),
  ),
});

function namePool(world: World, resource: string): fc.Arbitrary<string> {
  const { a, b, node } = world;
  const scratch = fc.integer({ min: 0, max: 9999 }).map((n) => `atk-new-${n}`);
  const pools: Record<string, string[]> = {
    pods: ['atk-pod', 'atk-pod', 'atk-pod', 'victim-pod', 'victim-pod', `victim-pod-x-default-x-${b}`, `atk-pod-x-default-x-${a}`, `vc-${b}`],
    configmaps: ['atk-cm', 'atk-cm', 'victim-cm', 'kube-root-ca.crt', 'kplex-gateway', `vc-${a}`],
    secrets: ['atk-secret', 'atk-secret', 'victim-secret', `vc-${a}`, `vc-${b}`, 'kplex-signing-keys', `victim-secret-x-default-x-${b}`],
    services: ['atk-svc', 'atk-svc', 'victim-svc', 'kubernetes'],
    namespaces: ['default', 'kube-system', 'vault', `kplex-${a}`, `kplex-${b}`, 'kplex-system'],
    nodes: [node],
    roles: ['atk-role', 'victim-role', 'system:controller:bootstrap-signer'],
    clusterrolebindings: ['cluster-admin', 'kplex:admin:cluster-admin', 'kplex:view:view'],
    widgets: ['w1'],
  };
  return fc.oneof(w(5, fc.constantFrom(...pools[resource]!)), w(1, scratch));
}

const namespaceArb = (world: World): fc.Arbitrary<string> =>
  fc.oneof(c(8, 'default'), w(4, fc.constantFrom('kube-system', 'vault', `kplex-${world.b}`, `kplex-${world.a}`, 'kplex-system')));

const verbArb: fc.Arbitrary<Verb> = fc.oneof(
  c(3, 'get' as Verb), c(2, 'list' as Verb), c(2, 'watch' as Verb), c(2, 'create' as Verb), c(1, 'update' as Verb),
  c(2, 'patch' as Verb), c(2, 'delete' as Verb), c(1, 'deletecollection' as Verb), c(3, 'log' as Verb), c(3, 'exec' as Verb),
  c(1, 'attach' as Verb), c(1, 'portforward' as Verb), c(1, 'proxy' as Verb), c(1, 'svcproxy' as Verb),
);

export const opArb = (world: World): fc.Arbitrary<Op> =>
  verbArb.chain((verb) => {
    const resourceArb = SUBRESOURCE_VERBS.has(verb)
      ? fc.constant(verb === 'svcproxy' ? 'services' : 'pods')
      : fc.constantFrom(...Object.keys(RESOURCES));
    return resourceArb.chain((resource) => {
      const namespaced = RESOURCES[resource]!.namespaced;
      const scopeArb = SUBRESOURCE_VERBS.has(verb)
        ? fc.oneof(c(9, 'namespaced' as const), c(1, 'cluster' as const))
        : namespaced === undefined
          ? fc.constantFrom('namespaced' as const, 'cluster' as const)
          : namespaced
            ? fc.oneof(c(4, 'namespaced' as const), c(1, 'cluster' as const))
            : fc.oneof(c(1, 'namespaced' as const), c(4, 'cluster' as const));
      return fc.record({
        verb: fc.constant(verb),
        resource: fc.constant(resource),
        scope: scopeArb,
        namespace: namespaceArb(world),
        name: namePool(world, resource),
        transport: fc.oneof(c(2, 'plain' as const), c(2, 'websocket' as const), c(1, 'spdy' as const)),
        viaGet: fc.boolean(),
        legacyWatch: fc.oneof(c(4, false), c(1, true)),
        bodyNamespace: fc.oneof(c(6, undefined), w(1, fc.constantFrom(`kplex-${world.b}`, 'kube-system', 'vault'))),
      });
    });
  });

export const INVALID_NAMES = [
  'Atk-Pod', 'VICTIM-POD', 'atk_pod', 'p%C3%B6d', '%D0%B0tk-pod', 'a'.repeat(300), '-atk-pod', 'atk-pod-',
  'atk%20pod', 'atk%25pod', 'victim-pod.', '%E2%80%AEdop-kta', 'atk-pod%0A', 'atk-pod%3Bx',
];
export const INVALID_NAMESPACES = ['Default', 'kplex_victim', 'd%C3%A9fault', 'n'.repeat(64), 'kube.system', '-default', 'default%20', 'KPLEX-VICTIM'];

/** Names that, if a pod log/exec/attach/portforward name reached a host URL unencoded, would leave the tenant's pod. */
export const hostInjections = (world: World): string[] => [
  `../../kplex-${world.b}/pods/victim-pod-x-default-x-${world.b}/log?`,
  `../../kplex-${world.b}/pods/victim-pod-x-default-x-${world.b}/exec?command=true&stdout=true&`,
  `../secrets/vc-${world.a}?`,
  `../../kplex-${world.b}/secrets/vc-${world.b}?`,
  `../../kplex-system/secrets/kplex-signing-keys?`,
  `atk-pod-x-default-x-${world.a}/exec?command=true&stdout=true&`,
  `atk-pod-x-default-x-${world.a}/portforward?ports=80&`,
  `../../../nodes?`,
  `../../../../../api/v1/namespaces/kplex-${world.b}/secrets?`,
  `../../kplex-${world.b}/pods?`,
];

/** Tenant prefixes that try to leave the attacker's tenant or do not name one; `refused` when malformed. */
export const tenantForms = (world: World): { prefix: string; refused: boolean; nonResource?: boolean }[] => [
  { prefix: `/tenants/${world.a}/../${world.b}`, refused: true },
  { prefix: `/tenants/${world.a}/%2e%2e/${world.b}`, refused: true },
  { prefix: `/tenants/${world.a}%2F..%2F${world.b}`, refused: true },
  { prefix: `/tenants/${world.a}/.`, refused: true },
  { prefix: `/tenants/./${world.a}`, refused: true },
  { prefix: `/tenants/${world.b}/../${world.a}`, refused: true },
  { prefix: `/tenants/${world.a}%00`, refused: true },
  { prefix: `/tenants/${world.a}%2F`, refused: true },
  // No valid `/tenants/NAME` prefix: a path from the server's root, for the token's own tenant, where
  // `/tenants/…` is a non-resource path.
  { prefix: `/tenants/${world.a.toUpperCase()}`, refused: false, nonResource: true },
  { prefix: `/tenants//${world.a}`, refused: false, nonResource: true },
  { prefix: `//tenants/${world.a}`, refused: false, nonResource: true },
  { prefix: `/tenants/${world.a}/tenants/${world.b}`, refused: false, nonResource: true },
];

export const trickArb = (world: World): fc.Arbitrary<Trick> =>
  fc.oneof(
    w(3, fc.record({
      kind: fc.constant('encoded-separator' as const),
      where: fc.constantFrom('name' as const, 'namespace' as const),
      enc: fc.constantFrom('%2F', '%2f', '%3F', '%23', '%00', '%252F', '%5C'),
      tail: fc.constantFrom('', 'x', '..', `..%2F..%2Fkplex-${world.b}%2Fpods%2Fvictim-pod-x-default-x-${world.b}`, 'victim-pod'),
    })),
    w(4, fc.record({
      kind: fc.constant('host-injection' as const),
      payload: fc.integer({ min: 0, max: hostInjections(world).length - 1 }),
      slash: fc.constantFrom('%2F', '%2f', '%252F'),
      q: fc.constantFrom('%3F', '%23', '%253F'),
      dot: fc.constantFrom('.', '%2e', '%2E'),
    })),
    w(3, fc.record({
      kind: fc.constant('dot-segment' as const),
      form: fc.constantFrom('..', '%2e%2e', '%2E%2E', '.%2e', '%2e.', '.', '%2e'),
      at: fc.nat(),
      count: fc.integer({ min: 1, max: 3 }),
      extra: fc.constantFrom('', `kplex-${world.b}`, `tenants/${world.b}`, 'secrets'),
    })),
    w(1, fc.record({ kind: fc.constant('double-slash' as const), at: fc.nat() })),
    w(2, fc.record({ kind: fc.constant('invalid-name' as const), value: fc.constantFrom(...INVALID_NAMES) })),
    w(2, fc.record({ kind: fc.constant('invalid-namespace' as const), value: fc.constantFrom(...INVALID_NAMESPACES) })),
    w(2, fc.record({ kind: fc.constant('tenant-path' as const), form: fc.integer({ min: 0, max: tenantForms(world).length - 1 }) })),
    w(2, fc.constant({ kind: 'namespace-query' as const })),
    w(1, fc.record({ kind: fc.constant('resource-case' as const), all: fc.boolean() })),
  );

export const impersonationArb: fc.Arbitrary<Impersonation> = fc.record({
  user: fc.option(fc.constantFrom('system:admin', 'admin', 'kplex:admin', 'role:admin', 'system:serviceaccount:kube-system:default', 'mallory'), { nil: undefined }),
  groups: fc.subarray(['system:masters', 'kplex:admin', 'role:admin', 'system:authenticated']),
  uid: fc.boolean(),
  extra: fc.boolean(),
  frontProxy: fc.boolean(),
});

export const attemptArb = (world: World): fc.Arbitrary<Attempt> =>
  fc.record({
    token: tokenArb,
    pathTenant: fc.oneof(c(8, 'A' as const), c(1, 'B' as const), c(1, 'root' as const)),
    op: opArb(world),
    trick: fc.oneof(c(6, undefined), w(5, trickArb(world))),
    impersonation: fc.oneof(c(5, undefined), w(1, impersonationArb)),
  });

/** The request of an attempt, and what it means. */
export interface Built {
  method: string;
  path: string;
  headers: Record<string, string | string[]>;
  body: string | undefined;
  upgrade: 'websocket' | 'spdy' | undefined;
  /** Watches, logs, proxies: read the answer's beginning only. */
  streaming: boolean;
  semantic: Semantic;
  /** The trick actually applied (some do not apply to some requests). */
  trick: Trick | undefined;
  /** The path is malformed: it must be refused with a 4xx and never forwarded. */
  refusedPath: boolean;
  /** Strings the request carried, which an answer may repeat. */
  echoes: string[];
  verb: Verb;
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function decodeAll(s: string): string {
  let out = s;
  for (let i = 0; i < 3; i++) {
    try {
      const next = decodeURIComponent(out);
      if (next === out) break;
      out = next;
    } catch {
      break;
    }
  }
  return out;
}

/** Is `decoded` a name that the resource's kind can never have (so a path with it is malformed)? */
function invalidNameFor(resource: string, decoded: string): boolean {
  const r = RESOURCES[resource]!;
  // RBAC objects (and, not knowing better, unknown resources) take any path segment name.
  if (r.group === RBAC || r.namespaced === undefined) return decoded.includes('/') || decoded.includes('%') || decoded === '.' || decoded === '..';
  if (resource === 'namespaces') return !(decoded.length <= 63 && DNS_LABEL.test(decoded));
  return !(decoded.length <= 253 && DNS_SUBDOMAIN.test(decoded));
}

const invalidNamespace = (decoded: string): boolean => !(decoded.length <= 63 && DNS_LABEL.test(decoded));

function manifest(op: Op, world: World): Record<string, unknown> {
  const r = RESOURCES[op.resource]!;
  const metadata: Record<string, unknown> = { name: op.name, labels: { attack: 'generated' } };
  const ns = op.bodyNamespace ?? (op.scope === 'namespaced' && r.namespaced !== false ? op.namespace : undefined);
  if (ns && r.namespaced !== false) metadata.namespace = ns;
  const base = { apiVersion: r.group ? `${r.group}/${r.version}` : r.version, kind: r.kind, metadata };
  switch (op.resource) {
    case 'pods':
      return { ...base, spec: { containers: [{ name: 'c', image: 'busybox', env: [{ name: 'X', valueFrom: { secretKeyRef: { name: 'victim-secret', key: 'canary' } } }] }], serviceAccountName: 'default' } };
    case 'configmaps':
      return { ...base, data: { k: 'v' } };
    case 'secrets':
      return { ...base, data: { k: Buffer.from('v').toString('base64') } };
    case 'services':
      return { ...base, spec: { ports: [{ port: 80 }], selector: { app: 'victim' } } };
    case 'nodes':
      return { ...base, metadata: { name: op.name } };
    case 'namespaces':
      return { ...base, metadata: { name: op.name } };
    case 'roles':
      return { ...base, rules: [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }] };
    case 'clusterrolebindings':
      return {
        ...base,
        metadata: { name: op.name },
        roleRef: { apiGroup: RBAC, kind: 'ClusterRole', name: 'cluster-admin' },
        subjects: [{ apiGroup: RBAC, kind: 'Group', name: 'kplex:view' }, { apiGroup: RBAC, kind: 'User', name: `system:serviceaccount:kplex-${world.b}:default` }],
      };
    default:
      return { ...base, spec: {} };
  }
}

interface Seg {
  t: string;
  role: 'prefix' | 'ns' | 'res' | 'name' | 'sub' | 'rest';
}

/** The kube verb an operation is authorized as. */
function kubeVerb(op: Op): string {
  switch (op.verb) {
    case 'log':
    case 'proxy':
    case 'svcproxy':
      return 'get';
    case 'exec':
    case 'attach':
    case 'portforward':
      return op.transport === 'websocket' || (op.transport === 'plain' && op.viaGet) ? 'get' : 'create';
    default:
      return op.verb;
  }
}

/**
 * Builds the request of `attempt`: the op's URL (with `tenantPrefix` before it), then the trick applied
 * to it. `dryRun` asks the API server not to persist an allowed write, so the run leaves the attacker's
 * tenant as it was for the next attempts.
 */
export function build(attempt: Attempt, world: World, opts: { tenantPrefix: string; authorization: string | undefined; dryRun: (semantic: Semantic) => boolean }): Built {
  let op = attempt.op;
  let trick = attempt.trick;
  if (trick?.kind === 'host-injection' && !HOST_ROUTED.has(op.verb)) op = { ...op, verb: 'log', resource: 'pods', scope: 'namespaced', namespace: 'default' };
  if (trick?.kind === 'host-injection') op = { ...op, scope: 'namespaced', namespace: 'default' };
  const r = RESOURCES[op.resource]!;
  const named = NAMED.has(op.verb);
  const sub = op.verb === 'svcproxy' ? 'proxy' : SUBRESOURCE_VERBS.has(op.verb) ? op.verb : '';
  const segs: Seg[] = (r.group ? ['apis', r.group, r.version] : ['api', 'v1']).map((t) => ({ t, role: 'prefix' as const }));
  if (op.verb === 'watch' && op.legacyWatch) segs.push({ t: 'watch', role: 'prefix' });
  const enc = encodeURIComponent;
  if (op.scope === 'namespaced') segs.push({ t: 'namespaces', role: 'prefix' }, { t: enc(op.namespace), role: 'ns' });
  segs.push({ t: op.resource, role: 'res' });
  if (named) segs.push({ t: enc(op.name), role: 'name' });
  if (sub) segs.push({ t: sub, role: 'sub' });
  if (sub === 'proxy') segs.push({ t: '', role: 'rest' });

  const query: string[] = [];
  if (op.verb === 'watch') query.push(...(op.legacyWatch ? [] : ['watch=1']), 'timeoutSeconds=1');
  if (op.verb === 'list') query.push('limit=50');
  if (op.verb === 'log') query.push('tailLines=5');
  if (op.verb === 'exec') query.push('command=true', 'stdout=true', 'stderr=true');
  if (op.verb === 'attach') query.push('stdout=true');
  if (op.verb === 'portforward') query.push('ports=80');

  const semantic: Semantic = {
    nonResource: false,
    verb: kubeVerb(op),
    group: r.group,
    resource: op.resource,
    subresource: sub,
    namespace: op.scope === 'namespaced' ? op.namespace : '',
  };
  let final: Semantic = semantic;
  let prefix = opts.tenantPrefix;
  let refusedPath = false;
  const seg = (role: Seg['role']) => segs.find((s) => s.role === role);

  // Tricks that need a segment the request lacks fall back to one it has, or to none.
  if (trick?.kind === 'invalid-name' && !seg('name')) trick = seg('ns') ? { kind: 'invalid-namespace', value: INVALID_NAMESPACES[trick.value.length % INVALID_NAMESPACES.length]! } : undefined;
  if (trick?.kind === 'encoded-separator' && trick.where === 'name' && !seg('name')) trick = seg('ns') ? { ...trick, where: 'namespace' } : undefined;
  if (trick?.kind === 'encoded-separator' && trick.where === 'namespace' && !seg('ns')) trick = seg('name') ? { ...trick, where: 'name' } : undefined;
  if (trick?.kind === 'invalid-namespace' && !seg('ns')) trick = undefined;

  switch (trick?.kind) {
    case 'encoded-separator': {
      const s = seg(trick.where === 'name' ? 'name' : 'ns')!;
      s.t = `${s.t}${trick.enc}${trick.tail}`;
      refusedPath = true;
      break;
    }
    case 'host-injection': {
      const payload = hostInjections(world)[trick.payload]!;
      seg('name')!.t = payload
        .split('')
        .map((ch) => (ch === '/' ? trick.slash : ch === '?' ? trick.q : ch === '.' ? trick.dot : ch))
        .join('');
      refusedPath = true;
      break;
    }
    case 'dot-segment': {
      const at = 1 + (trick.at % segs.length);
      const inserted: Seg[] = Array.from({ length: trick.count }, () => ({ t: trick.form, role: 'rest' as const }));
      if (trick.extra) inserted.push(...trick.extra.split('/').map((t) => ({ t, role: 'rest' as const })));
      segs.splice(at, 0, ...inserted);
      refusedPath = true;
      break;
    }
    case 'double-slash': {
      const at = 1 + (trick.at % Math.max(1, segs.length - 1));
      segs.splice(at, 0, { t: '', role: 'rest' });
      break;
    }
    case 'invalid-name': {
      seg('name')!.t = trick.value;
      refusedPath = invalidNameFor(op.resource, decodeAll(trick.value));
      break;
    }
    case 'invalid-namespace': {
      seg('ns')!.t = trick.value;
      refusedPath = invalidNamespace(decodeAll(trick.value));
      if (!refusedPath) final = { ...semantic, namespace: decodeAll(trick.value) };
      break;
    }
    case 'tenant-path': {
      const form = tenantForms(world)[trick.form]!;
      prefix = form.prefix;
      refusedPath = form.refused;
      if (form.nonResource) final = { nonResource: true };
      break;
    }
    case 'namespace-query':
      // kube-apiserver takes the namespace from the path only; the query changes nothing it does.
      query.push('namespace=default');
      break;
    case 'resource-case': {
      const s = seg('res')!;
      s.t = trick.all ? s.t.toUpperCase() : s.t[0]!.toUpperCase() + s.t.slice(1);
      break;
    }
    case undefined:
      break;
  }

  const isWrite = !final.nonResource && WRITES.has(final.verb) && !sub;
  if (isWrite && opts.dryRun(final)) query.push('dryRun=All');

  const method = (() => {
    switch (op.verb) {
      case 'create':
        return 'POST';
      case 'update':
        return 'PUT';
      case 'patch':
        return 'PATCH';
      case 'delete':
      case 'deletecollection':
        return 'DELETE';
      case 'exec':
      case 'attach':
      case 'portforward':
        return op.transport === 'websocket' || (op.transport === 'plain' && op.viaGet) ? 'GET' : 'POST';
      default:
        return 'GET';
    }
  })();

  const headers: Record<string, string | string[]> = { accept: 'application/json' };
  if (opts.authorization !== undefined) headers.authorization = opts.authorization;
  let body: string | undefined;
  if (op.verb === 'create' || op.verb === 'update') {
    body = JSON.stringify(manifest(op, world));
    headers['content-type'] = 'application/json';
  } else if (op.verb === 'patch') {
    body = JSON.stringify({ metadata: { labels: { attack: 'generated' } } });
    headers['content-type'] = 'application/merge-patch+json';
  }
  const imp = attempt.impersonation;
  if (imp) {
    if (imp.user !== undefined) headers['impersonate-user'] = imp.user;
    if (imp.groups.length) headers['impersonate-group'] = imp.groups;
    if (imp.uid) headers['impersonate-uid'] = '0';
    if (imp.extra) headers['impersonate-extra-scopes'] = 'cluster-admin';
    if (imp.frontProxy) {
      headers['x-remote-user'] = 'system:admin';
      headers['x-remote-group'] = 'system:masters';
    }
  }
  const upgrade = (op.verb === 'exec' || op.verb === 'attach' || op.verb === 'portforward') && op.transport !== 'plain' ? op.transport : undefined;
  const streaming = op.verb === 'watch' || op.verb === 'log' || sub === 'proxy';
  const path = `${prefix}/${segs.map((s) => s.t).join('/')}${query.length ? `?${query.join('&')}` : ''}`;

  const echoes = new Set<string>([op.name, op.namespace, decodeAll(op.name), ...segs.map((s) => decodeAll(s.t)), ...segs.map((s) => s.t)]);
  echoes.add(decodeAll(path.split('?')[0]!));
  for (const s of segs) for (const part of decodeAll(s.t).split(/[/?#&=\0\\;]/)) echoes.add(part);
  for (const part of decodeAll(prefix).split('/')) echoes.add(part);
  if (op.bodyNamespace) echoes.add(op.bodyNamespace);
  if (body) for (const m of body.match(/"[^"]*"/g) ?? []) echoes.add(m.slice(1, -1));
  for (const q of query) echoes.add(q.split('=')[1] ?? '');

  return { method, path, headers, body, upgrade, streaming, semantic: final, trick, refusedPath, echoes: [...echoes].filter((e) => e.length >= 3), verb: op.verb };
}
