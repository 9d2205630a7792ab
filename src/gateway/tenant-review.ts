import { tenantUnavailable } from '../k8s/status.js';
import type { Backend } from './backends.js';
import type { Identity } from './identity.js';

/** What a SubjectAccessReview asks about (authorization.k8s.io/v1 ResourceAttributes). */
export interface ResourceAttributes {
  verb: string;
  group: string;
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
}

const REVIEW_PATH = '/apis/authorization.k8s.io/v1/subjectaccessreviews';

/**
 * Asks the tenant's API server whether `who` may do `attributes`, with the tenant's own RBAC: for the
 * requests the tenant never sees itself (pod log/exec/attach/port-forward go to the host) and for
 * impersonation. The gateway's credential may create SubjectAccessReviews in every tenant.
 */
export async function tenantAllows(backend: Backend, who: Identity, attributes: ResourceAttributes): Promise<boolean> {
  const review = {
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SubjectAccessReview',
    spec: { user: who.user, groups: who.groups, uid: who.uid, extra: who.extra, resourceAttributes: attributes },
  };
  const body = JSON.stringify(review);
  let answer;
  try {
    answer = await backend.pool.request({
      path: REVIEW_PATH,
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', 'content-length': String(Buffer.byteLength(body)) },
      body,
    });
  } catch (err) {
    throw tenantUnavailable(backend.tenant, (err as Error).message);
  }
  const text = await answer.body.text();
  if (answer.statusCode !== 201 && answer.statusCode !== 200) throw tenantUnavailable(backend.tenant, `access review answered ${answer.statusCode}: ${text.slice(0, 200)}`);
  return (JSON.parse(text) as { status?: { allowed?: boolean } }).status?.allowed === true;
}

/** Whether an object exists in the tenant, asked with the gateway's own credential (authorization is asked separately). */
export async function tenantHas(backend: Backend, path: string): Promise<boolean> {
  let answer;
  try {
    answer = await backend.pool.request({ path, method: 'GET', headers: { accept: 'application/json' } });
  } catch (err) {
    throw tenantUnavailable(backend.tenant, (err as Error).message);
  }
  await answer.body.dump();
  if (answer.statusCode === 200) return true;
  if (answer.statusCode === 404) return false;
  throw tenantUnavailable(backend.tenant, `reading ${path} answered ${answer.statusCode}`);
}
