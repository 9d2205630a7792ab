import type { Logger } from 'pino';
import { core, type KubeClient, type KubeObject } from '../k8s/client.js';
import { Informer } from '../k8s/informer.js';
import { originOf } from './translate.js';

/** The component name kplex's own events carry. */
const SYNC_COMPONENT = 'kplex-syncer';

interface Event extends KubeObject {
  involvedObject?: { kind?: string; name?: string; namespace?: string; uid?: string; apiVersion?: string };
  reason?: string;
  message?: string;
  type?: string;
  count?: number;
  firstTimestamp?: string;
  lastTimestamp?: string;
  source?: { component?: string; host?: string };
  eventTime?: string;
  reportingComponent?: string;
}

/**
 * Copies host events about mirrored objects (scheduling, pulling, failures) to the tenant object they
 * concern, so `kubectl describe` in the tenant tells what happened on the host.
 */
export class EventSync {
  private readonly events: Informer<Event>;
  private readonly copied = new Set<string>();

  constructor(
    private readonly tenantClient: KubeClient,
    host: KubeClient,
    hostNamespace: string,
    /** Finds a mirrored host object by kind and name in the host namespace. */
    private readonly hostObject: (kind: string, name: string) => KubeObject | undefined,
    private readonly log: Logger,
  ) {
    this.events = new Informer<Event>(host, core('events', hostNamespace), { onUpsert: (e) => void this.copy(e) }, {}, (err) => log.warn({ err: err.message }, 'event watch failed'));
  }

  start(): Promise<void> {
    return this.events.start();
  }

  stop(): Promise<void> {
    return this.events.stop();
  }

  private async copy(e: Event): Promise<void> {
    const involved = e.involvedObject;
    if (!involved?.kind || !involved.name) return;
    const hostObj = this.hostObject(involved.kind, involved.name);
    const origin = hostObj && originOf(hostObj);
    if (!origin) return;
    const key = `${e.metadata.uid}/${e.count ?? 1}`;
    if (this.copied.has(key)) return;
    this.copied.add(key);
    const name = `${origin.name}.kplex.${e.metadata.uid?.slice(0, 8)}`;
    // Newer components set only eventTime; kubectl's age column reads the timestamps.
    const when = e.lastTimestamp ?? e.eventTime ?? new Date().toISOString();
    // Tell the tenant's names, not the host's.
    const message = e.message?.split(`${hostObj.metadata.namespace}/${hostObj.metadata.name}`).join(`${origin.namespace}/${origin.name}`);
    const event: Event = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name, namespace: origin.namespace },
      involvedObject: { kind: involved.kind, apiVersion: involved.apiVersion, name: origin.name, namespace: origin.namespace, uid: origin.uid },
      reason: e.reason,
      message,
      type: e.type,
      count: e.count ?? 1,
      firstTimestamp: e.firstTimestamp ?? when,
      lastTimestamp: when,
      source: e.source?.component ? e.source : { component: e.reportingComponent ?? 'host' },
    };
    try {
      const existing = await this.tenantClient.find<Event>(core('events', origin.namespace, name));
      if (existing) await this.tenantClient.update(core('events', origin.namespace, name), { ...existing, count: e.count ?? 1, lastTimestamp: when, message });
      else await this.tenantClient.create(core('events', origin.namespace), event);
    } catch (err) {
      this.copied.delete(key);
      this.log.debug({ err: (err as Error).message }, 'event not copied');
    }
  }
}

/** The tenant object an event of kplex's own is about. */
export interface InvolvedObject {
  group: string;
  version: string;
  kind: string;
  namespace: string;
  name: string;
  uid?: string;
}

/**
 * Records a Warning event about a tenant object, or counts it once more, as Kubernetes components do
 * (one event object per object and reason, with a count and the last time); the kind is in the name
 * since a Pod and a ConfigMap may share one.
 */
export async function recordEvent(client: KubeClient, o: InvolvedObject, reason: string, message: string): Promise<void> {
  const name = `${o.name.slice(0, 200).replace(/[-.]+$/, '')}.kplex-${o.kind.toLowerCase()}-${reason.toLowerCase()}`;
  const now = new Date().toISOString();
  const involvedObject = { apiVersion: o.group ? `${o.group}/${o.version}` : o.version, kind: o.kind, namespace: o.namespace, name: o.name, uid: o.uid };
  const existing = await client.find<Event>(core('events', o.namespace, name));
  if (existing) {
    await client.update(core('events', o.namespace, name), { ...existing, involvedObject, message, count: (existing.count ?? 1) + 1, lastTimestamp: now });
    return;
  }
  await client.create(core('events', o.namespace), {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name, namespace: o.namespace },
    involvedObject,
    reason,
    message,
    type: 'Warning',
    count: 1,
    firstTimestamp: now,
    lastTimestamp: now,
    source: { component: SYNC_COMPONENT },
  } as Event);
}
