import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { Transform } from 'node:stream';
import httpProxy from 'http-proxy';
import { entityTooLarge, tenantUnavailable, writeStatus, StatusError } from '../k8s/status.js';
import type { Backend } from './backends.js';
import type { UserInfo } from './authenticate.js';
import { roleGroup } from '../tenants/controller.js';

/** Headers a client may not send through the gateway: identity is the token's, nothing else. */
const IDENTITY_HEADERS = /^(authorization|impersonate-.*)$/i;

/**
 * Replaces the client's credentials with the user's identity as Kubernetes impersonation headers; the
 * gateway's own credential (the backend's client certificate) is allowed to impersonate.
 */
export function impersonate(req: IncomingMessage, user: UserInfo): void {
  for (const h of Object.keys(req.headers)) if (IDENTITY_HEADERS.test(h)) delete req.headers[h];
  req.headers['impersonate-user'] = user.name;
  req.headers['impersonate-group'] = [...new Set([...user.groups, roleGroup(user.role), 'system:authenticated'])] as unknown as string;
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

/** Streams requests to tenant API servers: nothing is buffered whole, watches stay open as long as they run. */
export class Router {
  private readonly proxy = httpProxy.createProxyServer({ xfwd: false, ws: true, proxyTimeout: 0, timeout: 0 });

  constructor(private readonly maxBodyBytes: number) {
    this.proxy.on('error', (err, _req, res) => {
      const tenant = (_req as IncomingMessage & { kplexTenant?: string }).kplexTenant ?? 'unknown';
      if (err instanceof StatusError) return 'writeHead' in res ? writeStatus(res as ServerResponse, err) : (res as Duplex).destroy();
      if ('writeHead' in res) writeStatus(res as ServerResponse, tenantUnavailable(tenant, err.message));
      else (res as Duplex).destroy();
    });
  }

  /** Forwards a request with `path` (the URL below /tenants/NAME) to the backend. */
  web(req: IncomingMessage, res: ServerResponse, backend: Backend, path: string, user: UserInfo): void {
    const length = Number(req.headers['content-length'] ?? 0);
    if (length > this.maxBodyBytes) throw entityTooLarge(this.maxBodyBytes);
    const chunked = req.headers['transfer-encoding'] !== undefined;
    impersonate(req, user);
    req.url = path;
    (req as IncomingMessage & { kplexTenant?: string }).kplexTenant = backend.tenant;
    const buffer = chunked ? req.pipe(bodyLimit(this.maxBodyBytes)) : undefined;
    buffer?.on('error', (err) => {
      writeStatus(res, err instanceof StatusError ? err : entityTooLarge(this.maxBodyBytes));
      req.destroy();
    });
    this.proxy.web(req, res, { target: backend.target.origin, agent: backend.agent, secure: true, changeOrigin: true, buffer });
  }

  /** Forwards an upgrade (SPDY or WebSocket: exec, attach, port-forward) with its raw socket. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, backend: Backend, path: string, user: UserInfo): void {
    impersonate(req, user);
    req.url = path;
    (req as IncomingMessage & { kplexTenant?: string }).kplexTenant = backend.tenant;
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
