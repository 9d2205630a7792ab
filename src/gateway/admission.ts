import type { Logger } from 'pino';
import type { KubeClient, KubeObject } from '../k8s/client.js';
import { StatusError } from '../k8s/status.js';
import type { MirroredKind } from '../sync/kinds.js';
import { SYNC_FIELD_MANAGER } from '../sync/syncer.js';
import { HostRefused } from '../sync/host-refused.js';
import type { Translator } from '../sync/translate.js';

/**
 * The admission stage for an isolated tenant's pods (and headless Services) written through the
 * gateway: one whose twin the host namespace would refuse (the tenant's quota, its pod security level,
 * any policy the platform team put there) is refused before the tenant stores it, in the host's words
 * with the tenant's names, as kube-apiserver refuses a pod over quota. The host decides, through a
 * dry-run create of the twin (quota admission checks a dry run without charging it), so no host rule
 * is copied here. Only a refusal (403) stops the write: anything else about the twin is for the mirror
 * and the syncer to settle.
 */
export async function admitOnHost(host: KubeClient, t: Translator, kind: MirroredKind, obj: KubeObject, log: Logger): Promise<void> {
  const twin = kind.toHost(t, obj);
  try {
    await host.create({ ...kind.ref, namespace: t.hostNamespace }, twin, { dryRun: 'All', fieldManager: SYNC_FIELD_MANAGER });
  } catch (err) {
    if (err instanceof StatusError && err.code === 403) throw new HostRefused(err, t, twin, obj);
    log.debug({ tenant: t.tenant, kind: kind.kind, namespace: obj.metadata.namespace, name: obj.metadata.name, err: (err as Error).message }, 'host dry run did not pass; the mirror will settle it');
  }
}
