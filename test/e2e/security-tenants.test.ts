import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { SignJWT, importJWK } from 'jose';
import YAML from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { readState } from '../../src/dev/state.js';
import { KubeClient } from '../../src/k8s/client.js';
import { loadSigningKeys } from '../../src/tenants/system.js';
import { eventually, kplex, kubectl, run, useSharedHost } from './helpers.js';

/** What a tenant user could try: an old token, a user name that reads like a role, a pod the tenant's standard refuses. */
describe('tenant security: tokens, subjects and pod security levels', () => {
  const shared = useSharedHost('security', ['t1', 'strict']);
  const { dir, dataDir, env } = shared;
  const hostKc = shared.hostKubeconfig;
  const kc = (name: string) => path.join(dir, `${name}.kubeconfig`);
  const k = (who: string, args: string[], input?: string) => kubectl(kc(who), args, { input });
  const host = (args: string[]) => kubectl(hostKc, args);

  async function connectPrint(file: string, tenant: string, flags: string[] = []): Promise<void> {
    const r = await kplex(['connect', tenant, '--print', '--context', 'kplex-host', ...flags], env);
    expect(r.code, r.stderr).toBe(0);
    writeFileSync(kc(file), r.stdout);
  }

  const tokenOf = (file: string): string => (YAML.parse(readFileSync(kc(file), 'utf8')) as { users: { user: { token: string } }[] }).users[0]!.user.token;

  /** The gateway's answer to a GET with `token`, as the Status (or object) it sends. */
  async function gatewayGet(tenant: string, token: string, path: string): Promise<{ kind?: string; code?: number; message?: string }> {
    const url = readState(dataDir)!.gateway!.url;
    const r = await run('curl', ['-sk', '-H', `Authorization: Bearer ${token}`, `${url}/tenants/${tenant}${path}`], {}, 10_000);
    return JSON.parse(r.stdout) as { kind?: string; code?: number; message?: string };
  }

  /** A token signed with the gateway's keys for any user and groups, as a leaked key or a careless issuer would make it. */
  async function mint(tenant: string, user: string, role: string, groups: string[] = []): Promise<string> {
    const f = YAML.parse(readFileSync(hostKc, 'utf8')) as { clusters: { cluster: Record<string, string> }[]; users: { user: Record<string, string> }[] };
    const d = (s?: string) => Buffer.from(s ?? '', 'base64').toString();
    const client = new KubeClient({ server: readState(dataDir)!.server!, ca: d(f.clusters[0]!.cluster['certificate-authority-data']), cert: d(f.users[0]!.user['client-certificate-data']), key: d(f.users[0]!.user['client-key-data']) });
    try {
      const [key] = await loadSigningKeys(client);
      const uid = (await host(['get', 'tenants.kplex.dev', tenant, '-o', 'jsonpath={.metadata.uid}'])).stdout.trim();
      expect(uid).not.toBe('');
      const { createdAt: _c, ...jwk } = key!;
      return await new SignJWT({ tenant, tenant_uid: uid, role, groups })
        .setProtectedHeader({ alg: 'ES256', kid: key!.kid })
        .setIssuer('kplex').setAudience('kplex-gateway').setSubject(user)
        .setIssuedAt().setExpirationTime('1h')
        .sign(await importJWK(jwk, 'ES256'));
    } finally {
      await client.close();
    }
  }

  beforeAll(async () => {
    // strict: pod security "restricted", for the last test; both start together.
    await Promise.all([shared.createTenant('t1'), shared.createTenant('strict', { podSecurityStandard: 'restricted' })]);
  });

  it('a token dies with its tenant: after delete and create under the same name it gets 401, a new one works', async () => {
    await connectPrint('t1-old', 't1');
    // Used once, so the gateway has it in its cache of verified tokens when the tenant goes.
    expect((await k('t1-old', ['get', 'ns', 'default'])).code).toBe(0);

    const del = await kplex(['delete', 't1', '--context', 'kplex-host'], env);
    expect(del.code, del.stderr).toBe(0);
    const again = await kplex(['create', 't1', '--connect=false', '--context', 'kplex-host'], env);
    expect(again.code, again.stderr).toBe(0);

    const old = await k('t1-old', ['get', 'ns', 'default']);
    expect(old.code).not.toBe(0);
    expect(old.stderr).toMatch(/Unauthorized|must be logged in/);
    expect(await gatewayGet('t1', tokenOf('t1-old'), '/api')).toMatchObject({
      kind: 'Status',
      code: 401,
      message: 'Unauthorized: the token was issued for an earlier tenant named "t1"; get a new one with: kplex connect t1',
    });

    await connectPrint('t1', 't1');
    const fresh = await k('t1', ['get', 'ns', 'default', '-o', 'name']);
    expect(fresh.code, fresh.stderr).toBe(0);
    expect(fresh.stdout.trim()).toBe('namespace/default');
  });

  it('no token names a system: user or a system:/kplex: group: the CLI does not mint one, the gateway refuses one', async () => {
    const cases: [string[], RegExp][] = [
      [['--user', 'system:admin'], /^kplex: --user\/--group: the user name "system:admin" is reserved/],
      [['--group', 'system:masters'], /^kplex: --user\/--group: the group "system:masters" is reserved/],
      [['--group', 'kplex:admin'], /^kplex: --user\/--group: the group "kplex:admin" is reserved/],
    ];
    for (const [flags, message] of cases) {
      const r = await kplex(['token', 't1', ...flags, '--context', 'kplex-host'], env);
      expect(r.code, flags.join(' ')).not.toBe(0);
      expect(r.stderr.trim().split('\n'), flags.join(' ')).toHaveLength(1);
      expect(r.stderr.trim(), flags.join(' ')).toMatch(message);
    }
    const masters = await mint('t1', 'mallory', 'view', ['system:masters']);
    expect(await gatewayGet('t1', masters, '/api/v1/namespaces/kube-system/secrets')).toMatchObject({ kind: 'Status', code: 401, message: expect.stringMatching(/group "system:masters" is reserved/) });
    expect((await k('t1', ['--token', masters, 'get', 'secrets', '-n', 'kube-system'])).code).not.toBe(0);
  });

  it('a user named "role:admin" with role view is not the admin role: it cannot delete a pod', async () => {
    expect((await k('t1', ['run', 'p', '--image=nginx'])).code).toBe(0);
    // The tenant's own RBAC lets that user edit, so only the gateway's policy stands in its way.
    const bind = await k('t1', ['create', 'clusterrolebinding', 'role-admin-edit', '--clusterrole=edit', '--user=role:admin']);
    expect(bind.code, bind.stderr).toBe(0);
    const token = await mint('t1', 'role:admin', 'view');

    expect((await k('t1', ['--token', token, 'get', 'pod', 'p', '-o', 'name'])).stdout.trim()).toBe('pod/p');
    const del = await k('t1', ['--token', token, 'delete', 'pod', 'p', '--wait=false']);
    expect(del.code).not.toBe(0);
    expect(del.stderr).toMatch(/pods( "p")? is forbidden: User "role:admin" cannot delete resource "pods" in API group "" in the namespace "default"/);
    expect((await k('t1', ['--token', token, 'auth', 'can-i', 'delete', 'pods'])).stdout.trim()).toBe('no - denied by the kplex gateway policy for role "view"');
    expect((await k('t1', ['get', 'pod', 'p', '-o', 'name'])).stdout.trim()).toBe('pod/p');
  });

  it('podSecurityStandard restricted is enforced in the tenant and on the host namespace; privileged lifts it on both', async () => {
    const labels = async () => JSON.parse((await host(['get', 'ns', 'kplex-strict', '-o', 'jsonpath={.metadata.labels}'])).stdout) as Record<string, string>;
    expect(await labels()).toMatchObject({ 'pod-security.kubernetes.io/enforce': 'restricted', 'pod-security.kubernetes.io/warn': 'restricted' });

    const plain = await k('strict', ['run', 'plain', '--image=nginx']);
    expect(plain.code).not.toBe(0);
    expect(plain.stderr).toContain('pods "plain" is forbidden: violates PodSecurity "restricted:latest"');
    expect((await k('strict', ['get', 'pod', 'plain'])).stderr).toContain('NotFound');

    const compliant = `apiVersion: v1
kind: Pod
metadata: {name: compliant}
spec:
  securityContext: {runAsNonRoot: true, runAsUser: 101, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: c
    image: nginx
    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
`;
    const ok = await k('strict', ['apply', '-f', '-'], compliant);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stderr).not.toContain('PodSecurity');
    expect((await host(['-n', 'kplex-strict', 'get', 'pods', '-l', 'kplex.dev/tenant=strict', '-o', 'name'])).stdout.trim()).not.toBe('');

    // Changed with --upgrade: the tenant API server restarts with the new level, and the labels go.
    const values = path.join(dir, 'privileged.yaml');
    writeFileSync(values, 'podSecurityStandard: privileged\n');
    const up = await kplex(['create', 'strict', '--upgrade', '-f', values, '--context', 'kplex-host'], env);
    expect(up.code, up.stderr).toBe(0);
    expect(Object.keys(await labels()).filter((l) => l.startsWith('pod-security.kubernetes.io/'))).toEqual([]);
    const privileged = 'apiVersion: v1\nkind: Pod\nmetadata: {name: priv}\nspec: {containers: [{name: c, image: busybox, securityContext: {privileged: true}}]}\n';
    await eventually(async () => ((await k('strict', ['apply', '-f', '-'], privileged)).code === 0 ? true : undefined), 30_000, 'the privileged pod accepted');
    expect((await k('strict', ['get', 'pod', 'compliant', '-o', 'name'])).stdout.trim()).toBe('pod/compliant');
  });
});
