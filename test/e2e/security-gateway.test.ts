import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { ClientRequest } from 'node:http';
import path from 'node:path';
import { Agent, request } from 'undici';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/controlplane/ports.js';
import { readState } from '../../src/dev/state.js';
import { DEFAULT_LIMITS } from '../../src/gateway/limits.js';
import { eventually, kplex, kubectl, run, useSharedHost, type Run } from './helpers.js';

interface Kubeconfig {
  clusters: { cluster: { server: string; 'certificate-authority-data': string } }[];
  users: { user: { token: string } }[];
}

/**
 * The gateway's own attack surface, class by class, against the real processes: what a tenant user
 * sends in a path, an impersonation header or a flood of long requests never reaches further than its
 * tenant and role allow.
 */
describe('gateway security', () => {
  const shared = useSharedHost('security-gateway', ['team-a', 'team-b']);
  const { dir, dataDir, env } = shared;
  const kc = (name: string) => path.join(dir, `${name}.kubeconfig`);
  const k = (who: string, args: string[], input?: string) => kubectl(kc(who), args, { input });
  const host = (args: string[]) => kubectl(shared.hostKubeconfig, args);
  let agent: Agent;
  let ca: string;
  let gatewayUrl: string;
  let metricsUrl: string;

  async function connect(file: string, tenant: string, flags: string[] = []): Promise<void> {
    const r = await kplex(['connect', tenant, '--print', '--context', 'kplex-host', ...flags], env);
    expect(r.code, r.stderr).toBe(0);
    writeFileSync(kc(file), r.stdout);
  }
  const tokenOf = (who: string) => (YAML.parse(readFileSync(kc(who), 'utf8')) as Kubeconfig).users[0]!.user.token;

  /** One raw HTTPS request to the gateway, as `who`, with the path sent exactly as given (no client-side normalization). */
  function raw(who: string, method: string, path: string, headers: Record<string, string | string[]> = {}, body?: string) {
    const url = new URL(gatewayUrl);
    return new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }>((resolve, reject) => {
      const req = https.request({ host: url.hostname, port: url.port, method, path, ca, agent: false, headers: { authorization: `Bearer ${tokenOf(who)}`, ...headers } }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.once('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      });
      req.once('error', reject);
      req.end(body);
    });
  }

  async function metric(name: string, labels: string): Promise<number> {
    const text = await (await request(metricsUrl)).body.text();
    const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
    return line ? Number(line.split(' ').at(-1)) : 0;
  }

  async function runningPod(who: string, name: string): Promise<void> {
    const r = await k(who, ['run', name, '--image=nginx']);
    expect(r.code, r.stderr).toBe(0);
    await eventually(async () => ((await k(who, ['get', 'pod', name, '-o', 'jsonpath={.status.phase}'])).stdout === 'Running' ? true : undefined), 60_000, `pod ${name} running`);
  }

  beforeAll(async () => {
    const [a, b] = await Promise.all([shared.createTenant('team-a'), shared.createTenant('team-b')]);
    copyFileSync(a, kc('a'));
    copyFileSync(b, kc('b'));
    await Promise.all([connect('a-view', 'team-a', ['--role', 'view', '--user', 'jane']), connect('a-edit', 'team-a', ['--role', 'edit', '--user', 'ed'])]);
    const config = YAML.parse(readFileSync(kc('a'), 'utf8')) as Kubeconfig;
    gatewayUrl = new URL(config.clusters[0]!.cluster.server).origin;
    ca = Buffer.from(config.clusters[0]!.cluster['certificate-authority-data'], 'base64').toString();
    agent = new Agent({ connect: { ca } });
    metricsUrl = readState(dataDir)!.gateway!.metricsUrl!;
    await Promise.all([runningPod('a', 'web'), runningPod('b', 'web')]);
  });

  afterAll(async () => {
    await agent?.close();
  });

  it('class 1: a name with encoded separators or dot segments is refused (400) and nothing reaches the host', async () => {
    const attempts = [
      // An authorized pods/log (view may read logs) turned into an exec on the host…
      ['GET', '/tenants/team-a/api/v1/namespaces/default/pods/web%2Fexec%3Fcommand%3Did%26x%3D/log'],
      ['GET', '/tenants/team-a/api/v1/namespaces/default/pods/web%3Fx=/log'],
      // …or a POST into a create of an untranslated pod in the host namespace.
      ['POST', '/tenants/team-a/api/v1/namespaces/default/pods/x%2F..%2F..%2Fnamespaces%2Fkplex-team-a%2Fpods%3F/exec'],
      ['GET', '/tenants/team-a/api/v1/namespaces/%2e%2e/pods/web/log'],
      ['GET', '/tenants/team-a/api/v1/namespaces/default/pods/Web_1/log'],
      ['GET', '/tenants/team-a/api/v1/namespaces/default/pods/web%00/log'],
    ] as const;
    for (const [method, url] of attempts) {
      const r = await raw('a-view', method, url, { 'content-type': 'application/json' }, method === 'POST' ? '{"kind":"Pod","apiVersion":"v1","metadata":{"name":"evil"},"spec":{"containers":[{"name":"c","image":"nginx"}]}}' : undefined);
      expect(r.status, `${method} ${url}: ${r.text}`).toBe(400);
      expect(JSON.parse(r.text)).toMatchObject({ kind: 'Status', reason: 'BadRequest' });
    }
    const onHost = await host(['-n', 'kplex-team-a', 'get', 'pods', '-o', 'jsonpath={.items[*].metadata.name}']);
    expect(onHost.stdout.split(' ').filter(Boolean).every((n) => n.endsWith('-x-team-a'))).toBe(true);
  });

  it('class 2: the tenant RBAC decides log/exec/attach/port-forward, and answers never name the host', async () => {
    const logs = await k('a-edit', ['logs', 'web']);
    expect(logs.code, logs.stderr).toBe(0);
    // The tenant admin takes the edit role's rights away inside the tenant, leaving ed only reading pods
    // (kubectl reads the pod before asking for its log, exec or port-forward).
    const unbind = await k('a', ['delete', 'clusterrolebinding', 'kplex:edit:edit']);
    expect(unbind.code, unbind.stderr).toBe(0);
    expect((await k('a', ['create', 'clusterrole', 'pod-reader', '--verb=get,list', '--resource=pods'])).code).toBe(0);
    expect((await k('a', ['create', 'clusterrolebinding', 'ed-pod-reader', '--clusterrole=pod-reader', '--user=ed'])).code).toBe(0);
    try {
      const denied = await k('a-edit', ['logs', 'web']);
      expect(denied.code).not.toBe(0);
      expect(denied.stderr).toContain('pods "web" is forbidden: User "ed" cannot get resource "pods/log" in API group "" in the namespace "default"');
      const exec = await k('a-edit', ['exec', 'web', '--', 'true']);
      expect(exec.code).not.toBe(0);
      expect(exec.stderr).toMatch(/forbidden: User "ed" cannot create resource "pods\/exec"/);
      const pf = await k('a-edit', ['port-forward', 'pod/web', `${await freePort()}:80`]);
      expect(pf.code).not.toBe(0);
      expect(pf.stderr).toMatch(/forbidden: User "ed" cannot create resource "pods\/portforward"/);
    } finally {
      // The tenant controller's bootstrap puts the binding back on its next reconcile; do it now.
      await k('a', ['create', 'clusterrolebinding', 'kplex:edit:edit', '--clusterrole=edit', '--group=kplex:edit']);
      await k('a', ['delete', 'clusterrolebinding', 'ed-pod-reader']);
    }
    const missing = await k('a', ['logs', 'nope']);
    expect(missing.stderr).toContain('pods "nope" not found');
    const noContainer = await k('a', ['logs', 'web', '-c', 'nosuch']);
    expect(noContainer.code).not.toBe(0);
    for (const r of [missing, noContainer]) {
      expect(r.stderr).not.toMatch(/kplex-team-a|-x-/);
    }
  });

  it('class 5: kubectl --as is honoured only as far as the tenant lets the token user impersonate', async () => {
    // alice exists only as a name: she may do nothing in the tenant.
    expect((await k('a', ['auth', 'can-i', 'delete', 'pods', '--as=alice'])).stdout.trim()).toBe('no');
    const asAlice = await k('a', ['--as=alice', 'delete', 'pod', 'web', '--wait=false']);
    expect(asAlice.code).not.toBe(0);
    expect(asAlice.stderr).toContain('pods "web" is forbidden: User "alice" cannot delete resource "pods"');
    expect((await k('a', ['get', 'pod', 'web'])).code).toBe(0);
    // Once the tenant admin lets her read pods, the admin sees what alice sees.
    expect((await k('a', ['create', 'rolebinding', 'alice-view', '--clusterrole=view', '--user=alice'])).code).toBe(0);
    expect((await k('a', ['auth', 'can-i', 'list', 'pods', '--as=alice'])).stdout.trim()).toBe('yes');
    expect((await k('a', ['--as=alice', 'get', 'pod', 'web', '-o', 'name'])).stdout.trim()).toBe('pod/web');
    // An edit token may not impersonate users at all (its role and the tenant's edit role both say no).
    const fromEdit = await k('a-edit', ['--as=alice', 'get', 'pods']);
    expect(fromEdit.code).not.toBe(0);
    expect(fromEdit.stderr).toContain('users "alice" is forbidden: User "ed" cannot impersonate resource "users" in API group "" at the cluster scope');
    const masters = await k('a-edit', ['--as=ed', '--as-group=system:masters', 'get', 'secrets']);
    expect(masters.code).not.toBe(0);
    expect(masters.stderr).toMatch(/cannot impersonate/);
    // Groups alone are refused, as kube-apiserver refuses them.
    const groupOnly = await raw('a', 'GET', '/tenants/team-a/api/v1/namespaces/default/pods', { 'impersonate-group': 'system:masters' });
    expect(groupOnly.status).toBe(400);
  });

  it('class 8: one user holding its limit of long requests gets 429 and leaves other tenants served; the host connections go idle once it leaves', async () => {
    const limit = DEFAULT_LIMITS.perUser.longRunning;
    const held: ClientRequest[] = [];
    const open = (url: string) =>
      new Promise<number>((resolve, reject) => {
        const req = https.get(`${gatewayUrl}${url}`, { ca, agent: false, headers: { authorization: `Bearer ${tokenOf('a-view')}` } }, (res) => {
          resolve(res.statusCode ?? 0);
          res.resume();
        });
        req.once('error', reject);
        held.push(req);
      });
    try {
      // Never-ending logs of one pod: each holds a connection to the host for as long as the client stays.
      const codes = await Promise.all(Array.from({ length: limit }, () => open('/tenants/team-a/api/v1/namespaces/default/pods/web/log?follow=true')));
      expect(codes.every((c) => c === 200), codes.join(',')).toBe(true);
      const over = await raw('a-view', 'GET', '/tenants/team-a/api/v1/namespaces/default/pods/web/log?follow=true');
      expect(over.status).toBe(429);
      expect(over.headers['retry-after']).toBe('1');
      expect(JSON.parse(over.text)).toMatchObject({ kind: 'Status', reason: 'TooManyRequests', code: 429 });
      expect(await metric('kplex_gateway_upstream_requests', 'tenant="team-a",upstream="host"')).toBe(limit);
      // The other tenant's logs, the same user's ordinary requests and the tenant admin's watch are served.
      const other: Run = await k('b', ['logs', 'web']);
      expect(other.code, other.stderr).toBe(0);
      expect((await k('a-view', ['get', 'pods', '-o', 'name'])).code).toBe(0);
      expect((await k('a', ['get', 'pods', '--watch-only', '--request-timeout=2s'])).stderr).not.toMatch(/429|Too many/);
    } finally {
      for (const r of held) r.destroy();
    }
    await eventually(async () => ((await metric('kplex_gateway_upstream_requests', 'tenant="team-a",upstream="host"')) === 0 ? true : undefined), 10_000, 'host requests of team-a to end');
    // A body that never ends: the client leaves mid-upload, the upstream request ends with it. (A kind
    // the tenant keeps to itself: mirrored kinds are read whole before they are forwarded.)
    const upload = https.request(`${gatewayUrl}/tenants/team-a/api/v1/namespaces/default/limitranges`, { method: 'POST', ca, agent: false, headers: { authorization: `Bearer ${tokenOf('a')}`, 'content-type': 'application/json', 'transfer-encoding': 'chunked' } });
    upload.on('error', () => undefined); // destroyed on purpose below
    upload.write('{"apiVersion":"v1","kind":"LimitRange",');
    await eventually(async () => ((await metric('kplex_gateway_upstream_requests', 'tenant="team-a",upstream="tenant"')) >= 1 ? true : undefined), 10_000, 'the upload to reach the tenant');
    upload.destroy();
    await eventually(async () => ((await metric('kplex_gateway_upstream_requests', 'tenant="team-a",upstream="tenant"')) === 0 ? true : undefined), 10_000, 'the upload to end upstream');
  });

  it('class 9: /metrics is not on the tenant-facing port, and made-up tenants make no series', async () => {
    const r = await run('curl', ['-sk', `${gatewayUrl}/metrics`], {}, 10_000);
    expect(JSON.parse(r.stdout)).toMatchObject({ kind: 'Status', code: 404 });
    for (let i = 0; i < 5; i++) await request(`${gatewayUrl}/tenants/made-up-${i}/api`, { dispatcher: agent }).then((x) => x.body.dump());
    const text = await (await request(metricsUrl)).body.text();
    expect(text).not.toContain('made-up-');
    expect(text).toMatch(/kplex_gateway_requests_total\{tenant="",verb="get",code="401"\} \d+/);
    expect(text).toMatch(/kplex_gateway_requests_total\{tenant="team-a",verb="list",code="200"\} \d+/);
  });

  it('counts an open watch in the metrics while it runs, and not after', async () => {
    const before = await metric('kplex_gateway_open_watches', 'tenant="team-b"');
    const watch = https.get(`${gatewayUrl}/tenants/team-b/api/v1/namespaces/default/configmaps?watch=true`, { ca, agent: false, headers: { authorization: `Bearer ${tokenOf('b')}` } });
    watch.on('error', () => undefined); // destroyed on purpose below
    await eventually(async () => ((await metric('kplex_gateway_open_watches', 'tenant="team-b"')) === before + 1 ? true : undefined), 10_000, 'the watch counted');
    watch.destroy();
    await eventually(async () => ((await metric('kplex_gateway_open_watches', 'tenant="team-b"')) === before ? true : undefined), 10_000, 'the watch no longer counted');
  });

  it('class 10: a chunked upload with Expect: 100-continue is stored', async () => {
    const body = JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'continued' }, data: { a: 'b' } });
    const r = await run('curl', ['-sk', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'POST', '-H', `Authorization: Bearer ${tokenOf('a')}`, '-H', 'Content-Type: application/json', '-H', 'Expect: 100-continue', '-H', 'Transfer-Encoding: chunked', '--data-binary', body, `${gatewayUrl}/tenants/team-a/api/v1/namespaces/default/configmaps`], {}, 20_000);
    expect(r.stdout).toBe('201');
    expect((await k('a', ['get', 'configmap', 'continued', '-o', 'jsonpath={.data.a}'])).stdout).toBe('b');
  });
});
