import type { IncomingMessage } from 'node:http';
import { badRequest, forbidden } from '../k8s/status.js';
import type { ResourceAttributes } from './tenant-review.js';
import type { Identity } from './identity.js';
import { describeDenial, type ResourceRequestInfo } from './request-info.js';

/** What a client asked to act as (`kubectl --as`, `--as-group`, `--as-uid`), from its Impersonate-* headers. */
export interface Requested {
  user: string;
  groups: string[];
  uid?: string;
  extra: Record<string, string[]>;
}

const EXTRA_PREFIX = 'impersonate-extra-';

/**
 * The impersonation a request asks for, undefined when it asks for none. Groups, uid or extras without
 * a user are refused, as kube-apiserver refuses them.
 */
export function requestedImpersonation(req: Pick<IncomingMessage, 'headers' | 'headersDistinct'>): Requested | undefined {
  // Most requests ask for none: look before Node builds the per-header arrays.
  if (!Object.keys(req.headers).some((name) => name.startsWith('impersonate-'))) return undefined;
  const h = req.headersDistinct;
  const user = h['impersonate-user']?.[0];
  const groups = h['impersonate-group'] ?? [];
  const uid = h['impersonate-uid']?.[0];
  const extra: Record<string, string[]> = {};
  for (const [name, values] of Object.entries(h)) {
    if (!name.startsWith(EXTRA_PREFIX) || !values) continue;
    let key: string;
    try {
      key = decodeURIComponent(name.slice(EXTRA_PREFIX.length));
    } catch {
      throw badRequest(`the header ${name} is not valid percent-encoding`);
    }
    extra[key] = values;
  }
  if (user === undefined) {
    if (groups.length || uid !== undefined || Object.keys(extra).length) throw badRequest('impersonating groups, a uid or extra fields requires impersonating a user (Impersonate-User)');
    return undefined;
  }
  if (!user) throw badRequest('Impersonate-User may not be empty');
  return { user, groups, uid, extra };
}

const SERVICE_ACCOUNT = /^system:serviceaccount:([^:]+):([^:]+)$/;

/** The permissions kube-apiserver's impersonation filter checks for a request (verb "impersonate"). */
export function impersonationChecks(r: Requested): ResourceAttributes[] {
  const sa = r.user.match(SERVICE_ACCOUNT);
  const checks: ResourceAttributes[] = [
    sa ? { verb: 'impersonate', group: '', resource: 'serviceaccounts', namespace: sa[1]!, name: sa[2]! } : { verb: 'impersonate', group: '', resource: 'users', name: r.user },
    ...r.groups.map((g) => ({ verb: 'impersonate', group: '', resource: 'groups', name: g })),
  ];
  if (r.uid !== undefined) checks.push({ verb: 'impersonate', group: 'authentication.k8s.io', resource: 'uids', name: r.uid });
  for (const [key, values] of Object.entries(r.extra)) {
    for (const v of values) checks.push({ verb: 'impersonate', group: 'authentication.k8s.io', resource: 'userextras', subresource: key, name: v });
  }
  return checks;
}

/** A check as request info, for the gateway's own policy (the token's role must allow impersonating too). */
export const checkAsRequestInfo = (a: ResourceAttributes): ResourceRequestInfo => ({
  isResourceRequest: true,
  path: '',
  verb: a.verb as ResourceRequestInfo['verb'],
  apiPrefix: a.group ? 'apis' : 'api',
  apiGroup: a.group,
  apiVersion: 'v1',
  namespace: a.namespace ?? '',
  resource: a.resource,
  subresource: a.subresource ?? '',
  name: a.name ?? '',
  parts: [],
});

/** kube-apiserver's refusal of an impersonation: `users "alice" is forbidden: User "bob" cannot impersonate resource "users" …`. */
export const impersonationDenied = (user: string, a: ResourceAttributes) =>
  forbidden(`${a.resource} "${a.name ?? ''}" is forbidden: ${describeDenial(user, checkAsRequestInfo(a))}`, { name: a.name, group: a.group, kind: a.resource });

/** Who the tenant sees once the impersonation is allowed: exactly what was asked for. */
export const impersonated = (r: Requested): Identity => ({ user: r.user, groups: r.groups, uid: r.uid, extra: Object.keys(r.extra).length ? r.extra : undefined });
