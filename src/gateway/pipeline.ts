import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { forbidden, internalError, notFound, StatusError, tenantUnavailable, writeStatus } from '../k8s/status.js';
import { resourcePath } from '../k8s/client.js';
import { Translator } from '../sync/translate.js';
import { bearerToken, tenantOfToken, type TokenVerifier, type UserInfo } from './authenticate.js';
import type { Authorizer } from './authorize.js';
import type { Backends, Backend } from './backends.js';
import { identityOf, type Identity } from './identity.js';
import { checkAsRequestInfo, impersonated, impersonationChecks, impersonationDenied, requestedImpersonation } from './impersonation.js';
import type { InFlight, Release } from './limits.js';
import type { GatewayMetrics } from './metrics.js';
import { describeDenial, isLongRunning, nameProblem, parseRequestInfo, pathProblem, type RequestInfo, type ResourceRequestInfo } from './request-info.js';
import { endSocket, hostPodPath, isHostPodRequest, tenantWords, type Forward, type Router } from './route.js';
import { isAccessReview, reviewAccess } from './access-review.js';
import { tenantAllows, tenantHas } from './tenant-review.js';
import type { InlineMirror, MirroredWrite } from './mirror.js';

/**
 * The gateway's request pipeline. Every request, plain or upgrade, passes the same stages in this
 * order, each adding one thing to the request's context:
 *
 *   tenant → authenticate → request info → authorize → impersonation → limit → route
 *
 * then it is forwarded where `route` said: the tenant's API server (writes of mirrored kinds through
 * the inline mirror, access reviews answered together with the gateway's policy), or, for pod
 * log/exec/attach/portforward, the mirrored pod on the host. A stage that says no throws a
 * StatusError, answered as a Kubernetes Status by the one handler at the top.
 */

export interface Deps {
  verifier: TokenVerifier;
  authorizer: Authorizer;
  mirror: InlineMirror;
  backends: Backends;
  router: Router;
  metrics: GatewayMetrics;
  inFlight: InFlight;
  log: Logger;
}

/** What the metrics and the log learn about a request as it passes the stages. */
interface Trace {
  /** Set only once a token for the tenant was verified: unauthenticated callers make no new series. */
  tenant: string;
  verb?: string;
  longRunning: boolean;
  release?: Release;
}

interface Incoming {
  req: IncomingMessage;
  trace: Trace;
}
interface WithTenant extends Incoming {
  tenant: string;
  /** The URL below /tenants/NAME: what the tenant's API server is asked. */
  path: string;
}
interface Authenticated extends WithTenant {
  user: UserInfo;
  backend: Backend;
}
interface Described extends Authenticated {
  info: RequestInfo;
}
interface Identified extends Described {
  identity: Identity;
}
type Route =
  | { to: 'tenant' }
  | { to: 'host'; forward: Forward }
  | { to: 'mirror'; write: MirroredWrite; info: ResourceRequestInfo }
  | { to: 'review' };
interface Routed extends Identified {
  route: Route;
}

/** `/tenants/NAME` followed by the tenant's own URL (`/api/v1/pods?watch=1`), or nothing. */
const TENANT_PATH = /^\/tenants\/([a-z0-9](?:[-a-z0-9]*[a-z0-9])?)(?=[/?]|$)(.*)$/;

/**
 * The tenant a request is for: named by the `/tenants/NAME` prefix of the kubeconfig's server URL, or,
 * for paths kubectl sends from the server's root (`kubectl get --raw /api`), the one tenant its token
 * belongs to. Either way the next stage verifies the token for that tenant.
 */
function tenant(ctx: Incoming): WithTenant {
  const url = ctx.req.url ?? '/';
  const m = url.match(TENANT_PATH);
  if (!m) return { ...ctx, tenant: tenantOfToken(bearerToken(ctx.req.headers.authorization)), path: url };
  const rest = m[2]!;
  return { ...ctx, tenant: m[1]!, path: rest.startsWith('/') ? rest : `/${rest}` };
}

async function authenticate(ctx: WithTenant, deps: Deps): Promise<Authenticated> {
  const user = await deps.verifier.verify(bearerToken(ctx.req.headers.authorization), ctx.tenant);
  ctx.trace.tenant = ctx.tenant;
  // Whether a tenant exists is told only to callers holding a valid token for it.
  const backend = deps.backends.get(ctx.tenant);
  if (!backend) throw tenantUnavailable(ctx.tenant, 'it has no ready control plane');
  return { ...ctx, user, backend };
}

function requestInfo(ctx: Authenticated): Described {
  const badPath = pathProblem(ctx.path);
  if (badPath) throw badPath;
  const info = parseRequestInfo(ctx.req.method ?? 'GET', ctx.path);
  const badName = nameProblem(info);
  if (badName) throw badName;
  ctx.trace.verb = info.verb;
  return { ...ctx, info };
}

function authorize(ctx: Described, deps: Deps): Described {
  if (!deps.authorizer.authorize(ctx.tenant, ctx.user, ctx.info)) {
    const info = ctx.info;
    throw forbidden(`${(info.isResourceRequest ? info.resource : info.path) || 'request'} is forbidden: ${describeDenial(ctx.user.name, info)}`, info.isResourceRequest ? { name: info.name || undefined, group: info.apiGroup, kind: info.resource } : undefined);
  }
  return ctx;
}

/**
 * `kubectl --as`: allowed only when both the gateway's policy for the token's role and the tenant's RBAC
 * for the token's user allow the impersonation, as kube-apiserver checks it; then the tenant sees the
 * impersonated user. Never silently dropped.
 */
async function impersonation(ctx: Described, deps: Deps): Promise<Identified> {
  const own = identityOf(ctx.user);
  const asked = requestedImpersonation(ctx.req);
  if (!asked) return { ...ctx, identity: own };
  await Promise.all(impersonationChecks(asked).map(async (check) => {
    if (!deps.authorizer.authorize(ctx.tenant, ctx.user, checkAsRequestInfo(check)) || !(await tenantAllows(ctx.backend, own, check))) {
      throw impersonationDenied(ctx.user.name, check);
    }
  }));
  return { ...ctx, identity: impersonated(asked) };
}

function limit(ctx: Identified, deps: Deps): Identified {
  const longRunning = isLongRunning(ctx.info);
  ctx.trace.release = deps.inFlight.acquire(ctx.tenant, ctx.user.name, longRunning);
  ctx.trace.longRunning = longRunning;
  if (longRunning) deps.metrics.openWatches.inc({ tenant: ctx.tenant });
  return ctx;
}

/**
 * Where the request goes. A pod's log/exec/attach/portforward goes to its twin on the host, which the
 * tenant never sees: so the tenant is asked first whether the identity may do it (its RBAC) and whether
 * the pod exists, and the host's refusals are told in the tenant's names.
 */
async function route(ctx: Identified, deps: Deps): Promise<Routed> {
  const info = ctx.info;
  if (!info.isResourceRequest) return { ...ctx, route: { to: 'tenant' } };
  if (isHostPodRequest(info)) {
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
  const write = deps.mirror.writeOf(ctx.tenant, info);
  if (write) return { ...ctx, route: { to: 'mirror', write, info } };
  if (isAccessReview(info)) return { ...ctx, route: { to: 'review' } };
  return { ...ctx, route: { to: 'tenant' } };
}

/** The stages, in order: one list for plain requests and upgrades alike. */
async function stages(ctx: Incoming, deps: Deps): Promise<Routed> {
  const described = authorize(requestInfo(await authenticate(tenant(ctx), deps)), deps);
  return route(limit(await impersonation(described, deps), deps), deps);
}

const tenantForward = (ctx: Routed): Forward => ({ backend: ctx.backend, path: ctx.path, identity: ctx.identity, longRunning: ctx.trace.longRunning });

function logFailure(deps: Deps, req: IncomingMessage, trace: Trace, err: unknown): StatusError {
  if (err instanceof StatusError) return err;
  deps.log.error({ tenant: trace.tenant, verb: trace.verb, path: req.url, err: (err as Error).message }, 'request failed');
  return internalError((err as Error).message);
}

export async function handleRequest(req: IncomingMessage, res: ServerResponse, deps: Deps): Promise<void> {
  const start = process.hrtime.bigint();
  const trace: Trace = { tenant: '', longRunning: false };
  res.once('close', () => {
    trace.release?.();
    const verb = trace.verb ?? (req.method ?? 'get').toLowerCase();
    deps.metrics.requests.inc({ tenant: trace.tenant, verb, code: String(res.statusCode) });
    if (trace.longRunning) deps.metrics.openWatches.dec({ tenant: trace.tenant });
    else deps.metrics.latency.observe({ tenant: trace.tenant, verb }, Number(process.hrtime.bigint() - start) / 1e9);
  });
  try {
    const ctx = await stages({ req, trace }, deps);
    const r = ctx.route;
    if (r.to === 'host') await deps.router.web(req, res, r.forward);
    else if (r.to === 'mirror') await deps.mirror.forward(req, res, ctx.backend, ctx.path, ctx.identity, r.write, r.info);
    else if (r.to === 'review') await reviewAccess(req, res, ctx.backend, ctx.path, ctx.user, ctx.identity, deps.authorizer);
    else await deps.router.web(req, res, tenantForward(ctx));
  } catch (err) {
    writeStatus(res, logFailure(deps, req, trace, err));
  }
}

/** Upgrades (exec, attach, port-forward over SPDY or WebSocket) pass the same stages before the socket is handed on. */
export async function handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, deps: Deps): Promise<void> {
  const trace: Trace = { tenant: '', longRunning: false };
  let code = 101;
  try {
    const ctx = await stages({ req, trace }, deps);
    await deps.router.upgrade(req, socket, head, ctx.route.to === 'host' ? ctx.route.forward : tenantForward(ctx));
  } catch (err) {
    const status = logFailure(deps, req, trace, err).toStatus();
    code = status.code;
    endSocket(socket, status);
  } finally {
    trace.release?.();
    deps.metrics.requests.inc({ tenant: trace.tenant, verb: trace.verb ?? 'get', code: String(code) });
    if (trace.longRunning) deps.metrics.openWatches.dec({ tenant: trace.tenant });
  }
}
