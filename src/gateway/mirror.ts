import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import type { Logger } from 'pino';
import { resourcePath, type KubeClient, type KubeObject } from '../k8s/client.js';
import { Informer } from '../k8s/informer.js';
import { badRequest, StatusError, tenantUnavailable } from '../k8s/status.js';
import { admitOnHost } from './admission.js';
import { readBody } from './body.js';
import { kindOfResource, mirroredKinds, type MirroredKind } from '../sync/kinds.js';
import { mirrorToHost, SYNC_FIELD_MANAGER } from '../sync/syncer.js';
import { HostRefused } from '../sync/host-refused.js';
import { prerequisitesOf, serviceAccountOf, type Prerequisite } from '../sync/references.js';
import { ORIGIN, Translator } from '../sync/translate.js';
import { HostNetworks } from '../sync/host-networks.js';
import { hostTaken, hostTakenElsewhere } from '../sync/ingress-hosts.js';
import { tenantsRef, type Tenant } from '../tenants/resources.js';
import { parseValues, type TenantValues } from '../tenants/values.js';
import type { Backend } from './backends.js';
import type { RequestInfo } from './request-info.js';
import { forwardable } from './forward.js';
import { impersonate, type Identity } from './identity.js';

const WRITES = new Set(['create', 'update', 'patch', 'delete']);

/** A whole-object write of a mirrored kind, and the values of the tenant it goes to. */
export interface MirroredWrite {
  kind: MirroredKind;
  values: TenantValues;
}

/**
 * The inline mirror: a write of a low-level object through the gateway is applied to the host before the
 * gateway answers, so the host twin exists when kubectl returns. (The syncer covers every other write;
 * this is the fast path.) An isolated tenant's Pod or Service that the host would refuse is refused
 * before it is stored (admission.ts); a dry run goes to the tenant only. A Service sent as JSON is created on the host first and the tenant's is stored
 * with the host's ClusterIP; one sent as protobuf (kubectl create service does) is stored by the tenant
 * first and its host twin takes the tenant's ClusterIP (both sides share one range).
 */
export class InlineMirror {
  private readonly tenants: Informer<Tenant>;
  private readonly translators = new Map<string, Translator>();
  private readonly networks: HostNetworks;

  constructor(private readonly host: KubeClient, private readonly maxBodyBytes: number, private readonly log: Logger) {
    this.tenants = new Informer<Tenant>(host, tenantsRef(), {}, {}, (err) => log.warn({ err: err.message }, 'tenant watch failed'));
    this.networks = new HostNetworks(host, (err) => log.warn({ err: err.message }, 'host network watch failed'));
  }

  start(): Promise<void> {
    this.networks.start();
    return this.tenants.start();
  }

  async stop(): Promise<void> {
    await Promise.all([this.tenants.stop(), this.networks.stop()]);
  }

  /**
   * The tenant's values. A write that cannot be judged by them (an isolated tenant's quota and pod
   * security) is refused, never waved through: fail closed.
   */
  private values(tenant: string): TenantValues {
    const t = this.tenants.get(undefined, tenant);
    if (!t) throw tenantUnavailable(tenant, 'its Tenant object is not known to this gateway yet');
    try {
      return parseValues(t.spec?.values);
    } catch (err) {
      throw tenantUnavailable(tenant, `its values cannot be read (${(err as Error).message})`);
    }
  }

  /** The mirrored kind a request writes, if it is a whole-object write of one, with the tenant's values. */
  writeOf(tenant: string, info: RequestInfo): MirroredWrite | undefined {
    if (!info.isResourceRequest || !WRITES.has(info.verb) || info.subresource || !info.namespace) return undefined;
    const values = this.values(tenant);
    const kind = kindOfResource(mirroredKinds(values), info.apiGroup, info.resource);
    return kind && { kind, values };
  }

  private translator(tenant: string): Translator {
    let t = this.translators.get(tenant);
    if (!t) this.translators.set(tenant, (t = new Translator(tenant)));
    return t;
  }

  /** Forwards the write, mirrors it on success, then answers with the tenant's answer. */
  async forward(req: IncomingMessage, res: ServerResponse, backend: Backend, path: string, identity: Identity, { kind, values }: MirroredWrite, info: RequestInfo & { isResourceRequest: true }): Promise<void> {
    let body = await readBody(req, this.maxBodyBytes);
    const t = this.translator(backend.tenant);
    impersonate(req, identity);
    // The answer is read here (to mirror it), so ask for JSON whatever the client prefers; clients accept it.
    const headers = forwardable(req.headers);
    const send = async (to: string, payload: Buffer): Promise<Dispatcher.ResponseData> => {
      try {
        return await backend.pool.request({ path: to, method: req.method as 'POST', headers: { ...headers, accept: 'application/json', 'content-length': String(payload.length) }, body: payload });
      } catch (err) {
        throw tenantUnavailable(backend.tenant, (err as Error).message);
      }
    };
    const write = (answer: Dispatcher.ResponseData, text: string, warnings: string[] = []): void => {
      const answerHeaders = forwardable(answer.headers as Record<string, string | string[]>);
      if (warnings.length) answerHeaders.warning = [...[answerHeaders.warning ?? []].flat(), ...warnings];
      res.writeHead(answer.statusCode, answerHeaders);
      res.end(text);
    };
    const reply = async (answer: Dispatcher.ResponseData): Promise<void> => write(answer, await answer.body.text());

    // A dry run (kubectl --dry-run=server) stores nothing in the tenant, so nothing goes to the host either.
    if (isDryRun(path)) return reply(await send(path, body));

    // Admission, for an isolated tenant's pods: only its host namespace limits them (quota, pod
    // security), so only there is the host asked first. It is asked about the pod as the tenant would
    // store it (defaults, LimitRange, webhooks applied), which the tenant's own dry run answers; a
    // refusal by the tenant itself is its answer. Elsewhere a host refusal reaches the user as a
    // warning and an event.
    if (kind.kind === 'Pod' && info.verb === 'create' && values.isolate) {
      const tried = await send(withDryRun(path), body);
      if (tried.statusCode >= 300) return reply(tried);
      const pod = (await tried.body.json()) as KubeObject;
      // The host's ServiceAccount admission would refuse a pod whose account has no twin yet.
      await this.mirrorFirst(backend, t, values, serviceAccountOf(pod)).catch((err: Error) => this.log.debug({ tenant: t.tenant, err: err.message }, 'service account not mirrored first'));
      await admitOnHost(this.host, t, kind, pod, this.log);
    }
    // A host name another namespace of the host serves is not the tenant's to claim (ingress-hosts.ts):
    // refused before it is stored. The tenant's dry run tells the Ingress as it would be stored (patches).
    if (kind.kind === 'Ingress' && info.verb !== 'delete') {
      const tried = await send(withDryRun(path), body);
      if (tried.statusCode >= 300) return reply(tried);
      await this.admitIngress(t, kind, (await tried.body.json()) as KubeObject);
    }
    let hostService: KubeObject | undefined;
    if (kind.kind === 'Service' && info.verb === 'create') {
      ({ body, hostService } = await this.serviceOnHostFirst(t, kind, body, info.namespace, req.headers['content-type'], values.isolate));
    }
    let answer: Dispatcher.ResponseData;
    try {
      answer = await send(path, body);
    } catch (err) {
      await this.rollback(hostService);
      throw err;
    }
    if (answer.statusCode >= 300) {
      await this.rollback(hostService);
      return reply(answer);
    }
    const text = await answer.body.text();
    const warnings: string[] = [];
    try {
      await this.mirror(backend, t, values, kind, info, text, hostService);
    } catch (err) {
      // The syncer will converge; the write itself succeeded.
      this.log.warn({ tenant: backend.tenant, kind: kind.kind, err: (err as Error).message }, 'inline mirror failed; the syncer will retry');
      // kubectl prints Warning headers: the user learns at once why the object will not run. (A Service
      // whose ClusterIP the host will not take is settled by the syncer, not the user.)
      if (err instanceof HostRefused && !(kind.kind === 'Service' && err.code !== 403)) warnings.push(warningHeader(`the host cluster refused it: ${err.message}`));
    }
    write(answer, text, warnings);
  }

  private async mirror(backend: Backend, t: Translator, values: TenantValues, kind: MirroredKind, info: RequestInfo & { isResourceRequest: true }, answer: string, hostFirst?: KubeObject): Promise<void> {
    if (info.verb === 'delete') {
      await this.host.delete({ ...kind.ref, namespace: t.hostNamespace, name: t.name(info.namespace, info.name, kind.kind) }, { propagationPolicy: 'Background' });
      return;
    }
    const obj = JSON.parse(answer) as KubeObject;
    if (obj.kind === 'Status' || obj.metadata?.deletionTimestamp) return;
    // A ConfigMap or Secret no pod uses yet stays in the tenant; once a pod uses it the syncer mirrors it,
    // and from then on its writes are mirrored here.
    if (kind.onlyWhenUsed && !(await this.host.find({ ...kind.ref, namespace: t.hostNamespace, name: t.name(info.namespace, obj.metadata.name!, kind.kind) }))) return;
    if (hostFirst) {
      // Made from the same request already; it only lacks its origin's uid.
      await this.host.patch({ ...kind.ref, namespace: t.hostNamespace, name: hostFirst.metadata.name }, { metadata: { annotations: { [ORIGIN.uid]: obj.metadata.uid } } });
      return;
    }
    const existing = kind.kind === 'Pod' && info.verb !== 'create' ? await this.host.find({ ...kind.ref, namespace: t.hostNamespace, name: t.name(info.namespace, obj.metadata.name!, kind.kind) }) : undefined;
    if (kind.kind === 'Pod' && info.verb === 'create') await this.mirrorFirst(backend, t, values, prerequisitesOf(obj));
    // Endpoints keep only the addresses the tenant may point at (addresses.ts); the syncer tells the tenant what went.
    const allowed = kind.kind === 'Endpoints' ? (await this.networks.reachable(obj, t.tenant, t.hostNamespace)).endpoints : obj;
    await mirrorToHost(this.host, t, kind, allowed, existing);
  }

  private async admitIngress(t: Translator, kind: MirroredKind, ing: KubeObject): Promise<void> {
    const all = (await this.host.list({ ...kind.ref })).items;
    const twinName = t.name(ing.metadata.namespace ?? '', ing.metadata.name ?? '', kind.kind);
    const twin = all.find((o) => o.metadata.namespace === t.hostNamespace && o.metadata.name === twinName);
    const taken = hostTakenElsewhere(ing, t.hostNamespace, all, twin);
    if (taken !== undefined) throw hostTaken(ing.metadata.name ?? '', taken);
  }

  /**
   * What a new pod runs as, mounts or reads (its ServiceAccount, ConfigMaps, Secrets) goes to the host
   * before the pod, as the syncer does, so the host's ServiceAccount admission does not refuse it and a
   * kubelet never starts it without its volumes (FailedMount, CreateContainerConfigError). They are
   * read from the tenant with the gateway's own credential: the user may create a pod that uses a
   * Secret without being allowed to read it, as in any cluster.
   */
  private async mirrorFirst(backend: Backend, t: Translator, values: TenantValues, needs: Prerequisite[]): Promise<void> {
    const kinds = mirroredKinds(values);
    await Promise.all(needs.map(async (r) => {
      const kind = kinds.find((k) => k.kind === r.kind);
      if (!kind) return;
      const answer = await backend.pool.request({ path: resourcePath({ ...kind.ref, namespace: r.namespace, name: r.name }), method: 'GET', headers: { accept: 'application/json' } });
      const text = await answer.body.text();
      // Not made yet: the pod waits for it, as on any cluster, and the syncer mirrors it once it is.
      if (answer.statusCode === 404) return;
      if (answer.statusCode >= 300) throw new Error(`reading ${r.kind} ${r.namespace}/${r.name} from the tenant: ${answer.statusCode} ${text}`);
      await mirrorToHost(this.host, t, kind, JSON.parse(text) as KubeObject);
    }));
  }

  /** Creates the host Service first (without a tenant uid yet) and puts its ClusterIP into the tenant's request. */
  private async serviceOnHostFirst(t: Translator, kind: MirroredKind, body: Buffer, namespace: string, contentType: string | undefined, isolated: boolean): Promise<{ body: Buffer; hostService?: KubeObject }> {
    if (contentType && !contentType.includes('json')) return { body };
    let svc: KubeObject;
    try {
      svc = JSON.parse(body.toString('utf8')) as KubeObject;
    } catch {
      throw badRequest('the Service is not valid JSON');
    }
    const spec = (svc.spec ?? {}) as { clusterIP?: string; clusterIPs?: string[] };
    if (!svc.metadata?.name) return { body };
    const origin = { ...svc, metadata: { ...svc.metadata, namespace } };
    // A headless Service has no IP to agree on: the host is only asked whether it would take it.
    if (spec.clusterIP === 'None') {
      if (isolated) await admitOnHost(this.host, t, kind, origin, this.log);
      return { body };
    }
    const desired = kind.toHost(t, origin);
    let hostService: KubeObject;
    try {
      hostService = await this.host.create({ ...kind.ref, namespace: t.hostNamespace }, desired, { fieldManager: SYNC_FIELD_MANAGER });
    } catch (err) {
      // Over the tenant's quota: refused before the tenant stores it, as the pod admission stage does.
      if (err instanceof StatusError && err.code === 403) throw new HostRefused(err, t, desired, origin);
      // Taken already (a twin left over, or the IP asked for is in use): let the syncer sort it out.
      if (err instanceof StatusError && (err.code === 409 || err.code === 422)) {
        this.log.info({ tenant: t.tenant, service: `${namespace}/${svc.metadata.name}`, why: err.message }, 'host Service not made first; the syncer will match the ClusterIPs');
        return { body };
      }
      throw err;
    }
    const ip = (hostService.spec as { clusterIP?: string }).clusterIP;
    svc.spec = { ...spec, clusterIP: ip, clusterIPs: [ip] };
    return { body: Buffer.from(JSON.stringify(svc)), hostService };
  }

  private async rollback(hostService: KubeObject | undefined): Promise<void> {
    if (hostService) await this.host.delete({ group: '', version: 'v1', resource: 'services', namespace: hostService.metadata.namespace, name: hostService.metadata.name }).catch(() => undefined);
  }
}

const isDryRun = (path: string): boolean => new URLSearchParams(path.split('?')[1] ?? '').has('dryRun');
const withDryRun = (path: string): string => `${path}${path.includes('?') ? '&' : '?'}dryRun=All`;

/** An RFC 9111 Warning header value, code 299 (miscellaneous persistent warning), as kube-apiserver sends. */
export const warningHeader = (text: string): string => `299 - "${text.replace(/[\\"]/g, (c) => `\\${c}`).replace(/[^\x20-\x7e]/g, '?')}"`;
