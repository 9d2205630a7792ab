import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { SignJWT, importJWK } from 'jose';
import YAML from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { KubeClient } from '../../src/k8s/client.js';
import { freePort } from '../../src/controlplane/ports.js';
import { readState } from '../../src/dev/state.js';
import { loadSigningKeys } from '../../src/tenants/system.js';
import { packageRoot } from '../../src/paths.js';
import { eventually, kplex, kubectl, processesMentioning, run, useSharedHost } from './helpers.js';

interface TenantRow {
  name: string;
  status: string;
  connected: boolean;
  namespace: string;
}

/** Tenants through the gateway, driven with the real kubectl, as a user would. */
describe('kplex create/connect and the gateway', () => {
  const TENANTS = ['team-a', 'team-b'];
  const shared = useSharedHost('gateway', TENANTS);
  const { dir, dataDir, env } = shared;
  /** `kplex list -o json`: the tenants of this file, and those of any other file on the shared host. */
  const list = async (args: string[] = ['--context', 'kplex-host']): Promise<TenantRow[]> => {
    const r = await kplex(['list', '-o', 'json', ...args], env);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as TenantRow[];
  };
  const kc = (name: string) => path.join(dir, `${name}.kubeconfig`);
  const k = (who: string, args: string[], input?: string) => kubectl(kc(who), args, { input });

  /** Writes a kubeconfig for a tenant with `kplex connect --print` and the given flags. */
  async function connectPrint(file: string, tenant: string, flags: string[] = []): Promise<string> {
    const r = await kplex(['connect', tenant, '--print', '--context', 'kplex-host', ...flags], env);
    expect(r.code, r.stderr).toBe(0);
    writeFileSync(kc(file), r.stdout);
    return r.stdout;
  }

  beforeAll(async () => {
    // Only team-a's create connects (writes the kubeconfig), so the two can start at once.
    const [a, b] = await Promise.all([
      kplex(['create', 'team-a', '--context', 'kplex-host'], env),
      kplex(['create', 'team-b', '--connect=false', '--context', 'kplex-host'], env),
    ]);
    expect(a.code, a.stderr).toBe(0);
    expect(a.stderr).toMatch(/starting the control plane of team-a .*API server ready in/);
    expect(b.code, b.stderr).toBe(0);
    await Promise.all([connectPrint('a', 'team-a'), connectPrint('b', 'team-b'), connectPrint('a-view', 'team-a', ['--role', 'view', '--user', 'jane'])]);
  });

  it('connect switched the user kubeconfig to the tenant context; list shows both tenants', async () => {
    const config = YAML.parse(readFileSync(env.KUBECONFIG!, 'utf8')) as { 'current-context': string };
    expect(config['current-context']).toBe('kplex_team-a');
    // Without --context: connect made a tenant context current, and list finds the host it was connected from.
    const rows = (await list([])).filter((r) => TENANTS.includes(r.name));
    expect(rows.map((r) => [r.name, r.status, r.connected, r.namespace])).toEqual([
      ['team-a', 'Ready', true, 'kplex-team-a'],
      ['team-b', 'Ready', false, 'kplex-team-b'],
    ]);
    const table = await kplex(['list'], env);
    expect(table.stdout).toMatch(/^NAME\s+NAMESPACE\s+STATUS\s+AGE\s+CONNECTED/);
  });

  it('refuses bad input with one clear line and creates nothing', async () => {
    const before = (await list()).map((t) => t.name);
    expect(before).toEqual(expect.arrayContaining(TENANTS));
    const values = path.join(dir, 'bad-values.yaml');
    writeFileSync(values, 'sync:\n  ingress: {enabled: true}\n');
    const cases: [string[], RegExp][] = [
      [['create', 'Team_C'], /^kplex: tenant name "Team_C" is not a DNS label/],
      [['create', 'x'.repeat(60)], /^kplex: tenant name "x+" is longer than 57 characters/],
      [['create', 'kube-system'], /^kplex: tenant name "kube-system" is reserved/],
      [['create', 'team-a'], /^kplex: tenant "team-a" already exists; change it with: kplex create team-a --upgrade -f values.yaml/],
      [['create', 'team-c', '-f', values], /^kplex: .*bad-values.yaml: sync: Unrecognized key\(s\) in object: 'ingress'/],
      [['create', 'team-c', '--upgrade'], /^kplex: tenant "team-c" not found; create it without --upgrade/],
      [['delete', 'team-c'], /^kplex: tenant "team-c" not found/],
      [['connect', 'team-a', '--role', 'root'], /^kplex: --role must be one of admin, edit, view; got "root"/],
    ];
    for (const [args, message] of cases) {
      const r = await kplex([...args, '--context', 'kplex-host'], env);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.stderr.trim().split('\n').at(-1), args.join(' ')).toMatch(message);
    }
    expect((await list()).map((t) => t.name)).toEqual(before);
  });

  it('serves get ns, apply, delete, api-resources and explain', async () => {
    const ns = await k('a', ['get', 'ns', '-o', 'name']);
    expect(ns.code, ns.stderr).toBe(0);
    expect(ns.stdout).toContain('namespace/kube-system');
    const manifest = 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: default}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: c, image: nginx}]}\n';
    const apply = await k('a', ['apply', '-f', '-'], manifest);
    expect(apply.code, apply.stderr).toBe(0);
    expect(apply.stdout).toContain('deployment.apps/web created');
    const resources = await k('a', ['api-resources', '-o', 'name']);
    expect(resources.code, resources.stderr).toBe(0);
    expect(resources.stdout).toContain('deployments.apps');
    const explain = await k('a', ['explain', 'deployment.spec.replicas']);
    expect(explain.code, explain.stderr).toBe(0);
    expect(explain.stdout).toMatch(/replicas/i);
    const del = await k('a', ['delete', 'deployment', 'web']);
    expect(del.code, del.stderr).toBe(0);
  });

  it('streams a watch: get -w sees a change made by another client', async () => {
    const watcher: ChildProcess = spawn('kubectl', ['--kubeconfig', kc('a'), 'get', 'configmaps', '-w', '-o', 'name'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let seen = '';
    watcher.stdout!.on('data', (d: Buffer) => (seen += d.toString()));
    try {
      await eventually(async () => (seen.includes('kube-root-ca.crt') ? true : undefined), 20_000, 'the initial list');
      const create = await k('a', ['create', 'configmap', 'watched', '--from-literal=a=b']);
      expect(create.code, create.stderr).toBe(0);
      await eventually(async () => (seen.includes('configmap/watched') ? true : undefined), 20_000, 'the watch event');
    } finally {
      watcher.kill();
    }
  });

  it('keeps tenants apart: a CRD of team-a does not exist in team-b', async () => {
    const crd = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}]
`;
    expect((await k('a', ['apply', '-f', '-'], crd)).code).toBe(0);
    expect((await k('a', ['get', 'crd', 'widgets.example.com'])).code).toBe(0);
    const inB = await k('b', ['get', 'crd', 'widgets.example.com']);
    expect(inB.code).not.toBe(0);
    expect(inB.stderr).toContain('NotFound');
  });

  it('a view token reads but cannot create, and auth can-i says so', async () => {
    expect((await k('a-view', ['get', 'pods'])).code).toBe(0);
    const create = await k('a-view', ['create', 'configmap', 'nope']);
    expect(create.code).not.toBe(0);
    expect(create.stderr).toContain('configmaps is forbidden: User "jane" cannot create resource "configmaps" in API group "" in the namespace "default"');
    expect((await k('a-view', ['auth', 'can-i', 'create', 'configmaps'])).stdout.trim()).toBe('no');
    expect((await k('a-view', ['auth', 'can-i', 'list', 'pods'])).stdout.trim()).toBe('yes');
    expect((await k('a', ['auth', 'can-i', 'create', 'configmaps'])).stdout.trim()).toBe('yes');
  });

  it('auth can-i answers what passes both the gateway policy and the tenant RBAC', async () => {
    // The tenant admin lets jane edit inside the tenant; her token's role (view) still does not.
    const bind = await k('a', ['create', 'rolebinding', 'jane-edit', '--clusterrole=edit', '--user=jane']);
    expect(bind.code, bind.stderr).toBe(0);
    const canI = await k('a-view', ['auth', 'can-i', 'create', 'configmaps']);
    expect(canI.stdout.trim()).toBe('no - denied by the kplex gateway policy for role "view"');
    expect((await k('a-view', ['create', 'configmap', 'nope'])).code).not.toBe(0);
    expect((await k('a-view', ['auth', 'can-i', 'get', 'configmaps'])).stdout.trim()).toBe('yes');
  });

  it("refuses another tenant's token, an expired one and an unsigned one with 401", async () => {
    const bConfig = YAML.parse(readFileSync(kc('b'), 'utf8')) as { users: { user: { token: string } }[] };
    const bToken = bConfig.users[0]!.user.token;
    const cross = await k('a', ['--token', bToken, 'get', 'pods']);
    expect(cross.code).not.toBe(0);
    expect(cross.stderr).toMatch(/Unauthorized|must be logged in/);

    const host = new KubeClient({ server: readState(dataDir)!.server!, ...hostCredentials() });
    const [key] = await loadSigningKeys(host);
    await host.close();
    const { createdAt: _c, ...jwk } = key!;
    const expired = await new SignJWT({ tenant: 'team-a', role: 'admin', groups: [] })
      .setProtectedHeader({ alg: 'ES256', kid: key!.kid })
      .setIssuer('kplex').setAudience('kplex-gateway').setSubject('admin')
      .setIssuedAt(Math.floor(Date.now() / 1000) - 3600).setExpirationTime(Math.floor(Date.now() / 1000) - 60)
      .sign(await importJWK(jwk, 'ES256'));
    const r = await k('a', ['--token', expired, 'get', 'pods']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Unauthorized/);

    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const none = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ tenant: 'team-a', sub: 'admin', role: 'admin', iss: 'kplex', aud: 'kplex-gateway', exp: 9999999999 })}.`;
    const u = await k('a', ['--token', none, 'get', 'pods']);
    expect(u.code).not.toBe(0);
    expect(u.stderr).toMatch(/Unauthorized/);
  });

  it('rotates signing keys without a restart: old tokens keep working, new ones use the new key', async () => {
    const kidOf = (config: string) => {
      const token = (YAML.parse(config) as { users: { user: { token: string } }[] }).users[0]!.user.token;
      return (JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as { kid: string }).kid;
    };
    const oldKid = kidOf(readFileSync(kc('a'), 'utf8'));
    const rotate = await kplex(['gateway', 'rotate-keys', '--context', 'kplex-host'], env);
    expect(rotate.code, rotate.stderr).toBe(0);
    const fresh = await connectPrint('a-rotated', 'team-a');
    expect(kidOf(fresh)).not.toBe(oldKid);
    await eventually(async () => ((await k('a-rotated', ['get', 'ns', 'default'])).code === 0 ? true : undefined), 10_000, 'the new key accepted');
    expect((await k('a', ['get', 'ns', 'default'])).code).toBe(0);
  });

  it('answers a body over the limit with 413', async () => {
    const big = path.join(dir, 'big.txt');
    writeFileSync(big, 'x'.repeat(4 * 1024 * 1024));
    const r = await k('a', ['create', 'configmap', 'big', `--from-file=${big}`]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Request entity too large|413/);
  });

  it('a second gateway process on the same host serves the same tenant', async () => {
    const port = await freePort();
    const gw = spawn(process.execPath, [path.join(packageRoot, 'bin', 'kplex.js'), 'gateway', '--listen', `127.0.0.1:${port}`, '--certs', path.join(dataDir, 'gateway'), '--context', 'kplex-host'], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const config = readFileSync(kc('a'), 'utf8').replace(/server: https:\/\/127\.0\.0\.1:\d+/, `server: https://127.0.0.1:${port}`);
      writeFileSync(kc('a-second'), config);
      const ns = await eventually(async () => {
        const r = await k('a-second', ['get', 'configmap', 'watched', '-o', 'name']);
        return r.code === 0 ? r.stdout : undefined;
      }, 30_000, 'the second gateway');
      expect(ns.trim()).toBe('configmap/watched');
    } finally {
      gw.kill('SIGTERM');
    }
  });

  it('answers 503 naming a tenant whose control plane is down, and recovers by itself', async () => {
    const tenantDir = path.join(dataDir, 'tenants', 'team-b');
    await run('pkill', ['-KILL', '-f', `${tenantDir}/pki/apiserver.crt`], {}, 10_000);
    const down = await eventually(async () => {
      const r = await k('b', ['get', 'ns']);
      return r.code !== 0 ? r.stderr : undefined;
    }, 10_000, 'a failing request');
    expect(down).toMatch(/team-b/);
    await eventually(async () => ((await k('b', ['get', 'ns'])).code === 0 ? true : undefined), 90_000, 'recovery');
    expect(processesMentioning(`${tenantDir}/pki/apiserver.crt`).length).toBe(1);
  });

  it('serves /healthz, and Prometheus /metrics by tenant, verb and code on its own listener', async () => {
    const state = readState(dataDir)!.gateway!;
    const r = await run('curl', ['-s', state.metricsUrl!], {}, 10_000);
    expect(r.stdout).toMatch(/kplex_gateway_requests_total\{tenant="team-a",verb="list",code="200"\} \d+/);
    expect(r.stdout).toContain('kplex_gateway_request_duration_seconds_bucket');
    expect((await run('curl', ['-sk', `${state.url}/healthz`], {}, 10_000)).stdout).toBe('ok');
  });

  it('kubectl get --raw reaches the token\'s tenant from the server root', async () => {
    const api = await k('a', ['get', '--raw', '/api']);
    expect(api.code, api.stderr).toBe(0);
    expect(JSON.parse(api.stdout)).toMatchObject({ kind: 'APIVersions' });
    const openapi = await k('a', ['get', '--raw', '/openapi/v3']);
    expect(openapi.code, openapi.stderr).toBe(0);
    expect(openapi.stdout).toContain('apis/apps/v1');
    const livez = await k('a', ['get', '--raw', '/livez?verbose']);
    expect(livez.code, livez.stderr).toBe(0);
    expect(livez.stdout).toContain('livez check passed');
    // The same through the prefix form, and a CRD only team-a has is not seen by team-b's token.
    expect((await k('a', ['get', '--raw', '/tenants/team-a/apis/example.com/v1'])).code).toBe(0);
    expect((await k('b', ['get', '--raw', '/apis/example.com/v1'])).code).not.toBe(0);
  });

  it('delete removes the tenant, its host namespace and its context', async () => {
    const del = await kplex(['delete', 'team-b', '--context', 'kplex-host'], env);
    expect(del.code, del.stderr).toBe(0);
    const again = await kplex(['delete', 'team-b', '--context', 'kplex-host'], env);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('kplex: tenant "team-b" not found');
    // A context left behind (the tenant was deleted from elsewhere): delete finishes the job.
    expect((await kubectl(env.KUBECONFIG!, ['config', 'set-context', 'kplex_team-b', '--cluster', 'gone'])).code).toBe(0);
    const leftover = await kplex(['delete', 'team-b', '--context', 'kplex-host'], env);
    expect(leftover.code, leftover.stderr).toBe(0);
    expect(leftover.stdout).toContain('tenant team-b was already deleted; removed its context kplex_team-b');
    expect(readFileSync(env.KUBECONFIG!, 'utf8')).not.toContain('kplex_team-b');
    const hostKc = path.join(dataDir, 'admin.kubeconfig');
    const ns = await eventually(async () => {
      const r = await kubectl(hostKc, ['get', 'ns', 'kplex-team-b']);
      return r.code !== 0 ? r.stderr : undefined;
    }, 60_000, 'the host namespace to go');
    expect(ns).toContain('NotFound');
    expect(processesMentioning(path.join(dataDir, 'tenants', 'team-b'))).toEqual([]);
  });

  function hostCredentials() {
    const f = YAML.parse(readFileSync(path.join(dataDir, 'admin.kubeconfig'), 'utf8')) as { clusters: { cluster: Record<string, string> }[]; users: { user: Record<string, string> }[] };
    const d = (s?: string) => Buffer.from(s ?? '', 'base64').toString();
    return { ca: d(f.clusters[0]!.cluster['certificate-authority-data']), cert: d(f.users[0]!.user['client-certificate-data']), key: d(f.users[0]!.user['client-key-data']) };
  }
});
