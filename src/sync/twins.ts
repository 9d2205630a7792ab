import type { Logger } from 'pino';
import pLimit, { type LimitFunction } from 'p-limit';
import type { KubeClient, KubeObject, ResourceRef } from '../k8s/client.js';
import { StatusError } from '../k8s/status.js';
import type { HostNetworks } from './host-networks.js';
import { HostRefused, isRefusal } from './host-refused.js';
import type { ApplyContext, MirroredKind } from './kinds.js';
import { createdAsApplied, type ManagedFieldsEntry } from './managed-fields.js';
import type { HostName } from './names.js';
import type { IssueToken } from './pod-tokens.js';
import type { Translator } from './translate.js';

export const SYNC_FIELD_MANAGER = 'kplex-syncer';

/** Where a writer reads tenant objects (what a new pod needs first) and what it knows of their twins. */
export interface TenantSource {
  /** The tenant object, or undefined while it does not exist. */
  origin(kind: MirroredKind, namespace: string, name: string): Promise<KubeObject | undefined>;
  /** Whether its twin is known to be on the host; absent where twins are not cached (the gateway). */
  hasTwin?(kind: MirroredKind, hostName: HostName): boolean;
  /** The tenant's namespaces (what a pod's namespace selector is resolved against). */
  namespaces(): Promise<KubeObject[]>;
  /** Issues a token of a tenant ServiceAccount (a new pod's companions). */
  issueToken: IssueToken;
}

/**
 * How many requests a tenant's twin writing may have open for what one object needs (its
 * prerequisites, its tokens): a pod naming a thousand Secrets must not send a thousand requests to
 * the shared host at once.
 */
export const REQUESTS_PER_TENANT = 8;

/** One limit per tenant, shared by its twin writers in a process. */
export const tenantRequestLimit = (): LimitFunction => pLimit(REQUESTS_PER_TENANT);

const PRIORITY_CLASSES: ResourceRef = { group: 'scheduling.k8s.io', version: 'v1', resource: 'priorityclasses' };
const SECRETS: ResourceRef = { group: '', version: 'v1', resource: 'secrets' };

/** What a writer may ask about the host beyond the twins themselves. */
export interface HostView {
  networks: Pick<HostNetworks, 'reachable'>;
  /** Every object of a kind on the host, in all namespaces (for kinds `sharedOnHost`). */
  everywhere(kind: MirroredKind): Promise<KubeObject[]>;
}

/** A twin as the host has it after a write, and what the tenant should be told about it. */
export interface Applied {
  twin: KubeObject;
  notice?: string;
}

/**
 * The one writer of one tenant's twins, used by the gateway's inline mirror and by the syncer: it
 * applies a twin (server-side apply, so it is idempotent and repairs drift), with what a new twin
 * needs on the host first; dry-runs one for admission; and tells the host's refusals in the tenant's
 * names. What differs between kinds is in the kinds table (kinds.ts); what differs between the two
 * callers is only where tenant objects are read (`TenantSource`).
 */
export class TwinWriter {
  constructor(
    private readonly host: KubeClient,
    readonly translator: Translator,
    private readonly kinds: readonly MirroredKind[],
    private readonly source: TenantSource,
    private readonly view: HostView,
    private readonly log: Logger,
    /** The tenant's limit on requests for what an object needs (tenantRequestLimit). */
    private readonly limit: LimitFunction = tenantRequestLimit(),
  ) {}

  /** Issues a token of a tenant ServiceAccount, within the tenant's request limit. */
  readonly issueToken: IssueToken = (namespace, account, spec) => this.limit(() => this.source.issueToken(namespace, account, spec));

  nameOf(kind: MirroredKind, namespace: string, name: string): HostName {
    return this.translator.name(namespace, name, kind.kind);
  }

  private ref(kind: MirroredKind, name?: string): ResourceRef {
    return { ...kind.ref, namespace: this.translator.hostNamespace, name };
  }

  /** The twin of a tenant object as the host has it now. */
  find(kind: MirroredKind, origin: KubeObject): Promise<KubeObject | undefined> {
    return this.host.find(this.ref(kind, this.nameOf(kind, origin.metadata.namespace ?? '', origin.metadata.name!)));
  }

  /** Removes a twin, and the Secrets kplex made for it; what depends on it goes in the background. */
  async delete(kind: MirroredKind, hostName: string): Promise<void> {
    await this.host.delete(this.ref(kind, hostName), { propagationPolicy: 'Background' });
    await Promise.all((kind.companionNames?.(hostName) ?? []).map((name) => this.host.delete({ ...SECRETS, namespace: this.translator.hostNamespace, name })));
  }

  /**
   * Writes the twin of `origin`; `twin` is the one the host has, when known. Without one, what the
   * object needs on the host goes first. A twin the host may not keep (`beforeApply` refuses it) goes.
   */
  async apply(kind: MirroredKind, origin: KubeObject, twin?: KubeObject): Promise<Applied> {
    const { origin: from, notice } = await this.prepare(kind, origin, twin).catch(async (err: unknown) => {
      if (twin && err instanceof HostRefused) await this.delete(kind, twin.metadata.name!);
      throw err;
    });
    if (!twin) await Promise.all([this.prerequisites(kind, from, false), this.companions(kind, from, twin)]);
    const desired = kind.toHost(this.translator, from);
    try {
      return { twin: await this.write(desired, kind, origin), notice };
    } catch (err) {
      const instead = err instanceof StatusError && (err.code === 409 || err.code === 422) ? kind.hostChooses?.(desired) : undefined;
      if (!instead) throw err;
      this.log.info({ tenant: this.translator.tenant, kind: kind.kind, name: desired.metadata.name, why: (err as Error).message }, 'the host would not take the twin as asked; it chooses');
      return { twin: await this.write(instead, kind, origin), notice };
    }
  }

  /**
   * A new object's twin made before the tenant stores it (`hostFirst`), so that the tenant stores what
   * the host chose. Undefined when the host has a twin of that name already or will not take this one
   * as asked: the object is stored as sent, and the rules for both sides settle it after.
   */
  async createFirst(kind: MirroredKind, origin: KubeObject): Promise<KubeObject | undefined> {
    const desired = kind.toHost(this.translator, origin);
    let made: KubeObject;
    try {
      made = await this.host.create(this.ref(kind), desired, { fieldManager: SYNC_FIELD_MANAGER });
    } catch (err) {
      // Over the tenant's quota, say: refused before the tenant stores it.
      if (err instanceof StatusError && err.code === 403) throw new HostRefused(err, this.translator, desired, origin);
      if (!(err instanceof StatusError && (err.code === 409 || err.code === 422))) throw err;
      this.log.info({ tenant: this.translator.tenant, kind: kind.kind, name: desired.metadata.name, why: err.message }, 'twin not made first; stored as sent');
      return undefined;
    }
    return this.ownAsApplied(kind, made);
  }

  /**
   * A twin made by create, its fields handed to kplex's server-side apply (managed-fields.ts), so that
   * later writes remove what the tenant drops. Should the host refuse the hand-over, the twin is kept
   * as made: it is still the right twin, and the tenant's write goes on.
   */
  private async ownAsApplied(kind: MirroredKind, made: KubeObject): Promise<KubeObject> {
    const patch = createdAsApplied((made.metadata.managedFields ?? []) as ManagedFieldsEntry[], SYNC_FIELD_MANAGER);
    if (!patch) return made;
    try {
      return await this.host.patch(this.ref(kind, made.metadata.name), patch, 'json');
    } catch (err) {
      if (!(err instanceof StatusError)) throw err;
      this.log.warn({ tenant: this.translator.tenant, kind: kind.kind, name: made.metadata.name, err: err.message }, 'twin made first keeps its fields from the create: later applies will not remove fields the tenant drops');
      return made;
    }
  }

  /**
   * Admission: whether the host would take the twin of an object the tenant is about to store. A
   * refusal by kplex's own check (`beforeApply`) or, for kinds the host judges, by the host's dry-run
   * create of the twin (quota admission checks a dry run without charging it) is a HostRefused; no
   * host rule is copied here. Only a refusal (403) stops the write: anything else about the twin is for
   * the mirror and the syncer to settle.
   */
  async admit(kind: MirroredKind, origin: KubeObject): Promise<void> {
    const { origin: from } = await this.prepare(kind, origin, undefined);
    if (kind.admission?.by !== 'host') return;
    await this.prerequisites(kind, from, true);
    const twin = kind.toHost(this.translator, from);
    const asked = kind.dryRun?.(twin) ?? twin;
    try {
      await this.host.create(this.ref(kind), asked, { dryRun: 'All', fieldManager: SYNC_FIELD_MANAGER });
    } catch (err) {
      if (!(err instanceof StatusError)) throw err;
      if (err.code === 403) throw new HostRefused(err, this.translator, twin, origin);
      this.log.debug({ tenant: this.translator.tenant, kind: kind.kind, namespace: origin.metadata.namespace, name: origin.metadata.name, err: err.message }, 'host dry run did not pass; the mirror will settle it');
    }
  }

  /**
   * What a new twin needs on the host first (a pod's ServiceAccount, ConfigMaps and Secrets), so the
   * host's ServiceAccount admission does not refuse it and a kubelet never starts it without its
   * volumes. One whose twin is there (in the syncer's cache, or on the host) is left as it is: the
   * syncer keeps its content in line. Before a dry run only what is mirrored whoever uses it goes: a
   * ConfigMap for a pod the host then refuses would go for nothing.
   */
  private async prerequisites(kind: MirroredKind, origin: KubeObject, forDryRun: boolean): Promise<void> {
    await Promise.all((kind.prerequisites?.(origin) ?? []).map((r) => this.limit(async () => {
      const needed = this.kinds.find((k) => k.kind === r.kind);
      if (!needed || (forDryRun && needed.onlyWhenUsed)) return;
      const hostName = this.nameOf(needed, r.namespace, r.name);
      // Without a cache (the inline mirror) the host is asked: one read instead of a read of the tenant
      // and a write on the host, on every pod create of a namespace whose ServiceAccount is long there.
      const present = this.source.hasTwin ? this.source.hasTwin(needed, hostName) : (await this.host.find(this.ref(needed, hostName))) !== undefined;
      if (present) return;
      const obj = await this.source.origin(needed, r.namespace, r.name);
      // Not made yet: the pod waits for it, as on any cluster, and the syncer mirrors it once it is.
      if (obj) await this.apply(needed, obj);
    })));
  }

  /** The Secrets kplex makes for a new twin (kinds.ts `companions`), written before it so its kubelet finds them. */
  private async companions(kind: MirroredKind, origin: KubeObject, twin: KubeObject | undefined): Promise<void> {
    if (!kind.companions) return;
    const secrets = await kind.companions(origin, this.context(kind, twin));
    await Promise.all(secrets.map((s) => this.host.apply({ ...SECRETS, namespace: this.translator.hostNamespace, name: s.metadata.name }, s, SYNC_FIELD_MANAGER)));
  }

  /** The object as its twin is written from it (kinds.ts `beforeApply`); a refusal, in the tenant's names. */
  private async prepare(kind: MirroredKind, origin: KubeObject, twin: KubeObject | undefined): Promise<{ origin: KubeObject; notice?: string }> {
    const prepared = await kind.beforeApply?.(origin, this.context(kind, twin));
    if (!prepared) return { origin };
    if ('refused' in prepared) throw new HostRefused(prepared.refused, this.translator, kind.toHost(this.translator, origin), origin);
    return prepared;
  }

  private async write(desired: KubeObject, kind: MirroredKind, origin: KubeObject): Promise<KubeObject> {
    try {
      return await this.host.apply(this.ref(kind, desired.metadata.name), desired, SYNC_FIELD_MANAGER);
    } catch (err) {
      if (isRefusal(err)) throw new HostRefused(err, this.translator, desired, origin);
      throw err;
    }
  }

  private context(kind: MirroredKind, twin: KubeObject | undefined): ApplyContext {
    const t = this.translator;
    return {
      t,
      twin,
      reachable: (ep) => this.view.networks.reachable(ep, t.tenant, t.hostNamespace),
      everywhere: () => this.view.everywhere(kind),
      namespaces: () => this.source.namespaces(),
      hostHasPriorityClass: async (name) => !!(await this.host.find({ ...PRIORITY_CLASSES, name })),
      issueToken: this.issueToken,
    };
  }
}
