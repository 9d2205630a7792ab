import type { Logger } from 'pino';
import { resourcePath, type KubeClient, type KubeObject, type ResourceRef } from '../k8s/client.js';
import { Informer } from '../k8s/informer.js';
import { StatusError } from '../k8s/status.js';
import type { TenantValues } from '../tenants/values.js';
import { decide, type Decision, type Facts } from './decisions.js';
import { EventSync, recordEvent } from './events.js';
import { HostNetworks } from './host-networks.js';
import { HostRefused } from './host-refused.js';
import { mirroredKinds, type MirroredKind, type TenantChange } from './kinds.js';
import { NodeSync } from './nodes.js';
import { HostClassSync } from './host-classes.js';
import { PRIORITY_CLASS } from './priority-classes.js';
import { STORAGE_CLASS } from './storage-classes.js';
import { VolumeSync } from './volumes.js';
import { TOKEN, tokenAction, type PodAccess } from './pod-access.js';
import { issuePodTokens, tokenOf, tokenRequest } from './pod-tokens.js';
import { backoff, WorkQueue } from './queue.js';
import { Usage, type Reference } from './references.js';
import { ORIGIN, originOf, Translator } from './translate.js';
import { SYNC_FIELD_MANAGER, TwinWriter } from './twins.js';

const RESYNC_MS = 30_000;
/** How often pods' token Secrets are looked at: well inside the shortest token lifetime (10 minutes). */
const TOKEN_CHECK_MS = 60_000;
const RETRY_MS = 1_000;
const MAX_REFUSED_RETRY_MS = 30_000;

const at = (ref: ResourceRef, namespace?: string, name?: string): ResourceRef => ({ ...ref, namespace, name });
const keyOf = (kind: string, ns: string, name: string): string => `${kind}\u0000${ns}\u0000${name}`;
/** Answers that mean "someone else got there first": a newer version, a binding made, an object gone. */
const settled = (codes: number[]) => (err: unknown): void => {
  if (!(err instanceof StatusError && codes.includes(err.code))) throw err;
};

interface KindState {
  kind: MirroredKind;
  tenant: Informer<KubeObject>;
  host: Informer<KubeObject>;
}

/**
 * Keeps one tenant's low-level objects mirrored on the host and carries status back: list + watch on
 * both sides, and for each object one look that reads the facts (both caches, the tenant itself where
 * a cache may be behind), decides (decisions.ts) and acts, writing twins through the tenant's
 * TwinWriter. Level-triggered: events and a periodic resync only say "look at this object again".
 */
export class TenantSyncer {
  readonly translator: Translator;
  private readonly kinds = new Map<string, KindState>();
  private readonly twins: TwinWriter;
  private readonly queue: WorkQueue;
  private readonly nodes: NodeSync;
  private readonly events: EventSync;
  /** Host -> tenant StorageClasses and PVs both ways, when the tenant's values enable them. */
  /** What the tenant takes from the host besides twins' state: host classes, volumes. */
  private readonly fromHost: (HostClassSync | VolumeSync)[] = [];
  private readonly usage = new Usage();
  private readonly networks: HostNetworks;
  /** Every object of the kinds whose claims all host namespaces share (Ingress host names). */
  private readonly everywhere = new Map<string, Informer<KubeObject>>();
  /** The notice last told per key (Endpoints left out), so the tenant is told once per change, not per resync. */
  private readonly notices = new Map<string, string>();
  /** Twins without an origin uid: which host object, and since when (by this process's clock) it was seen so. */
  private readonly unclaimed = new Map<string, { uid: string; since: number }>();
  private resync?: NodeJS.Timeout;
  private tokenCheck?: NodeJS.Timeout;

  /** `access`: how the tenant's pods reach its API server and DNS, when a pod network reaches them (pod-access.ts). */
  constructor(
    readonly tenant: string,
    private readonly tenantClient: KubeClient,
    private readonly host: KubeClient,
    values: TenantValues,
    private readonly log: Logger,
    access?: PodAccess,
  ) {
    const t = (this.translator = new Translator(tenant, access));
    const onError = (err: Error) => log.warn({ tenant, err: err.message }, 'sync watch failed; retrying');
    for (const kind of mirroredKinds(values)) {
      this.kinds.set(kind.kind, {
        kind,
        tenant: new Informer<KubeObject>(tenantClient, kind.ref, {
          onUpsert: (o) => this.tenantChanged(kind, o, this.usage.set(kind.kind, o)),
          onDelete: (o) => this.tenantChanged(kind, o, this.usage.remove(kind.kind, o)),
        }, {}, onError),
        host: new Informer<KubeObject>(host, at(kind.ref, t.hostNamespace), {
          onUpsert: (o) => this.hostChanged(kind, o),
          onDelete: (o) => this.hostChanged(kind, o),
        }, { labelSelector: `${ORIGIN.tenant}=${tenant}` }, onError),
      });
      if (kind.sharedOnHost) this.everywhere.set(kind.kind, new Informer<KubeObject>(host, kind.ref, {}, {}, onError));
    }
    this.networks = new HostNetworks(host, onError);
    this.twins = new TwinWriter(host, t, [...this.kinds.values()].map((k) => k.kind), {
      origin: async (kind, ns, name) => this.kinds.get(kind.kind)?.tenant.get(ns, name),
      hasTwin: (kind, hostName) => !!this.kinds.get(kind.kind)?.host.get(t.hostNamespace, hostName),
      namespaces: async () => (await tenantClient.list({ group: '', version: 'v1', resource: 'namespaces' })).items,
      issueToken: async (namespace, serviceAccount, spec) => tokenOf(await tenantClient.json('POST',
        resourcePath({ group: '', version: 'v1', resource: 'serviceaccounts', namespace, name: serviceAccount, subresource: 'token' }), { body: tokenRequest(spec) })),
    }, {
      networks: this.networks,
      everywhere: async (kind) => this.everywhere.get(kind.kind)?.list() ?? [],
    }, log);
    this.queue = new WorkQueue((key) => this.look(key), (key, err, failures) => this.failed(key, err, failures));
    this.nodes = new NodeSync(tenantClient, host, values, log, tenant);
    this.events = new EventSync(tenantClient, host, t.hostNamespace, (kind, name) => this.kinds.get(kind)?.host.get(t.hostNamespace, name), log);
    if (values.sync.storageClasses.enabled) this.fromHost.push(new HostClassSync(STORAGE_CLASS, tenantClient, host, log, tenant));
    if (values.sync.priorityClasses.enabled) this.fromHost.push(new HostClassSync(PRIORITY_CLASS, tenantClient, host, log, tenant));
    if (values.sync.persistentVolumes.enabled) this.fromHost.push(new VolumeSync(tenantClient, host, t, values.sync.persistentVolumes, log));
  }

  async start(): Promise<void> {
    this.networks.start();
    await Promise.all([...[...this.kinds.values()].flatMap((k) => [k.tenant.start(), k.host.start()]), ...[...this.everywhere.values()].map((i) => i.start())]);
    await this.nodes.start();
    await this.events.start();
    await Promise.all(this.fromHost.map((s) => s.start()));
    this.resyncAll();
    // Looks wait for every cache to be listed: a ConfigMap looks unused until the pods are known.
    this.queue.start();
    this.resync = setInterval(() => this.resyncAll(), RESYNC_MS);
    if (this.translator.access) {
      this.tokenCheck = setInterval(() => {
        this.keepTokens().catch((err: Error) => this.log.warn({ tenant: this.tenant, err: err.message }, 'pod tokens not renewed; will retry'));
      }, TOKEN_CHECK_MS);
    }
  }

  /** Pods' token Secrets: renewed when due (a new token for the same tenant pod), removed once their pod is gone. */
  private async keepTokens(): Promise<void> {
    const pods = this.kinds.get('Pod')!;
    const secrets = { group: '', version: 'v1', resource: 'secrets', namespace: this.translator.hostNamespace };
    const { items } = await this.host.list(secrets, { labelSelector: `${TOKEN.label}=true,${ORIGIN.tenant}=${this.tenant}` });
    for (const secret of items) {
      await this.keepToken(secret, pods).catch((err: Error) => this.log.warn({ tenant: this.tenant, secret: secret.metadata.name, err: err.message }, 'pod token not renewed; will retry'));
    }
  }

  private async keepToken(secret: KubeObject, pods: KindState): Promise<void> {
    const t = this.translator;
    const ref = { group: '', version: 'v1', resource: 'secrets', namespace: t.hostNamespace, name: secret.metadata.name };
    const twin = pods.host.get(t.hostNamespace, secret.metadata.annotations?.[TOKEN.pod] ?? '');
    const d = tokenAction(secret, !!twin, Date.now());
    if (d.act === 'delete') await this.host.delete(ref);
    if (d.act !== 'renew') return;
    const from = originOf(twin!);
    const pod = from && pods.tenant.get(from.namespace, from.name);
    // A pod on its way out keeps its tokens until it goes; its Secret goes with it.
    if (!pod || pod.metadata.uid !== from.uid) return;
    const tokens = await issuePodTokens(pod, this.twins.issueToken);
    if (tokens.length) await this.host.apply(ref, t.tokenSecret(pod, tokens, Date.now()), SYNC_FIELD_MANAGER);
  }

  private resyncAll(): void {
    for (const s of this.fromHost) s.resync();
    for (const k of this.kinds.values()) {
      if (k.kind.runsOnNodes) this.nodes.observe(k.host.list());
      for (const o of k.tenant.list()) this.enqueue(k.kind.kind, o.metadata.namespace ?? '', o.metadata.name!);
      for (const o of k.host.list()) this.hostChanged(k.kind, o);
    }
  }

  private tenantChanged(kind: MirroredKind, o: KubeObject, usesChanged: Reference[]): void {
    for (const r of usesChanged) this.enqueue(r.kind, r.namespace, r.name);
    this.enqueue(kind.kind, o.metadata.namespace ?? '', o.metadata.name!);
  }

  private hostChanged(kind: MirroredKind, twin: KubeObject): void {
    const origin = originOf(twin);
    if (origin) this.enqueue(kind.kind, origin.namespace, origin.name);
  }

  enqueue(kind: string, namespace: string, name: string): void {
    this.queue.add(keyOf(kind, namespace, name));
  }

  /** One look at one object: read, decide, act. */
  private async look(key: string): Promise<void> {
    const [kindName, ns, name] = key.split('\u0000') as [string, string, string];
    const k = this.kinds.get(kindName);
    if (!k) return;
    const facts = await this.read(k, key, ns, name);
    await this.act(k, key, facts, decide(k.kind, facts));
    if (k.kind.runsOnNodes) this.nodes.observe(k.host.list());
  }

  private async read(k: KindState, key: string, ns: string, name: string): Promise<Facts> {
    const t = this.translator;
    const twin = k.host.get(t.hostNamespace, t.name(ns, name, k.kind.kind));
    // A twin can be seen before its tenant object reaches the cache (the gateway's inline mirror):
    // before anything is deleted as an orphan, the tenant is asked itself.
    const origin = k.tenant.get(ns, name) ?? (twin ? await this.tenantClient.find(at(k.kind.ref, ns, name)) : undefined);
    let used = !k.kind.onlyWhenUsed || this.usage.isUsed(k.kind.kind as Reference['kind'], ns, name);
    // The gateway mirrors what a new pod uses right after the pod is stored, maybe before this cache has
    // the pod: before a twin goes as unused, the tenant is asked itself.
    if (!used && twin && origin) used = await this.usedInTenant(k.kind.kind, ns, name);
    const seen = this.unclaimed.get(key);
    const unclaimedForMs = seen && seen.uid === twin?.metadata.uid ? performance.now() - seen.since : 0;
    return { origin, twin, used, unclaimedForMs };
  }

  /** Whether a tenant object of a kind that uses ConfigMaps and Secrets uses this one, asked of the tenant (not the cache). */
  private async usedInTenant(kind: string, ns: string, name: string): Promise<boolean> {
    for (const k of this.kinds.values()) {
      if (!k.kind.uses) continue;
      const { items } = await this.tenantClient.list(at(k.kind.ref, ns));
      if (items.some((o) => k.kind.uses!(o).some((r) => r.kind === kind && r.name === name))) return true;
    }
    return false;
  }

  private async act(k: KindState, key: string, { origin, twin }: Facts, d: Decision): Promise<void> {
    if (d.act === 'wait') {
      if (this.unclaimed.get(key)?.uid !== twin?.metadata.uid) this.unclaimed.set(key, { uid: twin!.metadata.uid!, since: performance.now() });
      this.queue.later(key, d.ms);
      return;
    }
    this.unclaimed.delete(key);
    if (!origin) this.notices.delete(key);
    switch (d.act) {
      case 'delete':
        await this.twins.delete(k.kind, twin!.metadata.name!);
        return;
      case 'finalize':
        await this.finalize(k, origin!);
        return;
      case 'leave':
        if (d.carryBack && twin) await this.carryBack(k, origin!, twin);
        return;
      case 'create':
      case 'update': {
        const written = await this.twins.apply(k.kind, origin!, twin);
        await this.tell(k, key, origin!, written.notice);
        await this.carryBack(k, origin!, written.twin);
      }
    }
  }

  /** Host -> tenant: what the tenant object takes over from its twin (kinds.ts `fromHost`). */
  private async carryBack(k: KindState, origin: KubeObject, twin: KubeObject): Promise<void> {
    for (const c of k.kind.fromHost?.(origin, twin) ?? []) await this.change(k, origin, c);
  }

  private async change(k: KindState, origin: KubeObject, c: TenantChange): Promise<void> {
    const ref = at(k.kind.ref, origin.metadata.namespace, origin.metadata.name);
    switch (c.change) {
      case 'status': {
        // The syncer is the tenant's only writer of these statuses (it has no kubelet), and looks at one
        // object never overlap, so the write needs no resourceVersion: with the cached one it failed
        // whenever the cache was behind (always right after a bind, often after its own last write),
        // and the status waited for the watch to bring the object round again. The uid still guards
        // against writing onto a newer object of the same name (the server refuses a changed uid).
        const { resourceVersion: _stale, ...metadata } = origin.metadata;
        await this.tenantClient.json('PUT', resourcePath({ ...ref, subresource: 'status' }), { body: { ...origin, metadata, status: c.status } }).catch(settled([404]));
        return;
      }
      case 'bind':
        await this.nodes.ensure(c.node);
        await this.tenantClient.json('POST', resourcePath({ ...ref, subresource: 'binding' }), {
          body: { apiVersion: 'v1', kind: 'Binding', metadata: { name: origin.metadata.name, namespace: origin.metadata.namespace }, target: { apiVersion: 'v1', kind: 'Node', name: c.node } },
        }).catch(settled([409]));
        return;
      case 'remake':
        this.log.info({ tenant: this.tenant, kind: k.kind.kind, namespace: origin.metadata.namespace, name: origin.metadata.name }, 'making the tenant object again as its twin is');
        await this.tenantClient.delete(ref);
        await this.tenantClient.create(at(k.kind.ref, origin.metadata.namespace), c.object);
    }
  }

  /** No kubelet in the tenant: once the twin is gone, the deleting tenant object is removed here. */
  private async finalize(k: KindState, origin: KubeObject): Promise<void> {
    await this.tenantClient.json('DELETE', resourcePath(at(k.kind.ref, origin.metadata.namespace, origin.metadata.name)), {
      body: { kind: 'DeleteOptions', apiVersion: 'v1', gracePeriodSeconds: 0, preconditions: { uid: origin.metadata.uid } },
    }).catch(settled([404, 409]));
  }

  /** A notice about a twin (addresses left out) becomes a Warning event on the tenant object, once per change. */
  private async tell(k: KindState, key: string, origin: KubeObject, notice: string | undefined): Promise<void> {
    if ((notice ?? '') === (this.notices.get(key) ?? '')) return;
    if (!notice) {
      this.notices.delete(key);
      return;
    }
    this.notices.set(key, notice);
    await this.warn(k, origin, notice);
  }

  private async warn(k: KindState, origin: KubeObject, message: string): Promise<void> {
    const involved = { ...k.kind.ref, kind: k.kind.kind, namespace: origin.metadata.namespace ?? '', name: origin.metadata.name!, uid: origin.metadata.uid };
    await recordEvent(this.tenantClient, involved, 'HostRefused', message).catch((e: Error) => this.log.debug({ err: e.message }, 'event not recorded'));
  }

  /**
   * A failed look is retried soon, unless the host refused the twin; then the tenant object gets a
   * Warning event saying why (what `kubectl describe` shows), and retries back off, since only a change
   * (freed quota, an edited object, lifted isolation) makes the host say yes.
   */
  private failed(key: string, err: Error, failures: number): number {
    const [kind, namespace, name] = key.split('\u0000') as [string, string, string];
    const about = { tenant: this.tenant, kind, namespace, name, err: err.message };
    if (!(err instanceof HostRefused)) {
      this.log.warn(about, 'sync failed; will retry');
      return RETRY_MS;
    }
    this.log.info({ ...about, failures }, 'the host refused a twin; will retry');
    const k = this.kinds.get(kind);
    const origin = k?.tenant.get(namespace, name);
    if (k && origin) void this.warn(k, origin, `the host cluster refused it: ${err.message}`);
    return backoff(failures, RETRY_MS, MAX_REFUSED_RETRY_MS);
  }

  async stop(): Promise<void> {
    clearInterval(this.resync);
    clearInterval(this.tokenCheck);
    const drained = this.queue.stop();
    await Promise.all([...[...this.kinds.values()].flatMap((k) => [k.tenant.stop(), k.host.stop()]), this.networks.stop(), ...[...this.everywhere.values()].map((i) => i.stop())]);
    await this.nodes.stop();
    await this.events.stop();
    await Promise.all(this.fromHost.map((s) => s.stop()));
    await drained;
  }
}
