// What to do about one tenant object and its host twin. Pure: the syncer reads the facts, decides
// here and acts; the gateway's inline mirror decides here too after a write it forwarded.
import type { KubeObject } from '../k8s/client.js';
import type { MirroredKind } from './kinds.js';
import { originOf } from './translate.js';

/**
 * A Service made on the host first (so both sides get the host's ClusterIP, cluster-ip.ts) has no
 * origin uid until the gateway has stored its tenant Service. No read tells such a write still in
 * flight from one a gateway abandoned when it died between its two writes, so this one wait stays: an
 * unclaimed twin goes only once the syncer has seen it unclaimed this long, by its own clock, never by
 * comparing the host's creationTimestamp with the local clock.
 */
export const UNCLAIMED_WAIT_MS = 30_000;

export interface Facts {
  /** The tenant object; when only a twin is cached, the tenant was asked itself. */
  origin?: KubeObject;
  twin?: KubeObject;
  /** For kinds mirrored only while used: whether a tenant object uses it (asked of the tenant itself before a twin goes). */
  used: boolean;
  /** How long this same twin has been seen without an origin uid (0 the first time). */
  unclaimedForMs: number;
}

export type Decision =
  /** No twin: write it, with what it needs on the host first. */
  | { act: 'create' }
  /** Write the twin again (idempotent; repairs drift). */
  | { act: 'update' }
  /** The twin stays as it is; `carryBack`: the tenant object takes over its status. */
  | { act: 'leave'; carryBack: boolean }
  | { act: 'delete'; why: 'orphan' | 'unused' | 'earlier origin' | 'origin deleted' }
  /** Look again after `ms`. */
  | { act: 'wait'; ms: number }
  /** The tenant object was deleted and its twin is gone: remove it now (no kubelet in the tenant does). */
  | { act: 'finalize' };

const leave: Decision = { act: 'leave', carryBack: false };

export function decide(kind: MirroredKind, { origin, twin, used, unclaimedForMs }: Facts): Decision {
  if (!origin) {
    if (!twin) return leave;
    if (originOf(twin)?.uid || unclaimedForMs >= UNCLAIMED_WAIT_MS) return { act: 'delete', why: 'orphan' };
    return { act: 'wait', ms: UNCLAIMED_WAIT_MS - unclaimedForMs };
  }
  if (kind.skip?.(origin)) return leave;
  if (kind.onlyWhenUsed && !used) return twin ? { act: 'delete', why: 'unused' } : leave;
  if (origin.metadata.deletionTimestamp && kind.finalizedByTwin) {
    if (!twin) return { act: 'finalize' };
    // Its deletion event brings the object back here.
    return twin.metadata.deletionTimestamp ? leave : { act: 'delete', why: 'origin deleted' };
  }
  if (!twin) return { act: 'create' };
  const how = kind.compare?.(origin, twin) ?? 'update';
  if (how === 'replace') return { act: 'delete', why: 'earlier origin' };
  return how === 'leave' ? { act: 'leave', carryBack: true } : { act: 'update' };
}
