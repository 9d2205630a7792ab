import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { resourcePath, type KubeClient, type KubeObject } from '../k8s/client.js';
import { Informer } from '../k8s/informer.js';
import { badRequest, StatusError, tenantUnavailable } from '../k8s/status.js';
import { admitOnHost } from './admission.js';
import { readBody } from './body.js';
import { kindOfResource, mirroredKinds, type MirroredKind } from '../sync/kinds.js';
import { HostRefused, mirrorToHost, SYNC_FIELD_MANAGER } from '../sync/syncer.js';
import { referencesOf } from '../sync/references.js';
import { ORIGIN, Translator } from '../sync/translate.js';
import { tenantsRef, type Tenant } from '../tenants/resources.js';
import { parseValues, type TenantValues } from '../tenants/values.js';
import type { UserInfo } from './authenticate.js';
import type { Backend } from './backends.js';
import type { RequestInfo } from './request-info.js';
import { forwardable, impersonate } from './route.js';

const WRITES = new Set(['create', 'update', 'patch', 'delete']);

/**
 * The inline mirror: a write of a low-level object through the gateway is applied to the host before the
 * gateway answers, so the host twin exists when kubectl returns. (The syncer covers every other write;
 * this is the fast path.) A Pod or Service the host would refuse is refused before it is stored. A Service sent as JSON is created on the host first and the tenant's is stored
 * with the host's ClusterIP; one sent as protobuf (kubectl create service does) is stored by the tenant
 * first and its host twin takes the tenant's ClusterIP (both sides share one range).
 */
export class InlineMirror {
  private readonly tenants: Informer<Tenant>;
  private readonly translators = new Map<string, Translator>();

  constructor(private readonly host: KubeClient, private readonly maxBodyBytes: number, private readonly log: Logger) {
    this.tenants = new Informer<Tenant>(host, tenantsRef(), {}, {}, (err) => log.warn({ err: err.message }, 'tenant watch failed'));
  }

  start(): Promise<void> {
    return this.tenants.start();
  }

  stop(): Promise<void> {
    return this.tenants.stop();
  }

  private values(tenant: string): TenantValues | undefined {
    const t = this.tenants.get(undefined, tenant);
    if (!t) return undefined;
    try {
      return parseValues(t.spec?.values);
    } catch {
      return undefined;
    }
  }

  /** The mirrored kind a request writes, if it is a whole-object write of one. */
  kindOf(tenant: string, info: RequestInfo): MirroredKind | undefined {
    if (!info.isResourceRequest || !WRITES.has(info.verb) || info.subresource || !info.namespace) return undefined;
    const values = this.values(tenant);
    return values && kindOfResource(mirroredKinds(values), info.apiGroup, info.resource);
  }

  private translator(tenant: string): Translator {
    let t = this.translators.get(tenant);
    if (!t) this.translators.set(tenant, (t = new Translator(tenant)));
    return t;
  }

  /** Forwards the write, mirrors it on success, then answers with the tenant's answer. */
  async forward(req: IncomingMessage, res: ServerResponse, backend: Backend, path: string, user: UserInfo, kind: MirroredKind, info: RequestInfo & { isResourceRequest: true }): Promise<void> {
    let body = await readBody(req, this.maxBodyBytes);
    const t = this.translator(backend.tenant);
    let hostService: KubeObject | undefined;
    // Only an isolated tenant's host namespace limits pods (quota, pod security): only there is the host
    // asked first, a round trip; elsewhere a refusal still reaches the user, as a warning and an event.
    if (kind.kind === 'Pod' && info.verb === 'create' && this.values(backend.tenant)?.isolate) await admitOnHost(this.host, t, kind, body, info.namespace, req.headers['content-type'], this.log);
    if (kind.kind === 'Service' && info.verb === 'create') {
      ({ body, hostService } = await this.serviceOnHostFirst(t, kind, body, info.namespace, req.headers['content-type']));
    }
    impersonate(req, user);
    // The answer is read here (to mirror it), so ask for JSON whatever the client prefers; clients accept it.
    const headers = { ...forwardable(req.headers), accept: 'application/json', 'content-length': String(body.length) };
    let answer;
    try {
      answer = await backend.pool.request({ path, method: req.method as 'POST', headers, body });
    } catch (err) {
      await this.rollback(hostService);
      throw tenantUnavailable(backend.tenant, (err as Error).message);
    }
    const text = await answer.body.text();
    const answerHeaders = forwardable(answer.headers as Record<string, string | string[]>);
    if (answer.statusCode < 300) {
      try {
        await this.mirror(backend, t, kind, info, text, hostService);
      } catch (err) {
        // The syncer will converge; the write itself succeeded.
        this.log.warn({ tenant: backend.tenant, kind: kind.kind, err: (err as Error).message }, 'inline mirror failed; the syncer will retry');
        // kubectl prints Warning headers: the user learns at once why the object will not run.
        if (err instanceof HostRefused) answerHeaders.warning = [...[answerHeaders.warning ?? []].flat(), warningHeader(`the host cluster refused it: ${err.message}`)];
      }
    } else {
      await this.rollback(hostService);
    }
    res.writeHead(answer.statusCode, answerHeaders);
    res.end(text);
  }

  private async mirror(backend: Backend, t: Translator, kind: MirroredKind, info: RequestInfo & { isResourceRequest: true }, answer: string, hostFirst?: KubeObject): Promise<void> {
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
    if (kind.kind === 'Pod' && info.verb === 'create') await this.mirrorReferences(backend, t, obj);
    await mirrorToHost(this.host, t, kind, obj, existing);
  }

  /**
   * What a new pod mounts or reads (ConfigMaps, Secrets) goes to the host before the pod, as the syncer
   * does, so a kubelet never starts the host pod without them (FailedMount, CreateContainerConfigError).
   * They are read from the tenant with the gateway's own credential: the user may create a pod that
   * uses a Secret without being allowed to read it, as in any cluster.
   */
  private async mirrorReferences(backend: Backend, t: Translator, pod: KubeObject): Promise<void> {
    const values = this.values(t.tenant);
    if (!values) return;
    const kinds = mirroredKinds(values);
    await Promise.all(referencesOf('Pod', pod).map(async (r) => {
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
  private async serviceOnHostFirst(t: Translator, kind: MirroredKind, body: Buffer, namespace: string, contentType: string | undefined): Promise<{ body: Buffer; hostService?: KubeObject }> {
    if (contentType && !contentType.includes('json')) return { body };
    let svc: KubeObject;
    try {
      svc = JSON.parse(body.toString('utf8')) as KubeObject;
    } catch {
      throw badRequest('the Service is not valid JSON');
    }
    const spec = (svc.spec ?? {}) as { clusterIP?: string; clusterIPs?: string[] };
    if (!svc.metadata?.name || spec.clusterIP === 'None') return { body };
    const desired = t.service({ ...svc, metadata: { ...svc.metadata, namespace } });
    let hostService: KubeObject;
    try {
      hostService = await this.host.create({ ...kind.ref, namespace: t.hostNamespace }, desired, { fieldManager: SYNC_FIELD_MANAGER });
    } catch (err) {
      // Over the tenant's quota: refused before the tenant stores it, as the pod admission stage does.
      if (err instanceof StatusError && err.code === 403) throw new HostRefused(err, desired.metadata.name!, svc.metadata.name);
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

/** An RFC 9111 Warning header value, code 299 (miscellaneous persistent warning), as kube-apiserver sends. */
export const warningHeader = (text: string): string => `299 - "${text.replace(/[\\"]/g, (c) => `\\${c}`).replace(/[^\x20-\x7e]/g, '?')}"`;
