/**
 * The security oracle of the generated attacks, written from the rules (DESIGN.md, policies/roles.csv
 * as documented, the issue "Close the isolation holes"), not from the gateway's code: nothing here
 * imports src/gateway. It says what an attempt may get, and finds what an answer must never contain.
 */

export type Role = 'admin' | 'edit' | 'view';

export const RBAC = 'rbac.authorization.k8s.io';

/** How a resource is scoped in Kubernetes; `unknown` for a resource no API server serves (no CRD). */
export type ResourceScope = 'namespaced' | 'cluster' | 'unknown';

export const RESOURCE_SCOPE: Record<string, ResourceScope> = {
  '/pods': 'namespaced',
  '/configmaps': 'namespaced',
  '/secrets': 'namespaced',
  '/services': 'namespaced',
  '/namespaces': 'cluster',
  '/nodes': 'cluster',
  [`${RBAC}/roles`]: 'namespaced',
  [`${RBAC}/clusterrolebindings`]: 'cluster',
};

export const scopeOf = (group: string, resource: string): ResourceScope => RESOURCE_SCOPE[`${group}/${resource}`] ?? 'unknown';

/**
 * What a request means to a Kubernetes API server: the verb it is authorized as, the resource and
 * subresource, and the namespace kube-apiserver computes from the URL path (never from the query).
 */
export type Semantic =
  | { nonResource: true }
  | { nonResource: false; verb: string; group: string; resource: string; subresource: string; namespace: string };

const READS = new Set(['get', 'list', 'watch']);
export const WRITES = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);
/** Pod and service subresources that reach into a workload: never for view. */
const REACHING = new Set(['exec', 'attach', 'portforward', 'proxy']);

/**
 * May a valid token of `role`, on its own tenant's path, be answered 2xx for this request?
 *   admin: anything in its own tenant.
 *   edit: anything namespaced; read namespaces; no RBAC writes; no cluster-scoped writes or reads
 *         (nodes, cluster RBAC); across all namespaces only list/watch of namespaced kinds.
 *   view: get/list/watch of namespaced objects except secrets, read namespaces; no exec, attach,
 *         portforward or proxy; nothing cluster-scoped.
 * Non-resource paths other than discovery are admin's only; discovery is never generated here.
 */
export function roleAllows(role: Role, s: Semantic): boolean {
  if (role === 'admin') return true;
  if (s.nonResource) return false;
  const read = READS.has(s.verb);
  if (s.group === '' && s.resource === 'namespaces') return read && !s.subresource;
  const scope = scopeOf(s.group, s.resource);
  if (scope === 'cluster') return false;
  if (!s.namespace) {
    // A request across all namespaces: only a list or watch of a kind known to be namespaced.
    if (scope === 'unknown') return false;
    if (s.verb !== 'list' && s.verb !== 'watch') return false;
  }
  if (role === 'view') {
    if (!read) return false;
    if (s.group === '' && s.resource === 'secrets') return false;
    return !REACHING.has(s.subresource);
  }
  // edit
  return !(s.group === RBAC && WRITES.has(s.verb));
}

/** What an attempt may get. */
export type Expectation =
  /** The token is not a valid token of the path's tenant: 401, never forwarded. */
  | 'unauthorized'
  /** The path is malformed (encoded separators, dot segments, invalid names): 4xx, never forwarded. */
  | 'refused'
  /** The role does not allow it: anything but 2xx / 101. */
  | 'forbidden'
  /** The role allows it: any answer (still scanned for leaks). */
  | 'allowed';

export function expectation(a: { tokenValidForPath: boolean; refusedPath: boolean; role: Role; semantic: Semantic }): Expectation {
  if (!a.tokenValidForPath) return 'unauthorized';
  if (a.refusedPath) return 'refused';
  return roleAllows(a.role, a.semantic) ? 'allowed' : 'forbidden';
}

export interface Answer {
  /** 0 when no HTTP answer came (connection error, timeout). */
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  upgraded: boolean;
}

/** An answer that comes from a Kubernetes API server (tenant's or host's) carries its audit id or APF headers. */
export const forwarded = (a: Answer): boolean =>
  a.headers['audit-id'] !== undefined || a.headers['x-kubernetes-pf-flowschema-uid'] !== undefined || a.headers['x-kubernetes-pf-prioritylevel-uid'] !== undefined;

export const granted = (a: Answer): boolean => a.upgraded || a.status === 101 || (a.status >= 200 && a.status < 300);

/** Why an answer breaks its expectation, or undefined when it does not. */
export function judge(expect: Expectation, a: Answer, lenient400: boolean): string | undefined {
  if (a.status === 0) return undefined;
  switch (expect) {
    case 'unauthorized': {
      if (granted(a)) return `token not valid for this tenant answered ${a.status}`;
      if (forwarded(a)) return `token not valid for this tenant reached an API server (${a.status})`;
      const ok = lenient400 ? [400, 401, 404] : [401];
      return ok.includes(a.status) ? undefined : `token not valid for this tenant answered ${a.status}, not 401`;
    }
    case 'refused':
      if (granted(a)) return `malformed path answered ${a.status}`;
      if (forwarded(a)) return `malformed path forwarded to an API server (${a.status})`;
      return a.status >= 400 && a.status < 500 ? undefined : `malformed path answered ${a.status}, not 4xx`;
    case 'forbidden':
      return granted(a) ? `forbidden for the role, answered ${a.status}` : undefined;
    case 'allowed':
      return undefined;
  }
}

/** Secrets of the victim and names of the host that no answer to the attacker may contain. */
export interface LeakMarkers {
  /** Exact strings: the victim's canary data (also base64), its objects' uids. */
  secrets: { what: string; value: string }[];
  /** Tenant names whose host namespaces (`kplex-<t>`) and twins (`…-x-<ns>-x-<t>`) must stay hidden. */
  tenants: string[];
}

/**
 * What in `body` must not be there: the victim's canary data, a host namespace of a tenant or the
 * system namespace, a host twin's translated name. A host name the request itself carried (`echoes`,
 * e.g. a name that a 404 repeats) does not count.
 */
export function leaksIn(body: string, echoes: string[], m: LeakMarkers): string[] {
  if (!body) return [];
  const found: string[] = [];
  for (const s of m.secrets) if (body.includes(s.value)) found.push(s.what);
  const echoed = (x: string): boolean => echoes.some((e) => e.includes(x));
  const tenants = m.tenants.map((t) => t.replace(/[^a-z0-9-]/g, '')).join('|');
  for (const match of body.matchAll(new RegExp(`kplex-(?:${tenants}|system)(?![a-z0-9-])`, 'g'))) {
    if (!echoed(match[0])) {
      found.push(`host namespace "${match[0]}"`);
      break;
    }
  }
  const twin = new RegExp(`[a-z0-9.]*-x-[a-z0-9][a-z0-9.-]*-x-(?:${tenants})(?![a-z0-9])|[a-z0-9.-]+-x--[0-9a-f]{12}(?![0-9a-f])`, 'g');
  for (const match of body.matchAll(twin)) {
    if (!echoed(match[0])) {
      found.push(`host twin name "${match[0]}"`);
      break;
    }
  }
  return found;
}

/**
 * Is `name` how a reference of tenant `tenant` in namespace `ns` must look on the host: the translated
 * `<name>-x-<ns>-x-<tenant>`, possibly followed by the `-x--<hash>` of an ambiguous name, or a name cut
 * to its length limit that ends in a hash?
 */
export function isTranslatedRef(name: string, ns: string, tenant: string): boolean {
  const plain = `-x-${ns}-x-${tenant}`;
  if (name.endsWith(plain)) return true;
  if (new RegExp(`${plain.replace(/[.]/g, '\\.')}-x--[0-9a-f]{12}$`).test(name)) return true;
  return name.length >= 230 && /-x--[0-9a-f]{12}$/.test(name);
}
