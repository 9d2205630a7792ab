/**
 * Request info: what kube-apiserver derives from a method and URL (k8s.io/apiserver
 * pkg/endpoints/request/requestinfo.go), computed the same way so that authorization here and in the
 * tenant's API server judge the same verb and resource.
 *
 * Resource paths:
 *   /api/{version}/{resource}[/{name}[/{subresource}]]                               cluster scope
 *   /api/{version}/namespaces/{namespace}/{resource}[/{name}[/{subresource}]]
 *   /apis/{group}/{version}/…                                                          same shapes
 *   /api/{version}/watch/…, /apis/{group}/{version}/watch/…                            legacy watch
 *   /api/{version}/proxy/…                                                             legacy proxy
 *   /api/{version}/namespaces/{namespace}                                              the namespace itself
 * Anything else (/api, /apis, /apis/{group}, /version, /openapi/v2, /healthz…) is a non-resource
 * request whose verb is the lower-cased method.
 */

import { badRequest, type StatusError } from '../k8s/status.js';
import { isDns1123Label, isDns1123Subdomain, pathSegmentProblem } from '../k8s/validation.js';
import type { Authenticated, Described } from './context.js';

export type ResourceVerb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete' | 'deletecollection' | 'proxy';

export interface ResourceRequestInfo {
  isResourceRequest: true;
  path: string;
  verb: ResourceVerb;
  apiPrefix: 'api' | 'apis';
  apiGroup: string;
  apiVersion: string;
  /** '' for cluster-scoped requests. */
  namespace: string;
  resource: string;
  subresource: string;
  name: string;
  /** The path segments after the subresource (proxy paths). */
  parts: string[];
}

export interface NonResourceRequestInfo {
  isResourceRequest: false;
  path: string;
  /** The lower-cased HTTP method: get, post, put, … */
  verb: string;
}

export type RequestInfo = ResourceRequestInfo | NonResourceRequestInfo;

const NAMESPACE_SUBRESOURCES = new Set(['status', 'finalize']);

const METHOD_VERBS: Record<string, ResourceVerb> = {
  POST: 'create',
  GET: 'get',
  HEAD: 'get',
  PUT: 'update',
  PATCH: 'patch',
  DELETE: 'delete',
};

function nonResource(method: string, path: string): NonResourceRequestInfo {
  return { isResourceRequest: false, path, verb: method.toLowerCase() };
}

/** True when a query parameter is set to a value Go's strconv.ParseBool reads as true. */
const isTrue = (v: string | null): boolean => v !== null && ['1', 't', 'T', 'true', 'TRUE', 'True'].includes(v);

export function parseRequestInfo(method: string, url: string): RequestInfo {
  const q = url.indexOf('?');
  const path = q >= 0 ? url.slice(0, q) : url;
  const query = new URLSearchParams(q >= 0 ? url.slice(q + 1) : '');

  const segments = path.replace(/^\/+|\/+$/g, '').split('/');
  const prefix = segments[0];
  if (prefix !== 'api' && prefix !== 'apis') return nonResource(method, path);
  let parts = segments.slice(1).map(decodeURIComponent);

  let apiGroup = '';
  if (prefix === 'apis') {
    // /apis and /apis/{group} are discovery documents.
    if (parts.length < 3) return nonResource(method, path);
    apiGroup = parts[0]!;
    parts = parts.slice(1);
  } else if (parts.length < 2 || parts[0] === '') {
    // /api and /api/{version} are discovery documents.
    return nonResource(method, path);
  }
  const apiVersion = parts[0]!;
  parts = parts.slice(1);

  let verb: ResourceVerb | undefined = METHOD_VERBS[method.toUpperCase()];
  if (!verb) return nonResource(method, path);

  // Legacy /watch/ and /proxy/ prefixes name the verb.
  if (parts[0] === 'watch' || parts[0] === 'proxy') {
    if (parts.length < 2) return nonResource(method, path);
    verb = parts[0];
    parts = parts.slice(1);
  }

  let namespace = '';
  if (parts[0] === 'namespaces') {
    if (parts.length > 1) {
      namespace = parts[1]!;
      // /namespaces/{ns} is the namespace object itself; /namespaces/{ns}/{status|finalize} its subresources.
      if (parts.length > 2 && !NAMESPACE_SUBRESOURCES.has(parts[2]!)) parts = parts.slice(2);
    }
  }
  // A `namespace` query parameter means nothing to kube-apiserver (only the path names a namespace), so
  // it means nothing here either: judging it would authorize and route what the server never serves.

  const resource = parts[0] ?? '';
  let name = parts[1] ?? '';
  const subresource = parts[2] ?? '';
  const rest = parts.slice(3);

  // A GET without a name is a list, or a watch when asked; a list naming one object by a
  // metadata.name field selector is about that object.
  if (!name && verb === 'get') {
    verb = isTrue(query.get('watch')) ? 'watch' : 'list';
    const exact = query.get('fieldSelector')?.match(/^metadata\.name==?([^,=]+)$/);
    if (exact) name = exact[1]!;
  }
  if (!name && verb === 'delete') verb = 'deletecollection';

  return { isResourceRequest: true, path, verb, apiPrefix: prefix, apiGroup, apiVersion, namespace, resource, subresource, name, parts: rest };
}

/** Requests that stream for as long as the client wants: no timeouts, no buffering. */
export function isLongRunning(info: RequestInfo): boolean {
  if (!info.isResourceRequest) return false;
  if (info.verb === 'watch' || info.verb === 'proxy') return true;
  return ['log', 'exec', 'attach', 'portforward', 'proxy'].includes(info.subresource);
}

/** The kube-apiserver sentence for a denial: `User "u" cannot list resource "pods" in API group "" …`. */
export function describeDenial(user: string, info: RequestInfo): string {
  if (!info.isResourceRequest) return `User "${user}" cannot ${info.verb} path "${info.path}"`;
  const resource = info.subresource ? `${info.resource}/${info.subresource}` : info.resource;
  const scope = info.namespace ? `in the namespace "${info.namespace}"` : 'at the cluster scope';
  return `User "${user}" cannot ${info.verb} resource "${resource}" in API group "${info.apiGroup}" ${scope}`;
}

/**
 * Refuses a URL whose segments could mean something else once decoded: malformed percent-encoding,
 * empty or dot segments, encoded separators, control characters; and a namespace that is not a DNS
 * label. Every name the gateway later puts into a URL has passed here (and is encoded again there).
 */
export function pathProblem(url: string): StatusError | undefined {
  const q = url.indexOf('?');
  const path = q >= 0 ? url.slice(0, q) : url;
  const segments = path.split('/').slice(1);
  if (segments.at(-1) === '') segments.pop();
  for (const raw of segments) {
    let segment: string;
    try {
      segment = decodeURIComponent(raw);
    } catch {
      return badRequest(`the path segment "${raw}" is not valid percent-encoding`);
    }
    if (segment === '') return badRequest(`the path "${path}" has an empty segment`);
    const problem = pathSegmentProblem(segment);
    if (problem) return badRequest(`the path segment ${JSON.stringify(segment)} ${problem}`);
  }
  return undefined;
}

/** Kinds whose names are DNS-1123 labels (kube-apiserver's ValidateNamespaceName, ValidateServiceName …). */
const LABEL_NAMED = new Set(['/namespaces', '/services']);

/** Kinds whose names are DNS-1123 subdomains: the built-in kinds a tenant writes most. */
const SUBDOMAIN_NAMED = new Set([
  ...['pods', 'configmaps', 'secrets', 'serviceaccounts', 'endpoints', 'persistentvolumeclaims', 'persistentvolumes', 'nodes', 'events', 'limitranges', 'resourcequotas', 'replicationcontrollers', 'podtemplates'].map((r) => `/${r}`),
  ...['deployments', 'replicasets', 'statefulsets', 'daemonsets', 'controllerrevisions'].map((r) => `apps/${r}`),
  'batch/jobs', 'batch/cronjobs',
  'networking.k8s.io/ingresses', 'networking.k8s.io/networkpolicies', 'networking.k8s.io/ingressclasses',
  'policy/poddisruptionbudgets', 'autoscaling/horizontalpodautoscalers', 'coordination.k8s.io/leases',
  'discovery.k8s.io/endpointslices', 'storage.k8s.io/storageclasses', 'scheduling.k8s.io/priorityclasses',
  'apiextensions.k8s.io/customresourcedefinitions',
]);

/** The object name in a proxy subresource's name: `[scheme:]name[:port]`. */
function proxiedName(name: string): string {
  const parts = name.split(':');
  return parts.length === 3 ? parts[1]! : parts[0]!;
}

/**
 * Names the request info carries that kube-apiserver would refuse, as a 400; undefined when they are
 * valid. Names of other kinds (RBAC objects allow ':'; custom resources) passed the path-segment rule.
 */
export function nameProblem(info: RequestInfo): StatusError | undefined {
  if (!info.isResourceRequest) return undefined;
  if (info.namespace && !isDns1123Label(info.namespace)) return badRequest(`namespace ${JSON.stringify(info.namespace)} is not a valid namespace name (a DNS-1123 label)`);
  if (!info.name) return undefined;
  const kind = `${info.apiGroup}/${info.resource}`;
  const name = info.subresource === 'proxy' ? proxiedName(info.name) : info.name;
  if (LABEL_NAMED.has(kind) && !isDns1123Label(name)) return badRequest(`${info.resource} name ${JSON.stringify(name)} is not valid (a DNS-1123 label: lower-case letters, digits and '-', at most 63)`);
  if (SUBDOMAIN_NAMED.has(kind) && !isDns1123Subdomain(name)) return badRequest(`${info.resource} name ${JSON.stringify(name)} is not valid (a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', at most 253)`);
  return undefined;
}

/** The request info stage: the URL checked, then read as kube-apiserver reads it. */
export function requestInfo(ctx: Authenticated): Described {
  const badPath = pathProblem(ctx.path);
  if (badPath) throw badPath;
  const info = parseRequestInfo(ctx.req.method ?? 'GET', ctx.path);
  const badName = nameProblem(info);
  if (badName) throw badName;
  ctx.trace.verb = info.verb;
  return { ...ctx, info };
}
