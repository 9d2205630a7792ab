import type { IncomingMessage, ServerResponse } from 'node:http';
import { tenantUnavailable } from '../k8s/status.js';
import { readBody } from './body.js';
import type { Authorizer } from './authorize.js';
import type { UserInfo } from './authenticate.js';
import type { Backend } from './backends.js';
import type { RequestInfo, ResourceVerb } from './request-info.js';
import { impersonate, type Identity } from './identity.js';
import { forwardable } from './forward.js';

const MAX_REVIEW_BYTES = 64 * 1024;

interface AccessReview {
  spec?: {
    resourceAttributes?: { namespace?: string; verb?: string; group?: string; version?: string; resource?: string; subresource?: string; name?: string };
    nonResourceAttributes?: { path?: string; verb?: string };
  };
  status?: { allowed?: boolean; denied?: boolean; reason?: string };
}

export const isAccessReview = (info: RequestInfo): boolean =>
  info.isResourceRequest && info.verb === 'create' && info.apiGroup === 'authorization.k8s.io' && info.resource === 'selfsubjectaccessreviews';

/** The request a SelfSubjectAccessReview asks about, as request info. */
export function reviewedRequest(review: AccessReview): RequestInfo | undefined {
  const r = review.spec?.resourceAttributes;
  if (r) {
    return {
      isResourceRequest: true,
      path: '',
      verb: (r.verb ?? '') as ResourceVerb,
      apiPrefix: r.group ? 'apis' : 'api',
      apiGroup: r.group === '*' ? '*' : (r.group ?? ''),
      apiVersion: r.version ?? '',
      namespace: r.namespace ?? '',
      resource: r.resource ?? '',
      subresource: r.subresource ?? '',
      name: r.name ?? '',
      parts: [],
    };
  }
  const n = review.spec?.nonResourceAttributes;
  return n ? { isResourceRequest: false, path: n.path ?? '', verb: n.verb ?? '' } : undefined;
}


/**
 * `kubectl auth can-i` must tell what the gateway would do: a request passes only if the gateway's
 * policy and the tenant's RBAC both allow it. The tenant answers the review for its RBAC (as the
 * identity the request carries, so `--as` is answered for the impersonated user); when the gateway's
 * policy denies, the answer is turned into a denial with the reason.
 */
export async function reviewAccess(req: IncomingMessage, res: ServerResponse, backend: Backend, path: string, user: UserInfo, identity: Identity, authorizer: Authorizer): Promise<void> {
  const body = await readBody(req, MAX_REVIEW_BYTES);
  impersonate(req, identity);
  // The review may come as protobuf; the answer, asked for as JSON, echoes its spec back.
  req.headers.accept = 'application/json';
  let upstream;
  try {
    upstream = await backend.pool.request({ path, method: 'POST', headers: { ...forwardable(req.headers), 'content-length': String(body.length) }, body });
  } catch (err) {
    throw tenantUnavailable(backend.tenant, (err as Error).message);
  }
  let answer = Buffer.from(await upstream.body.arrayBuffer());
  if (upstream.statusCode === 201 || upstream.statusCode === 200) {
    const result = JSON.parse(answer.toString('utf8')) as AccessReview;
    const asked = reviewedRequest(result);
    if (result.status?.allowed && asked && !authorizer.authorize(backend.tenant, user, asked)) {
      result.status = { allowed: false, denied: true, reason: `denied by the kplex gateway policy for role "${user.role}"` };
      answer = Buffer.from(JSON.stringify(result));
    }
  }
  if (res.headersSent) return;
  res.writeHead(upstream.statusCode, { 'content-type': String(upstream.headers['content-type'] ?? 'application/json'), 'content-length': answer.length });
  res.end(answer);
}
