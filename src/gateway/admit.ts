import { badRequest } from '../k8s/status.js';
import type { MirroredKind } from '../sync/kinds.js';
import { readBody } from './body.js';
import type { Admitted, Authorized, Deps } from './context.js';
import type { MirroredWrite } from './mirror.js';
import { impersonate } from './identity.js';
import { isLongRunning, type ResourceRequestInfo } from './request-info.js';
import { isDryRun, tenantDryRun } from './tenant-write.js';

/**
 * Whether a write through the gateway is judged before the tenant stores it (kinds.ts `admission`):
 * by the host only for isolated tenants, since only their host namespace limits twins (a quota, a pod
 * security level); by kplex's own checks for every tenant. A dry run stores nothing and is not judged.
 */
export function judgedBeforeStored(kind: MirroredKind, verb: string, isolated: boolean, path: string): boolean {
  const admission = kind.admission;
  if (!admission?.verbs.includes(verb) || isDryRun(path)) return false;
  return admission.by === 'kplex' || isolated;
}

/**
 * The admit stage: is there room for the request, and would the host take what it writes? It takes an
 * in-flight slot of the tenant and the user (429 when they are full), released when the request ends.
 * A whole-object write of a mirrored kind has its body read here, once, and handed on to the mirror;
 * one that is judged before it is stored is refused (403, in the host's words and the tenant's names)
 * when the tenant's dry run says how it would store the object and the tenant's TwinWriter finds
 * that the host would not take its twin. A tenant whose values cannot be read has no mirrored write
 * admitted (fail closed).
 */
export function admit(ctx: Authorized, deps: Deps): Admitted | Promise<Admitted> {
  const longRunning = isLongRunning(ctx.info);
  ctx.trace.release = deps.inFlight.acquire(ctx.tenant, ctx.user.name, longRunning);
  ctx.trace.longRunning = longRunning;
  if (longRunning) deps.metrics.openWatches.inc({ tenant: ctx.tenant });
  const info = ctx.info;
  const write = deps.mirror.writeOf(ctx.tenant, ctx.backend, info);
  if (!write || !info.isResourceRequest) return ctx;
  // An upgraded connection's body is not the gateway's to read: such a write could be neither judged nor mirrored.
  if (ctx.upgrade) throw badRequest(`a write of ${info.resource} cannot ask for a protocol upgrade`);
  return admitWrite(ctx, deps, write, info);
}

/** A write of a mirrored kind: its body read once, and judged before the tenant stores it where that applies. */
async function admitWrite(ctx: Authorized, deps: Deps, write: MirroredWrite, info: ResourceRequestInfo): Promise<Admitted> {
  const body = await readBody(ctx.req, deps.mirror.maxBodyBytes);
  if (judgedBeforeStored(write.kind, info.verb, write.values.isolate, ctx.path)) {
    impersonate(ctx.req, ctx.identity);
    const stored = await tenantDryRun(ctx.req, ctx.backend, ctx.path, body);
    await write.twins.admit(write.kind, stored);
  }
  return { ...ctx, write: { ...write, body } };
}
