import https from 'node:https';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { pipeline, Transform, Writable, type Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { entityTooLarge, tenantUnavailable, StatusError, type Status } from '../k8s/status.js';
import { ANSWER_WITHIN_MS } from '../k8s/client.js';
import type { Backend } from './backends.js';
import type { Drain } from './drain.js';
import { impersonate, type Identity } from './identity.js';
import { watchFraming, wholeEventsLength, type WatchFraming } from './watch-frames.js';

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

/**
 * Headers that describe one connection (RFC 9110 7.6.1) and are never forwarded; `expect` too: Node
 * has already answered `100 Continue` to the client, and the upstream leg has no use for it.
 */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host', 'expect']);

export function forwardable(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  return out;
}

/** One forwarded request: where to, as whom, and what to say instead of the host's names in a refusal. */
export interface Forward {
  backend: Backend;
  /** Path and query on the backend. */
  path: string;
  /** Who the tenant sees; undefined on the host, where the gateway acts as itself. */
  identity: Identity | undefined;
  longRunning: boolean;
  /** A watch: its answer is passed on in whole events, so a leaving gateway can end it between two. */
  watch?: boolean;
  /** Rewrites the body of an error answer (the host's words name twins and the host namespace). */
  refusal?: (text: string) => string;
}

/** The largest error answer read whole to be rewritten. */
const MAX_REFUSAL_BYTES = 64 * 1024;

/**
 * Passes a long-running answer on to the client; for a watch whose framing is known, in whole events
 * only (the tail of an event waits here for the rest of it). So it can be ended between two events: a
 * client-go reflector whose watch ends cleanly watches again from the last resourceVersion it got, on
 * another replica, and misses nothing, while one whose stream breaks mid-event sees an error. Without a
 * framing (logs -f, proxy, a CBOR watch) bytes pass as they come and the end falls between two writes.
 */
class StreamGate extends Writable {
  private held: Buffer = Buffer.alloc(0);
  private ended = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly framing: WatchFraming | undefined,
  ) {
    super();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    // Once ended by the gateway, what still arrives belongs to the client's next watch.
    if (this.ended) return done();
    let out = chunk;
    if (this.framing) {
      const all = this.held.length ? Buffer.concat([this.held, chunk]) : chunk;
      const whole = wholeEventsLength(this.framing, all);
      out = all.subarray(0, whole);
      this.held = all.subarray(whole);
    }
    if (out.length === 0 || this.res.write(out)) done();
    else this.res.once('drain', () => done());
  }

  /** The backend ended the answer: all of it goes on. */
  override _final(done: (err?: Error | null) => void): void {
    if (!this.ended) this.res.end(this.held);
    done();
  }

  /** The backend failed mid-answer: the client sees a broken stream, as it would without the gateway. */
  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    if (!this.res.writableEnded) this.res.destroy(err ?? undefined);
    done(err);
  }

  /**
   * Ends the answer after what was passed on (whole events of a watch), and then its connection, so the
   * client's next request opens a new one (through the load balancer, to another replica).
   */
  endCleanly(): void {
    if (this.ended || this.res.writableEnded) return;
    this.ended = true;
    const socket = this.res.socket;
    this.res.end(() => socket?.end());
  }
}

/** The gateway's own credential on a backend that takes a bearer token (the host, from a pod). */
function setBearer(req: IncomingMessage, backend: Backend): void {
  const token = backend.bearer?.();
  if (token) req.headers.authorization = `Bearer ${token}`;
}

/**
 * Streams requests to API servers: bodies flow through in both directions and are never held whole,
 * so watches, chunked lists and logs -f stay open for as long as the client keeps them, and end (with
 * the upstream request) as soon as the client goes away. Ordinary requests and long-running ones use
 * separate undici pools of the backend; upgrades (exec, attach, port-forward over SPDY or WebSocket)
 * get a TLS connection of their own whose socket is spliced to the client's.
 */
export class Router {
  constructor(
    private readonly maxBodyBytes: number,
    /** Owns long-running answers and upgraded sockets while they are open: a leaving gateway closes them. */
    private readonly drain: Drain,
  ) {}

  /** Forwards a request and streams the answer back. */
  async web(req: IncomingMessage, res: ServerResponse, f: Forward): Promise<void> {
    const length = Number(req.headers['content-length'] ?? 0);
    if (length > this.maxBodyBytes) throw entityTooLarge(this.maxBodyBytes);
    impersonate(req, f.identity);
    setBearer(req, f.backend);
    const method = (req.method ?? 'GET') as Dispatcher.HttpMethod;
    const hasBody = length > 0 || req.headers['transfer-encoding'] !== undefined;
    let tooLarge: StatusError | undefined;
    // A client that goes away mid-body errors `req`; pipeline passes that on and undici aborts.
    const body = hasBody
      ? pipeline(req, bodyLimit(this.maxBodyBytes), (err) => {
          if (err instanceof StatusError) tooLarge = err;
        })
      : null;
    // Undici aborts once it writes into a `res` the client left; a body still being sent, or a stream
    // that has not answered yet, must be aborted when the client goes.
    const gone = hasBody || f.longRunning ? new AbortController() : undefined;
    const onClose = (): void => {
      if (!res.writableFinished) gone?.abort();
    };
    if (gone) res.once('close', onClose);
    // A long-running answer is closed by its owner when the gateway leaves: once streaming, after its last
    // whole event; before the backend answered, as soon as it does (with nothing of the stream).
    let gate: StreamGate | undefined;
    let closing = false;
    const endStream = (g: StreamGate): void => {
      g.endCleanly();
      gone?.abort();
    };
    const forget = f.longRunning
      ? this.drain.own({
          close: () => {
            closing = true;
            if (gate) endStream(gate);
          },
          destroy: () => {
            gone?.abort();
            res.destroy();
          },
        })
      : undefined;
    f.backend.open++;
    let refused: { code: number; type: string; chunks: Buffer[] } | undefined;
    try {
      await (f.longRunning ? f.backend.streams : f.backend.pool).stream({ path: f.path, method, headers: forwardable(req.headers), body, signal: gone?.signal }, ({ statusCode, headers }) => {
        if (statusCode >= 400 && f.refusal) {
          const chunks: Buffer[] = [];
          refused = { code: statusCode, type: String(headers['content-type'] ?? 'application/json'), chunks };
          let size = 0;
          return new Writable({
            write(chunk: Buffer, _enc, cb) {
              size += chunk.length;
              if (size <= MAX_REFUSAL_BYTES) chunks.push(chunk);
              cb();
            },
          });
        }
        res.writeHead(statusCode, forwardable(headers));
        // A body of known length leaves with its headers in one write. Streamed bodies (watches, logs -f,
        // chunked lists) send the headers at once; while that write is under way the first chunks gather
        // and leave together.
        if (headers['content-length'] === undefined) res.flushHeaders();
        // An answer of known length (a refused watch's Status) is over soon and goes on whole.
        if (!f.longRunning || headers['content-length'] !== undefined) return res;
        const g = new StreamGate(res, f.watch ? watchFraming(String(headers['content-type'] ?? '')) : undefined);
        gate = g;
        if (closing) {
          g.endCleanly();
          // Undici is still delivering these headers: the abort waits for it to take the gate.
          setImmediate(() => gone?.abort());
        }
        return g;
      });
    } catch (err) {
      if (tooLarge) throw tooLarge;
      if (res.destroyed || gone?.signal.aborted) return;
      if (res.headersSent) {
        res.destroy();
        return;
      }
      throw unavailable(f.backend, err as Error);
    } finally {
      f.backend.open--;
      if (gone) res.off('close', onClose);
      forget?.();
    }
    if (refused && !res.headersSent && !res.destroyed) {
      const body = f.refusal!(Buffer.concat(refused.chunks).toString('utf8'));
      res.writeHead(refused.code, { 'content-type': refused.type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-cache, private' });
      res.end(body);
    }
  }

  /** Forwards an upgrade (SPDY or WebSocket: exec, attach, port-forward) and splices the two sockets. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, f: Forward): Promise<void> {
    impersonate(req, f.identity);
    setBearer(req, f.backend);
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && k !== 'host' && k !== 'expect') headers[k] = v;
    f.backend.open++;
    return new Promise<void>((resolve) => {
      let settled = false;
      let forget: (() => void) | undefined;
      const finish = (): void => {
        if (settled) return;
        settled = true;
        f.backend.open--;
        forget?.();
        resolve();
      };
      const out = https.request({
        host: f.backend.target.hostname,
        port: f.backend.target.port,
        method: req.method,
        path: f.path,
        headers: { ...headers, host: f.backend.target.host },
        ...f.backend.tls,
        agent: false,
        timeout: ANSWER_WITHIN_MS,
      });
      // Until the upstream answers, a client that leaves ends the attempt.
      const onClientGone = (): void => {
        out.destroy();
        finish();
      };
      socket.once('close', onClientGone);
      out.once('timeout', () => out.destroy(new Error('no answer to the upgrade')));
      out.once('error', (err) => {
        socket.off('close', onClientGone);
        if (!socket.destroyed) endSocket(socket, unavailable(f.backend, err).toStatus());
        finish();
      });
      let spliced: Duplex | undefined;
      out.once('upgrade', (answer, upstream, upstreamHead) => {
        spliced = upstream;
        socket.off('close', onClientGone);
        out.setTimeout(0);
        const lines = [`HTTP/1.1 ${answer.statusCode ?? 101} ${answer.statusMessage ?? 'Switching Protocols'}`];
        for (let i = 0; i < answer.rawHeaders.length; i += 2) lines.push(`${answer.rawHeaders[i]}: ${answer.rawHeaders[i + 1]}`);
        socket.write(`${lines.join('\r\n')}\r\n\r\n`);
        if (upstreamHead.length) socket.write(upstreamHead);
        if (head.length) upstream.write(head);
        // Either side ending ends both; the stream owner is this splice.
        const close = (): void => {
          upstream.destroy();
          socket.destroy();
          finish();
        };
        upstream.once('close', close);
        socket.once('close', close);
        upstream.on('error', close);
        socket.on('error', close);
        upstream.pipe(socket);
        socket.pipe(upstream);
      });
      out.once('response', (answer) => {
        // Refused before upgrading (404, 403, 400 …): the answer goes back as an ordinary response.
        socket.off('close', onClientGone);
        const chunks: Buffer[] = [];
        let size = 0;
        answer.on('data', (c: Buffer) => {
          size += c.length;
          if (size <= MAX_REFUSAL_BYTES) chunks.push(c);
        });
        answer.once('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const body = Buffer.from(f.refusal ? f.refusal(text) : text);
          socket.end(`HTTP/1.1 ${answer.statusCode} ${answer.statusMessage ?? ''}\r\ncontent-type: ${answer.headers['content-type'] ?? 'application/json'}\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body.toString('utf8')}`);
          finish();
        });
        answer.once('error', () => {
          socket.destroy();
          finish();
        });
      });
      // Owned until it ends: a leaving gateway ends a session with a FIN each way (kubectl exec returns),
      // and drops an upgrade the backend has not answered yet.
      forget = this.drain.own({
        close: () => {
          if (spliced) {
            spliced.end();
            socket.end();
          } else {
            out.destroy();
            socket.destroy();
          }
        },
        destroy: () => {
          out.destroy();
          spliced?.destroy();
          socket.destroy();
        },
      });
      out.end();
    });
  }
}

const unavailable = (backend: Backend, err: Error): StatusError =>
  backend.answeredBy === 'host'
    ? new StatusError(503, 'ServiceUnavailable', `the host cluster is unavailable for tenant "${backend.tenant}": ${err.message}`)
    : tenantUnavailable(backend.tenant, err.message);

/** Answers on a raw socket (an upgrade refused before it reached a backend). */
export function endSocket(socket: Duplex, status: Status): void {
  const body = JSON.stringify(status);
  const extra = status.details?.retryAfterSeconds ? `retry-after: ${status.details.retryAfterSeconds}\r\n` : '';
  socket.end(`HTTP/1.1 ${status.code} ${status.reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}connection: close\r\n\r\n${body}`);
}
