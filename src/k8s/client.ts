import { isIP } from 'node:net';
import { Agent, request, type Dispatcher } from 'undici';
import { bearerOf } from './bearer.js';
import { StatusError } from './status.js';

/** How to reach one API server: its URL and credentials (a client certificate or a bearer token). */
export interface ClusterAccess {
  server: string;
  ca?: string;
  cert?: string;
  key?: string;
  token?: string;
  /** Where the token is kept and renewed (a pod's ServiceAccount token); read again while running. */
  tokenFile?: string;
}

/** Identifies a resource collection or object in the API. */
export interface ResourceRef {
  group: string;
  version: string;
  resource: string;
  namespace?: string;
  name?: string;
  subresource?: string;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    creationTimestamp?: string;
    deletionTimestamp?: string;
    ownerReferences?: unknown[];
    generateName?: string;
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

export interface KubeList<T extends KubeObject = KubeObject> {
  metadata: { resourceVersion?: string; continue?: string };
  items: T[];
}

export interface WatchEvent<T extends KubeObject = KubeObject> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

export function resourcePath(ref: ResourceRef): string {
  const prefix = ref.group === '' ? `/api/${ref.version}` : `/apis/${ref.group}/${ref.version}`;
  let path = prefix;
  if (ref.namespace) path += `/namespaces/${encodeURIComponent(ref.namespace)}`;
  path += `/${ref.resource}`;
  if (ref.name) path += `/${encodeURIComponent(ref.name)}`;
  if (ref.subresource) path += `/${ref.subresource}`;
  return path;
}

type Query = Record<string, string | number | boolean | undefined>;

function withQuery(path: string, query?: Query): string {
  if (!query) return path;
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) q.set(k, String(v));
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

/**
 * The lines of a byte stream (a watch: one JSON event a line). The decoder keeps the bytes of a character
 * that a chunk ends inside of until the next chunk completes it; a line the stream ends without a
 * newline is the last one.
 */
export async function* lines(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let buffer = '';
  for await (const chunk of chunks) {
    buffer += decoder.decode(chunk, { stream: true });
    let start = 0;
    let nl: number;
    while ((nl = buffer.indexOf('\n', start)) >= 0) {
      yield buffer.slice(start, nl);
      start = nl + 1;
    }
    buffer = buffer.slice(start);
  }
  buffer += decoder.decode();
  if (buffer) yield buffer;
}

/** kube-apiserver's own limit on an ordinary request (--request-timeout): a longer wait is a server that is gone. */
export const ANSWER_WITHIN_MS = 60_000;

/**
 * A small JSON client for one API server on an undici connection pool. Failures are StatusErrors,
 * so callers handle API errors and connection errors the same way.
 */
export class KubeClient {
  readonly dispatcher: Agent;
  private readonly base: URL;
  private readonly bearer: () => string | undefined;

  private readonly answerWithinMs: number;

  /**
   * `connections` caps the pool; by default it is not capped, because every open watch holds one
   * HTTP/1.1 connection and a capped pool full of watches would queue every other request forever.
   * `answerWithinMs`: a server that has not begun answering by then (paused, partitioned) has failed
   * the request; a watch's events may come as slowly as they like.
   */
  constructor(readonly access: ClusterAccess, opts: { connections?: number; answerWithinMs?: number } = {}) {
    this.answerWithinMs = opts.answerWithinMs ?? ANSWER_WITHIN_MS;
    this.base = new URL(access.server);
    this.dispatcher = new Agent({
      connections: opts.connections ?? null,
      pipelining: 1,
      connect: {
        ca: access.ca,
        cert: access.cert,
        key: access.key,
        // A server URL may carry a path (tenants behind the gateway); TLS names come from the host only,
        // and an address is no name (SNI refuses one: an in-cluster server is one).
        servername: isIP(this.base.hostname.replace(/^\[|\]$/g, '')) ? undefined : this.base.hostname,
      },
      headersTimeout: this.answerWithinMs,
      bodyTimeout: 0,
    });
    this.bearer = bearerOf(access);
  }

  url(path: string): string {
    return `${this.base.origin}${this.base.pathname.replace(/\/$/, '')}${path}`;
  }

  async raw(
    method: Dispatcher.HttpMethod,
    path: string,
    opts: { body?: unknown; contentType?: string; query?: Query; signal?: AbortSignal; headers?: Record<string, string> } = {},
  ): Promise<Dispatcher.ResponseData> {
    const token = this.bearer();
    const headers: Record<string, string> = { accept: 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}), ...opts.headers };
    let body: string | undefined;
    if (opts.body !== undefined) {
      body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
      headers['content-type'] = opts.contentType ?? 'application/json';
    }
    try {
      return await request(this.url(withQuery(path, opts.query)), {
        method,
        headers,
        body,
        dispatcher: this.dispatcher,
        signal: opts.signal,
      });
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      const why = (err as { code?: string }).code === 'UND_ERR_HEADERS_TIMEOUT' ? `no answer within ${this.answerWithinMs / 1000} s` : (err as Error).message;
      throw new StatusError(503, 'ServiceUnavailable', `cannot reach ${this.base.origin}: ${why}`);
    }
  }

  async json<T>(method: Dispatcher.HttpMethod, path: string, opts: Parameters<KubeClient['raw']>[2] = {}): Promise<T> {
    const res = await this.raw(method, path, opts);
    const text = await res.body.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (res.statusCode >= 400) {
      const err = StatusError.fromStatus(parsed, res.statusCode);
      if (parsed === undefined && text) err.message = `${err.message}: ${text.slice(0, 200)}`;
      throw err;
    }
    return parsed as T;
  }

  get<T extends KubeObject>(ref: ResourceRef): Promise<T> {
    return this.json<T>('GET', resourcePath(ref));
  }

  /** Like get, but a missing object is `undefined` instead of an error. */
  async find<T extends KubeObject>(ref: ResourceRef): Promise<T | undefined> {
    try {
      return await this.get<T>(ref);
    } catch (err) {
      if (err instanceof StatusError && err.code === 404) return undefined;
      throw err;
    }
  }

  list<T extends KubeObject>(ref: ResourceRef, query?: Query): Promise<KubeList<T>> {
    return this.json<KubeList<T>>('GET', resourcePath(ref), { query });
  }

  create<T extends KubeObject>(ref: ResourceRef, obj: KubeObject, query?: Query): Promise<T> {
    return this.json<T>('POST', resourcePath({ ...ref, name: undefined }), { body: obj, query });
  }

  update<T extends KubeObject>(ref: ResourceRef, obj: KubeObject): Promise<T> {
    return this.json<T>('PUT', resourcePath(ref), { body: obj });
  }

  /** Server-side apply: the object is the whole intent of `fieldManager`; conflicts are forced. */
  apply<T extends KubeObject>(ref: ResourceRef, obj: KubeObject, fieldManager: string): Promise<T> {
    return this.json<T>('PATCH', resourcePath(ref), {
      body: obj,
      contentType: 'application/apply-patch+yaml',
      query: { fieldManager, force: true },
    });
  }

  patch<T extends KubeObject>(ref: ResourceRef, patch: unknown, type: 'merge' | 'strategic' | 'json' = 'merge'): Promise<T> {
    const contentType = {
      merge: 'application/merge-patch+json',
      strategic: 'application/strategic-merge-patch+json',
      json: 'application/json-patch+json',
    }[type];
    return this.json<T>('PATCH', resourcePath(ref), { body: patch, contentType });
  }

  /** Deletes; an object that is already gone counts as deleted. Returns whether it existed. */
  async delete(ref: ResourceRef, opts: { propagationPolicy?: 'Background' | 'Foreground' | 'Orphan'; uid?: string } = {}): Promise<boolean> {
    const body: Record<string, unknown> = { kind: 'DeleteOptions', apiVersion: 'v1' };
    if (opts.propagationPolicy) body.propagationPolicy = opts.propagationPolicy;
    if (opts.uid) body.preconditions = { uid: opts.uid };
    try {
      await this.json('DELETE', resourcePath(ref), { body });
      return true;
    } catch (err) {
      if (err instanceof StatusError && err.code === 404) return false;
      throw err;
    }
  }

  /**
   * Watches a collection from `resourceVersion`, calling `onEvent` for each event in order. Resolves when the
   * server ends the watch (a caller re-lists or re-watches), rejects on errors, stops when `signal` aborts.
   */
  async watch<T extends KubeObject>(
    ref: ResourceRef,
    opts: { resourceVersion?: string; labelSelector?: string; fieldSelector?: string; timeoutSeconds?: number; signal: AbortSignal },
    onEvent: (e: WatchEvent<T>) => void | Promise<void>,
  ): Promise<void> {
    const res = await this.raw('GET', resourcePath(ref), {
      signal: opts.signal,
      query: {
        watch: true,
        allowWatchBookmarks: true,
        resourceVersion: opts.resourceVersion,
        labelSelector: opts.labelSelector,
        fieldSelector: opts.fieldSelector,
        timeoutSeconds: opts.timeoutSeconds ?? 300,
      },
    });
    if (res.statusCode >= 400) {
      const text = await res.body.text();
      throw StatusError.fromStatus(text ? JSON.parse(text) : undefined, res.statusCode);
    }
    try {
      for await (const line of lines(res.body)) {
        if (!line.trim()) continue;
        const event = JSON.parse(line) as WatchEvent<T>;
        if (event.type === 'ERROR') throw StatusError.fromStatus(event.object, 500);
        await onEvent(event);
      }
    } catch (err) {
      if (opts.signal.aborted) return;
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }
}

export const core = (resource: string, namespace?: string, name?: string): ResourceRef => ({
  group: '',
  version: 'v1',
  resource,
  namespace,
  name,
});
