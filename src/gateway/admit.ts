import type { Admitted, Authorized, Deps } from './context.js';
import { isLongRunning } from './request-info.js';

/**
 * The admit stage: is there room for the request? It takes an in-flight slot of the tenant and the user
 * (429 when they are full), released when the request ends. The tenant's quota and pod security for
 * pods written through the gateway are judged where the pod is read (the inline mirror, mirror.ts).
 */
export function admit(ctx: Authorized, deps: Deps): Admitted {
  const longRunning = isLongRunning(ctx.info);
  ctx.trace.release = deps.inFlight.acquire(ctx.tenant, ctx.user.name, longRunning);
  ctx.trace.longRunning = longRunning;
  if (longRunning) deps.metrics.openWatches.inc({ tenant: ctx.tenant });
  return ctx;
}
