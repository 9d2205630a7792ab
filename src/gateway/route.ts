import { resourcePath } from '../k8s/client.js';
import { forbidden, notFound } from '../k8s/status.js';
import { Translator } from '../sync/translate.js';
import type { Admitted, Deps, Routed } from './context.js';
import type { Forward } from './forward.js';
import { isAccessReview } from './access-review.js';
import { describeDenial, type ResourceRequestInfo } from './request-info.js';
import { tenantAllows, tenantHas } from './tenant-review.js';

/** Pod subresources served by the mirrored pod on the host (the tenant has no kubelets), with the query parameters each may carry. */
const HOST_POD_SUBRESOURCES: Record<string, readonly string[]> = {
  log: ['container', 'follow', 'previous', 'sinceSeconds', 'sinceTime', 'timestamps', 'tailLines', 'limitBytes', 'stream'],
  exec: ['command', 'container', 'stdin', 'stdout', 'stderr', 'tty'],
  attach: ['container', 'stdin', 'stdout', 'stderr', 'tty'],
  portforward: ['ports'],
};

export const isHostPodRequest = (info: ResourceRequestInfo): boolean =>
  info.apiGroup === '' && info.resource === 'pods' && info.namespace !== '' && info.name !== '' && Object.hasOwn(HOST_POD_SUBRESOURCES, info.subresource);

/**
 * The host URL of a tenant's pod log/exec/attach/portforward request: the mirrored pod in the tenant's
 * host namespace. Built from parts, each encoded, with only the query parameters the subresource
 * defines, so nothing a tenant sends can change which object or subresource the host is asked for.
 */
export function hostPodPath(t: Translator, info: ResourceRequestInfo, url: string): string {
  const q = url.indexOf('?');
  const asked = new URLSearchParams(q >= 0 ? url.slice(q + 1) : '');
  const query = new URLSearchParams();
  for (const key of HOST_POD_SUBRESOURCES[info.subresource] ?? []) for (const v of asked.getAll(key)) query.append(key, v);
  const segments = ['api', 'v1', 'namespaces', t.hostNamespace, 'pods', t.name(info.namespace, info.name, 'Pod'), info.subresource];
  const search = query.toString();
  return `/${segments.map(encodeURIComponent).join('/')}${search ? `?${search}` : ''}`;
}

/** Turns the host's names for a pod back into the tenant's in a refusal's text. */
export function tenantWords(t: Translator, info: ResourceRequestInfo): (text: string) => string {
  const hostName = t.name(info.namespace, info.name, 'Pod');
  return (text) => text.split(hostName).join(info.name).split(t.hostNamespace).join(info.namespace);
}

/**
 * The route stage: where the request goes. A pod's log/exec/attach/portforward goes to its twin on the
 * host, which the tenant never sees: so the tenant is asked first whether the identity may do it (its
 * RBAC) and whether the pod exists, and the host's refusals are told in the tenant's names. Writes of
 * mirrored kinds go through the inline mirror; access reviews are answered with the gateway's policy.
 */
export function route(ctx: Admitted, deps: Deps): Routed | Promise<Routed> {
  const info = ctx.info;
  if (!info.isResourceRequest) return { ...ctx, route: { to: 'tenant' } };
  if (isHostPodRequest(info)) return routeToHost(ctx, deps, info);
  if (ctx.write) return { ...ctx, route: { to: 'mirror', write: ctx.write, info } };
  if (isAccessReview(info)) return { ...ctx, route: { to: 'review' } };
  return { ...ctx, route: { to: 'tenant' } };
}

/** A pod's log/exec/attach/portforward: allowed by the tenant's RBAC, for a pod the tenant has, served by its twin. */
async function routeToHost(ctx: Admitted, deps: Deps, info: ResourceRequestInfo): Promise<Routed> {
  const t = new Translator(ctx.tenant);
  const verb = info.subresource === 'log' ? 'get' : 'create';
  const [allowed, exists] = await Promise.all([
    tenantAllows(ctx.backend, ctx.identity, { verb, group: '', resource: 'pods', subresource: info.subresource, namespace: info.namespace, name: info.name }),
    tenantHas(ctx.backend, resourcePath({ group: '', version: 'v1', resource: 'pods', namespace: info.namespace, name: info.name })),
  ]);
  if (!allowed) throw forbidden(`pods "${info.name}" is forbidden: ${describeDenial(ctx.identity.user, { ...info, verb })}`, { name: info.name, group: '', kind: 'pods' });
  if (!exists) throw notFound('pods', info.name);
  const forward: Forward = { backend: deps.backends.hostFor(ctx.tenant), path: hostPodPath(t, info, ctx.path), identity: undefined, longRunning: true, refusal: tenantWords(t, info) };
  return { ...ctx, route: { to: 'host', forward } };
}
