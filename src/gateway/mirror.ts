import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import type { Logger } from 'pino';
import { KubeClient, type ClusterAccess, type KubeObject } from '../k8s/client.js';
import { Informer } from '../k8s/informer.js';
import { badRequest, tenantUnavailable } from '../k8s/status.js';
import { decide } from '../sync/decisions.js';
import { HostNetworks } from '../sync/host-networks.js';
import { HostRefused } from '../sync/host-refused.js';
import { kindOfResource, mirroredKinds, type MirroredKind } from '../sync/kinds.js';
import { Translator } from '../sync/translate.js';
import { tenantRequestLimit, TwinWriter } from '../sync/twins.js';
import type { LimitFunction } from 'p-limit';
import { tenantsRef, type Tenant } from '../tenants/resources.js';
import { parseValues, type TenantValues } from '../tenants/values.js';
import type { Backend } from './backends.js';
import { forwardable } from './forward.js';
import { impersonate, type Identity } from './identity.js';
import type { RequestInfo, ResourceRequestInfo } from './request-info.js';
import { isDryRun, sendToTenant, tenantReader } from './tenant-write.js';

const INLINE_ANSWER_WITHIN_MS = 10_000;

const WRITES = new Set(['create', 'update', 'patch', 'delete']);

/** A whole-object write of a mirrored kind: its kind, the values of the tenant it goes to, and the tenant's twin writer. */
export interface MirroredWrite {
  kind: MirroredKind;
  values: TenantValues;
  twins: TwinWriter;
}

/** A mirrored write as admit hands it on: with its body, read once. */
export interface AdmittedWrite extends MirroredWrite {
  body: Buffer;
}

/**
 * The inline mirror: a write of a low-level object through the gateway is applied to the host before the
 * gateway answers, so the host twin exists when kubectl returns. (The syncer covers every other write;
 * this is the fast path.) Admission came first (admit.ts); a dry run goes to the tenant only. A kind
 * made on the host first (a Service sent as JSON: kinds.ts `hostFirst`) is stored by the tenant with
 * what the host chose; the twin is then written, after the decision the syncer would take
 * (decisions.ts), by the tenant's TwinWriter.
 */
export class InlineMirror {
  private readonly tenants: Informer<Tenant>;
  private readonly networks: HostNetworks;
  /** Each tenant's limit on requests for what a write needs, across its writes. */
  private readonly requestLimits = new Map<string, LimitFunction>();

  private readonly host: KubeClient;

  /**
   * A client of its own to the host, that gives up sooner than the usual request timeout: a kubectl
   * user waits on every write here, and one the host does not answer is stored in the tenant and left
   * to the syncer (or, made on the host first, refused with a Status) instead of hanging.
   */
  constructor(host: ClusterAccess, readonly maxBodyBytes: number, private readonly log: Logger) {
    this.host = new KubeClient(host, { answerWithinMs: INLINE_ANSWER_WITHIN_MS });
    this.tenants = new Informer<Tenant>(this.host, tenantsRef(), {}, {}, (err) => log.warn({ err: err.message }, 'tenant watch failed'));
    this.networks = new HostNetworks(this.host, (err) => log.warn({ err: err.message }, 'host network watch failed'));
  }

  start(): Promise<void> {
    this.networks.start();
    return this.tenants.start();
  }

  async stop(): Promise<void> {
    await Promise.all([this.tenants.stop(), this.networks.stop()]);
    await this.host.close();
  }

  /**
   * The tenant's values. A write that cannot be judged by them (an isolated tenant's quota and pod
   * security) is refused, never waved through: fail closed.
   */
  private values(t: Tenant): TenantValues {
    try {
      return parseValues(t.spec?.values);
    } catch (err) {
      throw tenantUnavailable(t.metadata.name!, `its values cannot be read (${(err as Error).message})`);
    }
  }

  /** The mirrored kind a request writes, if it is a whole-object write of one, with the tenant's values and twin writer. */
  writeOf(tenant: string, backend: Backend, info: RequestInfo): MirroredWrite | undefined {
    if (!info.isResourceRequest || !WRITES.has(info.verb) || info.subresource || !info.namespace) return undefined;
    const t = this.tenants.get(undefined, tenant);
    if (!t) throw tenantUnavailable(tenant, 'its Tenant object is not known to this gateway yet');
    const values = this.values(t);
    const kinds = mirroredKinds(values);
    const kind = kindOfResource(kinds, info.apiGroup, info.resource);
    if (!kind) return undefined;
    const host = this.host;
    // How the tenant's pods reach its API and DNS, as the tenant controller reported it.
    const translator = new Translator(tenant, t.status?.podAccess);
    const twins = new TwinWriter(host, translator, kinds, tenantReader(backend), {
      networks: this.networks,
      everywhere: async (k) => (await host.list(k.ref)).items,
    }, this.log, this.requestLimit(tenant));
    return { kind, values, twins };
  }

  private requestLimit(tenant: string): LimitFunction {
    let limit = this.requestLimits.get(tenant);
    if (!limit) this.requestLimits.set(tenant, (limit = tenantRequestLimit()));
    return limit;
  }

  /** Forwards the write, mirrors it on success, then answers with the tenant's answer. */
  async forward(req: IncomingMessage, res: ServerResponse, backend: Backend, path: string, identity: Identity, write: AdmittedWrite, info: ResourceRequestInfo): Promise<void> {
    const { kind, twins } = write;
    impersonate(req, identity);
    const answerWith = (answer: Dispatcher.ResponseData, text: string, warnings: string[] = []): void => {
      const answerHeaders = forwardable(answer.headers as Record<string, string | string[]>);
      if (warnings.length) answerHeaders.warning = [...[answerHeaders.warning ?? []].flat(), ...warnings];
      res.writeHead(answer.statusCode, answerHeaders);
      res.end(text);
    };

    // A dry run (kubectl --dry-run=server) stores nothing in the tenant, so nothing goes to the host either.
    if (isDryRun(path)) {
      const answer = await sendToTenant(req, backend, path, write.body);
      return answerWith(answer, await answer.body.text());
    }
    const { body, first } = info.verb === 'create' ? await this.hostFirst(twins, kind, write.body, info.namespace, req.headers['content-type']) : { body: write.body, first: undefined };
    let answer: Dispatcher.ResponseData;
    try {
      answer = await sendToTenant(req, backend, path, body);
    } catch (err) {
      await this.rollback(twins, kind, first);
      throw err;
    }
    const text = await answer.body.text();
    if (answer.statusCode >= 300) {
      await this.rollback(twins, kind, first);
      return answerWith(answer, text);
    }
    const warnings: string[] = [];
    try {
      // What the twin was written without (a priority class the host lacks) is told as the syncer tells it.
      const notice = await this.mirror(twins, kind, info, text, first);
      if (notice) warnings.push(warningHeader(notice));
    } catch (err) {
      // The syncer will converge; the write itself succeeded.
      this.log.warn({ tenant: backend.tenant, kind: kind.kind, err: (err as Error).message }, 'inline mirror failed; the syncer will retry');
      // kubectl prints Warning headers: the user learns at once why the object will not run.
      if (err instanceof HostRefused) warnings.push(warningHeader(`the host cluster refused it: ${err.message}`));
    }
    answerWith(answer, text, warnings);
  }

  /** After the tenant stored (or deleted) the object: the decision the syncer would take, acted on at once. */
  private async mirror(twins: TwinWriter, kind: MirroredKind, info: ResourceRequestInfo, answer: string, first: KubeObject | undefined): Promise<string | undefined> {
    if (info.verb === 'delete') {
      await twins.delete(kind, twins.nameOf(kind, info.namespace, info.name));
      return undefined;
    }
    const origin = JSON.parse(answer) as KubeObject;
    if (origin.kind === 'Status' || origin.metadata?.deletionTimestamp) return undefined;
    // The twin is read only where the decision turns on it: whether a ConfigMap or Secret is mirrored
    // (the syncer mirrors it once a pod uses it; from then on its twin says so), or how an existing
    // twin is brought in line. A new object has none, unless it was made first.
    const reads = kind.onlyWhenUsed || (kind.compare && info.verb !== 'create');
    const twin = first ?? (reads ? await twins.find(kind, origin) : undefined);
    const d = decide(kind, { origin, twin, used: !kind.onlyWhenUsed || !!twin, unclaimedForMs: 0 });
    if (d.act === 'create' || d.act === 'update') return (await twins.apply(kind, origin, twin)).notice;
    if (d.act === 'delete') await twins.delete(kind, twin!.metadata.name!);
    return undefined;
  }

  /** For kinds made on the host first: the twin, and the request with what the host chose (kinds.ts `hostFirst`). */
  private async hostFirst(twins: TwinWriter, kind: MirroredKind, body: Buffer, namespace: string, contentType: string | undefined): Promise<{ body: Buffer; first?: KubeObject }> {
    // Protobuf (kubectl create service sends it) is not read here: stored as sent, the twin follows.
    if (!kind.hostFirst || (contentType && !contentType.includes('json'))) return { body };
    let obj: KubeObject;
    try {
      obj = JSON.parse(body.toString('utf8')) as KubeObject;
    } catch {
      throw badRequest(`the ${kind.kind} is not valid JSON`);
    }
    if (!obj.metadata?.name) return { body };
    const origin = { ...obj, metadata: { ...obj.metadata, namespace } };
    if (!kind.hostFirst.wanted(origin)) return { body };
    const first = await twins.createFirst(kind, origin);
    if (!first) return { body };
    return { body: Buffer.from(JSON.stringify(kind.hostFirst.adopt(obj, first))), first };
  }

  /** The twin made first goes again when the tenant did not store its origin. */
  private async rollback(twins: TwinWriter, kind: MirroredKind, first: KubeObject | undefined): Promise<void> {
    if (!first) return;
    await twins.delete(kind, first.metadata.name!).catch((err: Error) => this.log.warn({ tenant: twins.translator.tenant, name: first.metadata.name, err: err.message }, 'twin made first not removed; the syncer will remove it'));
  }
}

/** An RFC 9111 Warning header value, code 299 (miscellaneous persistent warning), as kube-apiserver sends. */
export const warningHeader = (text: string): string => `299 - "${text.replace(/[\\"]/g, (c) => `\\${c}`).replace(/[^\x20-\x7e]/g, '?')}"`;
