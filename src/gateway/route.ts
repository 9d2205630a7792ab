import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import type { Duplex } from 'node:stream';
import { Transform } from 'node:stream';
import httpProxy from 'http-proxy';
import { entityTooLarge, tenantUnavailable, StatusError } from '../k8s/status.js';
import type { Backend } from './backends.js';
import type { UserInfo } from './authenticate.js';
import { roleGroup } from '../tenants/controller.js';
import { Translator } from '../sync/translate.js';
import type { RequestInfo } from './request-info.js';

/** Headers a client may not send through the gateway: identity is the token's, nothing else. */
const IDENTITY_HEADERS = /^(authorization|impersonate-.*)$/i;

/**
 * Replaces the client's credentials with the user's identity as Kubernetes impersonation headers; the
 * gateway's own credential (the backend's client certificate) is allowed to impersonate.
 */
export function impersonate(req: IncomingMessage, user: UserInfo | undefined): void {
  for (const h of Object.keys(req.headers)) if (IDENTITY_HEADERS.test(h)) delete req.headers[h];
  // On the host the gateway acts as itself: tenant users do not exist there.
  if (!user) return;
  req.headers['impersonate-user'] = user.name;
  req.headers['impersonate-group'] = [...new Set([...user.groups, roleGroup(user.role), 'system:authenticated'])] as unknown as string;
}

/** Pod subresources served by the mirrored pod on the host (the tenant has no kubelets). */
const HOST_POD_SUBRESOURCES = new Set(['log', 'exec', 'attach', 'portforward']);

/**
 * The host URL of a tenant's pod log/exec/attach/portforward request: the mirrored pod in the tenant's
 * host namespace, same subresource and query. Undefined for every other request.
 */
export function hostPodPath(tenant: string, info: RequestInfo, path: string): string | undefined {
  if (!info.isResourceRequest || info.apiGroup !== '' || info.resource !== 'pods' || !HOST_POD_SUBRESOURCES.has(info.subresource)) return undefined;
  const t = new Translator(tenant);
  const q = path.indexOf('?');
  return `/api/v1/namespaces/${t.hostNamespace}/pods/${t.name(info.namespace, info.name, 'Pod')}/${info.subresource}${q >= 0 ? path.slice(q) : ''}`;
}

/** Counts request body bytes on their way through, failing once `limit` is passed (bodies with no length). */
function bodyLimit(limit: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      if (seen > limit) done(entityTooLarge(limit));
      else done(null, chunk);
    },
  });
}

/** Hop-by-hop headers (RFC 9110 7.6.1): they describe one connection and are never forwarded. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host']);

export function forwardable(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  return out;
}

/**
 * Streams requests to tenant API servers: bodies flow through in both directions and are never held
 * whole, so watches, chunked lists and logs -f stay open for as long as the client keeps them.
 * Ordinary requests go through the backend's undici pool; upgrades (exec, attach, port-forward over
 * SPDY or WebSocket) through http-proxy, which hands the raw sockets over.
 */
export class Router {
  private readonly proxy = httpProxy.createProxyServer({ xfwd: false, ws: true, proxyTimeout: 0, timeout: 0 });

  constructor(private readonly maxBodyBytes: number) {
    this.proxy.on('error', (_err, _req, socket) => (socket as Duplex).destroy());
  }

  /** Forwards a request with `path` (the URL below /tenants/NAME) to the backend and streams the answer back. */
  async web(req: IncomingMessage, res: ServerResponse, backend: Backend, path: string, user: UserInfo | undefined): Promise<void> {
    const length = Number(req.headers['content-length'] ?? 0);
    if (length > this.maxBodyBytes) throw entityTooLarge(this.maxBodyBytes);
    impersonate(req, user);
    const method = (req.method ?? 'GET') as Dispatcher.HttpMethod;
    const hasBody = length > 0 || req.headers['transfer-encoding'] !== undefined;
    const body = hasBody ? req.pipe(bodyLimit(this.maxBodyBytes)) : null;
    let tooLarge: StatusError | undefined;
    body?.once('error', (err) => (tooLarge = err instanceof StatusError ? err : entityTooLarge(this.maxBodyBytes)));
    try {
      // A client that goes away destroys `res`, and undici then aborts the upstream request.
      await backend.pool.stream({ path, method, headers: forwardable(req.headers), body }, ({ statusCode, headers }) => {
        res.writeHead(statusCode, forwardable(headers));
        // A body of known length leaves with its headers in one write. Streamed bodies (watches, logs -f,
        // chunked lists) send the headers at once; while that write is under way the first chunks gather
        // and leave together.
        if (headers['content-length'] === undefined) res.flushHeaders();
        return res;
      });
    } catch (err) {
      if (tooLarge) throw tooLarge;
      if (res.destroyed) return;
      if (res.headersSent) {
        res.destroy();
        return;
      }
      throw tenantUnavailable(backend.tenant, (err as Error).message);
    }
  }

  /** Forwards an upgrade (SPDY or WebSocket: exec, attach, port-forward) with its raw socket. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, backend: Backend, path: string, user: UserInfo | undefined): void {
    impersonate(req, user);
    req.url = path;
    this.proxy.ws(req, socket, head, {
      target: { protocol: 'https:', host: backend.target.hostname, port: backend.target.port, ...backend.tls } as unknown as string,
      secure: true,
      changeOrigin: true,
    });
  }

  close(): void {
    this.proxy.close();
  }
}
