import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { StatusError, internalError, notFound, tenantUnavailable, writeStatus, type Status } from '../k8s/status.js';
import { bearerToken, type TokenVerifier, type UserInfo } from './authenticate.js';
import type { Authorizer } from './authorize.js';
import type { Backends, Backend } from './backends.js';
import type { GatewayMetrics } from './metrics.js';
import { describeDenial, isLongRunning, parseRequestInfo, type RequestInfo } from './request-info.js';
import { hostPodPath, type Router } from './route.js';
import { isAccessReview, reviewAccess } from './access-review.js';
import type { InlineMirror } from './mirror.js';

/**
 * The gateway's request pipeline, in order:
 *   tenant → authenticate → request info → authorize → route (→ admission on the host, mirror)
 * (pod log/exec/attach/portforward are routed to the mirrored pod on the host API server; writes of
 * mirrored kinds are applied to the host before the answer: mirror.ts)
 * (access reviews are answered by the tenant and the gateway's policy together: access-review.ts)
 * Each stage adds one thing to the request's context; a stage that says no throws a StatusError,
 * which is answered as a Kubernetes Status by the one handler at the top.
 */

export interface Deps {
  /** The host API server, reached with the gateway's own credential: pod logs, exec, attach, port-forward. */
  host: Backend;
  verifier: TokenVerifier;
  authorizer: Authorizer;
  mirror: InlineMirror;
  backends: Backends;
  router: Router;
  metrics: GatewayMetrics;
}

interface Incoming {
  req: IncomingMessage;
}
interface WithTenant extends Incoming {
  tenant: string;
  /** The URL below /tenants/NAME: what the tenant's API server is asked. */
  path: string;
  backend: Backend | undefined;
}
interface Authenticated extends WithTenant {
  user: UserInfo;
  backend: Backend;
}
interface Described extends Authenticated {
  info: RequestInfo;
}

/** `/tenants/NAME` followed by the tenant's own URL (`/api/v1/pods?watch=1`), or nothing. */
const TENANT_PATH = /^\/tenants\/([a-z0-9](?:[-a-z0-9]*[a-z0-9])?)(?=[/?]|$)(.*)$/;

function tenant(ctx: Incoming, deps: Deps): WithTenant {
  const url = ctx.req.url ?? '/';
  const m = url.match(TENANT_PATH);
  if (!m) throw notFound('path', url.split('?')[0]!);
  const rest = m[2]!;
  return { ...ctx, tenant: m[1]!, path: rest.startsWith('/') ? rest : `/${rest}`, backend: deps.backends.get(m[1]!) };
}

async function authenticate(ctx: WithTenant, deps: Deps): Promise<Authenticated> {
  const user = await deps.verifier.verify(bearerToken(ctx.req.headers.authorization), ctx.tenant);
  // Whether a tenant exists is told only to callers holding a valid token for it.
  if (!ctx.backend) throw tenantUnavailable(ctx.tenant, 'it has no ready control plane');
  return { ...ctx, user, backend: ctx.backend };
}

function requestInfo(ctx: Authenticated): Described {
  return { ...ctx, info: parseRequestInfo(ctx.req.method ?? 'GET', ctx.path) };
}

function authorize(ctx: Described, deps: Deps): Described {
  if (!deps.authorizer.authorize(ctx.tenant, ctx.user, ctx.info)) {
    const info = ctx.info;
    throw new StatusError(403, 'Forbidden', `${(info.isResourceRequest ? info.resource : info.path) || 'request'} is forbidden: ${describeDenial(ctx.user.name, info)}`, info.isResourceRequest ? { name: info.name || undefined, group: info.apiGroup, kind: info.resource } : undefined);
  }
  return ctx;
}

const verbOf = (ctx: Incoming & Partial<Described>): string => ctx.info?.verb ?? (ctx.req.method ?? 'get').toLowerCase();

export async function handleRequest(req: IncomingMessage, res: ServerResponse, deps: Deps): Promise<void> {
  const start = process.hrtime.bigint();
  let ctx: Incoming & Partial<Described> = { req };
  let longRunning = false;
  res.once('close', () => {
    const tenantLabel = ctx.tenant ?? '';
    const verb = verbOf(ctx);
    deps.metrics.requests.inc({ tenant: tenantLabel, verb, code: String(res.statusCode) });
    if (longRunning) deps.metrics.openWatches.dec({ tenant: tenantLabel });
    else deps.metrics.latency.observe({ tenant: tenantLabel, verb }, Number(process.hrtime.bigint() - start) / 1e9);
  });
  try {
    const withTenant = tenant(ctx, deps);
    ctx = withTenant;
    const described = authorize(requestInfo(await authenticate(withTenant, deps)), deps);
    ctx = described;
    if (isLongRunning(described.info)) {
      longRunning = true;
      deps.metrics.openWatches.inc({ tenant: described.tenant });
    }
    const onHost = hostPodPath(described.tenant, described.info, described.path);
    const mirrored = deps.mirror.writeOf(described.tenant, described.info);
    if (onHost) await deps.router.web(req, res, deps.host, onHost, undefined);
    else if (mirrored && described.info.isResourceRequest) await deps.mirror.forward(req, res, described.backend, described.path, described.user, mirrored, described.info);
    else if (isAccessReview(described.info)) await reviewAccess(req, res, described.backend, described.path, described.user, deps.authorizer);
    else await deps.router.web(req, res, described.backend, described.path, described.user);
  } catch (err) {
    writeStatus(res, err instanceof StatusError ? err : internalError((err as Error).message));
  }
}

/** Upgrades (exec, attach, port-forward over SPDY or WebSocket) pass the same stages before the socket is handed on. */
export async function handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, deps: Deps): Promise<void> {
  try {
    const described = authorize(requestInfo(await authenticate(tenant({ req }, deps), deps)), deps);
    const onHost = hostPodPath(described.tenant, described.info, described.path);
    if (onHost) deps.router.upgrade(req, socket, head, deps.host, onHost, undefined);
    else deps.router.upgrade(req, socket, head, described.backend, described.path, described.user);
  } catch (err) {
    const status: Status = (err instanceof StatusError ? err : internalError((err as Error).message)).toStatus();
    const body = JSON.stringify(status);
    socket.end(`HTTP/1.1 ${status.code} ${status.reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  }
}
