import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { internalError, StatusError, writeStatus } from '../k8s/status.js';
import { reviewAccess } from './access-review.js';
import { admit } from './admit.js';
import { authenticate } from './authenticate.js';
import { authorize } from './authorize.js';
import type { Deps, Incoming, Routed, Trace } from './context.js';
import { endSocket, type Forward } from './forward.js';
import { requestInfo } from './request-info.js';
import { route } from './route.js';
import { wake } from './wake.js';

/** One step of the pipeline: adds one thing to the request context, or throws a StatusError. */
type Stage<In, Out> = (ctx: In, deps: Deps) => Out | Promise<Out>;

/** Stages composed in order; each `then` is typed by what the previous stage produced. */
class Pipeline<In, Out> {
  private constructor(readonly stages: readonly string[], private readonly steps: readonly Stage<never, unknown>[]) {}

  static start<T>(): Pipeline<T, T> {
    return new Pipeline([], []);
  }

  then<Next>(name: string, stage: Stage<Out, Next>): Pipeline<In, Next> {
    return new Pipeline([...this.stages, name], [...this.steps, stage as Stage<never, unknown>]);
  }

  /**
   * Runs the stages in order. A stage that answers at once (most do, for most requests: nothing to
   * look up) is not awaited, so a request costs no more turns of the event loop than its I/O needs.
   */
  async run(ctx: In, deps: Deps): Promise<Out> {
    let current: unknown = ctx;
    for (const step of this.steps) {
      const next = step(current as never, deps);
      current = next instanceof Promise ? await next : next;
    }
    return current as Out;
  }
}

/**
 * The gateway's request pipeline: every request, plain or upgrade, passes these stages in this order
 * (one file each; `wake` holds a request for a sleeping tenant until it has woken), then is forwarded where `route` said: the tenant's API server (writes of mirrored
 * kinds through the inline mirror, access reviews answered with the gateway's policy), or, for pod
 * log/exec/attach/portforward, the mirrored pod on the host.
 */
export const PIPELINE = Pipeline.start<Incoming>()
  .then('authenticate', authenticate)
  .then('request info', requestInfo)
  .then('wake', wake)
  .then('authorize', authorize)
  .then('admit', admit)
  .then('route', route);

const tenantForward = (ctx: Routed): Forward => ({ backend: ctx.backend, path: ctx.path, identity: ctx.identity, longRunning: ctx.trace.longRunning, watch: ctx.info.verb === 'watch' });

/** A StatusError as it is; anything else becomes a 500 Status, logged once here. */
function failure(deps: Deps, req: IncomingMessage, trace: Trace, err: unknown): StatusError {
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
    const ctx = await PIPELINE.run({ req, trace }, deps);
    const r = ctx.route;
    if (r.to === 'host') await deps.router.web(req, res, r.forward);
    else if (r.to === 'mirror') await deps.mirror.forward(req, res, ctx.backend, ctx.path, ctx.identity, r.write, r.info);
    else if (r.to === 'review') await reviewAccess(req, res, ctx.backend, ctx.path, ctx.user, ctx.identity, deps.authorizer);
    else await deps.router.web(req, res, tenantForward(ctx));
  } catch (err) {
    writeStatus(res, failure(deps, req, trace, err));
  }
}

/** Upgrades (exec, attach, port-forward over SPDY or WebSocket) pass the same stages before the socket is handed on. */
export async function handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, deps: Deps): Promise<void> {
  const trace: Trace = { tenant: '', longRunning: false };
  let code = 101;
  try {
    const ctx = await PIPELINE.run({ req, trace, upgrade: true }, deps);
    await deps.router.upgrade(req, socket, head, ctx.route.to === 'host' ? ctx.route.forward : tenantForward(ctx));
  } catch (err) {
    const status = failure(deps, req, trace, err).toStatus();
    code = status.code;
    endSocket(socket, status);
  } finally {
    trace.release?.();
    deps.metrics.requests.inc({ tenant: trace.tenant, verb: trace.verb ?? 'get', code: String(code) });
    if (trace.longRunning) deps.metrics.openWatches.dec({ tenant: trace.tenant });
  }
}
