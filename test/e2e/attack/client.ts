/**
 * A raw HTTPS client for the gateway: the path goes out byte for byte as built (no URL normalization,
 * no dot-segment removal), upgrades (WebSocket, SPDY) are attempted for real, and streaming answers
 * (watches, logs, proxies) are read for a moment only.
 */
import { randomBytes } from 'node:crypto';
import https from 'node:https';
import type { Answer } from './oracle.js';

export interface RawRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[]>;
  body?: string;
  upgrade?: 'websocket' | 'spdy';
  /** The subresource of an upgrade, for its protocol headers. */
  subresource?: string;
  streaming?: boolean;
}

export interface RawAnswer extends Answer {
  error?: string;
  ms: number;
}

const MAX_BODY = 256 * 1024;

export class GatewayClient {
  private readonly agent: https.Agent;
  private readonly base: URL;

  constructor(url: string, private readonly ca: string, private readonly timeoutMs = 3000, private readonly streamMs = 400) {
    this.base = new URL(url);
    this.agent = new https.Agent({ keepAlive: true, maxSockets: 32, ca });
  }

  send(r: RawRequest): Promise<RawAnswer> {
    const started = Date.now();
    return new Promise((resolve) => {
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      /** The answer so far, once its headers came: what a timeout reports. */
      let partial: (() => Omit<RawAnswer, 'ms'>) | undefined;
      const finish = (a: Omit<RawAnswer, 'ms'>): void => {
        if (settled) return;
        settled = true;
        if (timer) clearTimeout(timer);
        resolve({ ...a, ms: Date.now() - started });
      };
      const headers: Record<string, string | string[]> = { ...r.headers };
      if (r.body !== undefined) headers['content-length'] = String(Buffer.byteLength(r.body));
      if (r.upgrade) {
        headers.connection = 'Upgrade';
        const portforward = r.subresource === 'portforward';
        if (r.upgrade === 'websocket') {
          headers.upgrade = 'websocket';
          headers['sec-websocket-key'] = randomBytes(16).toString('base64');
          headers['sec-websocket-version'] = '13';
          headers['sec-websocket-protocol'] = portforward ? 'portforward.k8s.io' : 'v5.channel.k8s.io, v4.channel.k8s.io';
        } else {
          headers.upgrade = 'SPDY/3.1';
          headers['x-stream-protocol-version'] = portforward ? 'portforward.k8s.io' : 'v4.channel.k8s.io';
        }
      }
      let req: ReturnType<typeof https.request>;
      try {
        req = https.request({
          hostname: this.base.hostname,
          port: this.base.port,
          path: r.path,
          method: r.method,
          headers,
          ...(r.upgrade ? { agent: false, ca: this.ca } : { agent: this.agent }),
        });
      } catch (err) {
        finish({ status: 0, headers: {}, body: '', upgraded: false, error: `client refused to send: ${(err as Error).message}` });
        return;
      }
      timer = setTimeout(() => {
        req.destroy();
        finish(partial ? partial() : { status: 0, headers: {}, body: '', upgraded: false, error: 'timeout' });
      }, this.timeoutMs);
      req.on('upgrade', (res, socket) => {
        socket.destroy();
        finish({ status: res.statusCode ?? 101, headers: res.headers, body: '', upgraded: true });
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        partial = () => ({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), upgraded: false });
        const done = (): void => finish(partial!());
        if (r.streaming || r.upgrade) {
          setTimeout(() => {
            done();
            res.destroy();
          }, this.streamMs).unref();
        }
        res.on('data', (chunk: Buffer) => {
          if (size < MAX_BODY) {
            chunks.push(chunk);
            size += chunk.length;
          }
        });
        res.on('end', done);
        res.on('close', done);
        res.on('error', done);
      });
      req.on('error', (err) => finish({ status: 0, headers: {}, body: '', upgraded: false, error: err.message }));
      req.end(r.body);
    });
  }

  /** A JSON request for setup and checks: status and parsed body. */
  async json<T = Record<string, unknown>>(token: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: T; text: string }> {
    const a = await this.send({
      method,
      path,
      headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let parsed: unknown;
    try {
      parsed = JSON.parse(a.body);
    } catch {
      parsed = undefined;
    }
    return { status: a.status, body: parsed as T, text: a.error ?? a.body };
  }

  close(): void {
    this.agent.destroy();
  }
}

/** Runs `fn` over `items` with at most `limit` at a time, in order of the items. */
export async function bounded<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
