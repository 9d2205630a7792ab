import type { IncomingMessage } from 'node:http';
import type { Dispatcher } from 'undici';
import { resourcePath, type KubeObject } from '../k8s/client.js';
import { StatusError, tenantUnavailable } from '../k8s/status.js';
import { tokenOf, tokenRequest } from '../sync/pod-tokens.js';
import type { TenantSource } from '../sync/twins.js';
import type { Backend } from './backends.js';
import { forwardable } from './forward.js';

/**
 * Sends a write's body to the tenant's API server with the request's headers (its impersonation
 * included). The answer is read by the gateway (to admit or mirror the object), so JSON is asked for
 * whatever the client prefers; clients accept it.
 */
export async function sendToTenant(req: IncomingMessage, backend: Backend, path: string, body: Buffer): Promise<Dispatcher.ResponseData> {
  const headers = { ...forwardable(req.headers), accept: 'application/json', 'content-length': String(body.length) };
  try {
    return await backend.pool.request({ path, method: req.method as Dispatcher.HttpMethod, headers, body });
  } catch (err) {
    throw tenantUnavailable(backend.tenant, (err as Error).message);
  }
}

export const isDryRun = (path: string): boolean => new URLSearchParams(path.split('?')[1] ?? '').has('dryRun');
export const withDryRun = (path: string): string => `${path}${path.includes('?') ? '&' : '?'}dryRun=All`;

/**
 * The object as the tenant would store it (its defaults, LimitRanges and webhooks applied), from the
 * tenant's dry run of the write; the tenant's refusal (RBAC, validation, pod security) is its answer.
 */
export async function tenantDryRun(req: IncomingMessage, backend: Backend, path: string, body: Buffer): Promise<KubeObject> {
  const answer = await sendToTenant(req, backend, withDryRun(path), body);
  const text = await answer.body.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw tenantUnavailable(backend.tenant, `its dry run answered ${answer.statusCode} with no JSON`);
  }
  if (answer.statusCode >= 300) throw StatusError.fromStatus(parsed, answer.statusCode);
  return parsed as KubeObject;
}

/**
 * Tenant objects as a twin writer reads them in the gateway (what a new pod needs on the host first):
 * from the tenant's API server with the gateway's own credential, since a user may create a pod that
 * uses a Secret without being allowed to read it, as in any cluster.
 */
export const tenantReader = (backend: Backend): TenantSource => {
  const read = async (path: string, what: string): Promise<KubeObject | undefined> => {
    let answer: Dispatcher.ResponseData;
    try {
      answer = await backend.pool.request({ path, method: 'GET', headers: { accept: 'application/json' } });
    } catch (err) {
      throw tenantUnavailable(backend.tenant, (err as Error).message);
    }
    const text = await answer.body.text();
    if (answer.statusCode === 404) return undefined;
    if (answer.statusCode >= 300) throw new Error(`reading ${what} from the tenant: ${answer.statusCode} ${text}`);
    return JSON.parse(text) as KubeObject;
  };
  return {
    origin: (kind, namespace, name) => read(resourcePath({ ...kind.ref, namespace, name }), `${kind.kind} ${namespace}/${name}`),
    async namespaces() {
      const list = await read(resourcePath({ group: '', version: 'v1', resource: 'namespaces' }), 'namespaces');
      return ((list as { items?: KubeObject[] } | undefined)?.items) ?? [];
    },
    async issueToken(namespace, serviceAccount, spec) {
      const path = resourcePath({ group: '', version: 'v1', resource: 'serviceaccounts', namespace, name: serviceAccount, subresource: 'token' });
      const body = JSON.stringify(tokenRequest(spec));
      let answer: Dispatcher.ResponseData;
      try {
        answer = await backend.pool.request({ path, method: 'POST', headers: { accept: 'application/json', 'content-type': 'application/json' }, body });
      } catch (err) {
        throw tenantUnavailable(backend.tenant, (err as Error).message);
      }
      const text = await answer.body.text();
      if (answer.statusCode >= 300) throw new Error(`issuing a token of ServiceAccount ${namespace}/${serviceAccount}: ${answer.statusCode} ${text.slice(0, 200)}`);
      return tokenOf(JSON.parse(text));
    },
  };
};
