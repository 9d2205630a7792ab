import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import type { Backend } from '../../src/gateway/backends.js';
import { Drain } from '../../src/gateway/drain.js';
import { Router } from '../../src/gateway/forward.js';

const event = (name: string): string => `${JSON.stringify({ type: 'ADDED', object: { metadata: { name, resourceVersion: name } } })}\n`;

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

async function listen(handler: http.RequestListener): Promise<string> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/**
 * A backend that streams two whole events and half of a third, then waits; a gateway in front of it
 * (the Router alone); a client that reads the watch to its end.
 */
async function watchThroughGateway(contentType: string, body: string[], drain = new Drain()): Promise<{ drain: Drain; answer: Promise<{ text: string; clean: boolean }>; served: Promise<void> }> {
  let sent!: () => void;
  const served = new Promise<void>((r) => (sent = r));
  const backendUrl = await listen((_req, res) => {
    res.writeHead(200, { 'content-type': contentType });
    for (const part of body) res.write(part);
    sent();
  });
  const target = new URL(backendUrl);
  const backend: Backend = { tenant: 't', answeredBy: 'tenant', target, pool: new Pool(target.origin), streams: new Pool(target.origin), tls: { ca: '', cert: '', key: '' }, open: 0 };
  closers.push(async () => {
    await backend.pool.destroy();
    await backend.streams.destroy();
  });
  const router = new Router(1024 * 1024, drain);
  const gatewayUrl = await listen((req, res) => void router.web(req, res, { backend, path: '/api/v1/configmaps?watch=1', identity: undefined, longRunning: true, watch: true }));
  const answer = new Promise<{ text: string; clean: boolean }>((resolve, reject) => {
    http.get(`${gatewayUrl}/watch`, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ text: Buffer.concat(chunks).toString('utf8'), clean: res.complete }));
      res.on('error', reject);
    }).on('error', reject);
  });
  return { drain, answer, served };
}

describe('a leaving gateway ends a watch between events', () => {
  it('passes on whole JSON events and ends the answer cleanly before the half one', async () => {
    const third = event('3');
    const { drain, answer, served } = await watchThroughGateway('application/json', [event('1') + event('2').slice(0, 10), event('2').slice(10), third.slice(0, 15)]);
    await served;
    // Until the drain, the client has everything whole.
    await new Promise((r) => setTimeout(r, 100));
    expect(drain.size).toBe(1);
    await drain.closeAll(5000);
    const got = await answer;
    expect(got).toEqual({ text: event('1') + event('2'), clean: true });
    expect(drain.size).toBe(0);
  });

  it('ends a watch that starts once it is closing as soon as the backend answers, with no event', async () => {
    const drain = new Drain();
    await drain.closeAll(1000);
    const { answer } = await watchThroughGateway('application/json', [event('1')], drain);
    expect(await answer).toEqual({ text: '', clean: true });
    expect(drain.size).toBe(0);
  });

  it('cuts a protobuf watch only between length-prefixed frames', async () => {
    const frame = (text: string): string => {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(Buffer.byteLength(text));
      return b.toString('latin1') + text;
    };
    const { drain, answer, served } = await watchThroughGateway('application/vnd.kubernetes.protobuf;stream=watch', [frame('one\n'), frame('two-and-more').slice(0, 9)]);
    await served;
    await new Promise((r) => setTimeout(r, 100));
    await drain.closeAll(5000);
    const got = await answer;
    expect(got.clean).toBe(true);
    expect(Buffer.from(got.text, 'utf8').subarray(4).toString('utf8')).toBe('one\n');
  });
});
