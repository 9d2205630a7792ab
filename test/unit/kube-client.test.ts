import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { core, KubeClient, type WatchEvent } from '../../src/k8s/client.js';
import { Informer } from '../../src/k8s/informer.js';
import { StatusError } from '../../src/k8s/status.js';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

async function client(handler: http.RequestListener, answerWithinMs: number): Promise<KubeClient> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const c = new KubeClient({ server: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }, { answerWithinMs });
  closers.push(async () => {
    await c.dispatcher.destroy();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  return c;
}

describe('KubeClient against a server that stops answering', () => {
  it('fails a request the server accepted but never answered, with a 503 Status that says so', async () => {
    const c = await client(() => undefined, 300);
    const began = performance.now();
    const err = await c.get(core('configmaps', 'default', 'x')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StatusError);
    expect((err as StatusError).code).toBe(503);
    expect((err as StatusError).message).toMatch(/^cannot reach http:\/\/127\.0\.0\.1:\d+: no answer within 0\.3 s$/);
    expect(performance.now() - began).toBeGreaterThanOrEqual(250);
  });

  it('lets a watch wait longer than that between events', async () => {
    const c = await client((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      setTimeout(() => res.end(`${JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'late' } } })}\n`), 600);
    }, 200);
    const seen: WatchEvent[] = [];
    await c.watch(core('configmaps', 'default'), { signal: new AbortController().signal }, (e) => void seen.push(e));
    expect(seen.map((e) => e.object.metadata.name)).toEqual(['late']);
  });
});

describe('Informer', () => {
  it('fails the wait for its first list when stopped before it: a waiter is never left hanging', async () => {
    const c = await client((_req, res) => res.writeHead(503, { 'content-type': 'application/json' }).end('{"kind":"Status","code":503,"message":"not the leader"}'), 1_000);
    const errors: string[] = [];
    const informer = new Informer(c, core('configmaps', 'default'), {}, {}, (err) => errors.push(err.message));
    const synced = informer.start();
    await new Promise((r) => setTimeout(r, 300));
    await informer.stop();
    await expect(synced).rejects.toThrow('stopped before configmaps were listed');
    expect(errors[0]).toContain('not the leader');
  });
});
