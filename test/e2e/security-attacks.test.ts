import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { SignJWT, generateKeyPair, importJWK, type JWK } from 'jose';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readState } from '../../src/dev/state.js';
import { KubeClient, type KubeObject } from '../../src/k8s/client.js';
import { tokenSecretName } from '../../src/sync/pod-access.js';
import { loadSigningKeys } from '../../src/tenants/system.js';
import { bounded, GatewayClient, type RawAnswer } from './attack/client.js';
import { expectation, forwarded, isTranslatedRef, judge, leaksIn, roleAllows, RBAC, WRITES, type LeakMarkers, type Role } from './attack/oracle.js';
import { attemptArb, build, GROUP_SETS, HOST_ROUTED, USERS, TAMPERED, type Attempt, type Built, type TokenKind, type World } from './attack/requests.js';
import { eventually, kplex, onSimulatedNodes, useSharedHost } from './helpers.js';

/**
 * The security suite of "Close the isolation holes": attacks generated with fast-check against the real
 * gateway in front of real kube-apiservers (two tenants: A attacks, B is the victim), judged by an
 * oracle written from the rules (./attack/oracle.ts), never from the gateway's code.
 *
 *   KPLEX_SECURITY_RUNS  generated requests (default 6000)      KPLEX_SECURITY_SEED  to replay a run
 */
const RUNS = Number(process.env.KPLEX_SECURITY_RUNS ?? 6000);
const SEED = Number(process.env.KPLEX_SECURITY_SEED ?? Math.floor(Math.random() * 2 ** 31));
const POD_RUNS = Number(process.env.KPLEX_SECURITY_POD_RUNS ?? 60);
const CONCURRENCY = 8;
const ROLES: Role[] = ['admin', 'edit', 'view'];

const A = 'attacker';
const B = 'victim';

interface Violation {
  kind: string;
  why: string;
  method: string;
  path: string;
  headers: string;
  status: number | string;
}

type Json = Record<string, unknown>;

describe('security: generated attacks on the gateway', () => {
  const shared = useSharedHost('attacks', [A, B]);
  const { dataDir, env } = shared;

  let gw: GatewayClient;
  let host: KubeClient;
  let world: World;
  const uid: Record<string, string> = {};
  /** valid[role][user][groups]: tokens of tenant A; tampered[kind][role]; admin tokens of A and B for setup and checks. */
  const valid: Record<string, string[][]> = {};
  const tampered: Partial<Record<TokenKind, Record<string, string>>> = {};
  const admin: Record<string, string> = {};
  const canaryCm = `canary-cm-${randomBytes(8).toString('hex')}`;
  const canarySecret = `canary-secret-${randomBytes(8).toString('hex')}`;
  const markers: LeakMarkers = { secrets: [], tenants: [A, B] };

  /** What B looked like before the attacks, and the host namespaces. */
  const baseline: { bObjects: Map<string, KubeObject>; bNames: Map<string, string[]>; hostNames: Map<string, string[]>; signingKeysRv: string; hostSecretsRv: Map<string, string> } = {
    bObjects: new Map(),
    bNames: new Map(),
    hostNames: new Map(),
    signingKeysRv: '',
    hostSecretsRv: new Map(),
  };

  const t = (tenant: string, p: string) => `/tenants/${tenant}${p}`;

  async function setupObject(tenant: string, p: string, obj: Json): Promise<void> {
    const r = await gw.json(admin[tenant]!, 'POST', t(tenant, p), obj);
    expect([201, 409], `${tenant} ${p}: ${r.text}`).toContain(r.status);
  }

  async function hostList(resource: string, namespace: string): Promise<KubeObject[]> {
    return (await host.list({ group: '', version: 'v1', resource, namespace })).items;
  }

  beforeAll(async () => {
    // The gateway's URL and CA, as a user gets them.
    const [kubeconfigOfA] = await Promise.all([shared.createTenant(A), shared.createTenant(B)]);
    const kubeconfig = YAML.parse(readFileSync(kubeconfigOfA, 'utf8')) as { clusters: { cluster: { server: string; 'certificate-authority-data': string } }[] };
    const cluster = kubeconfig.clusters[0]!.cluster;
    const ca = Buffer.from(cluster['certificate-authority-data'], 'base64').toString();
    gw = new GatewayClient(new URL(cluster.server).origin, ca);

    const hostKc = YAML.parse(readFileSync(path.join(dataDir, 'admin.kubeconfig'), 'utf8')) as { clusters: { cluster: Record<string, string> }[]; users: { user: Record<string, string> }[] };
    const d = (s?: string) => Buffer.from(s ?? '', 'base64').toString();
    host = new KubeClient({ server: readState(dataDir)!.server!, ca: d(hostKc.clusters[0]!.cluster['certificate-authority-data']), cert: d(hostKc.users[0]!.user['client-certificate-data']), key: d(hostKc.users[0]!.user['client-key-data']) });
    for (const name of [A, B]) uid[name] = (await host.get({ group: 'kplex.dev', version: 'v1alpha1', resource: 'tenants', name })).metadata.uid!;
    const node = (await host.list({ group: '', version: 'v1', resource: 'nodes' })).items[0]?.metadata.name ?? 'kplex-node-0';
    world = { a: A, b: B, node };

    await mintTokens();

    // Canaries: in B what A must never read, change or reach; in A its own objects, so allowed requests find something.
    await setupObject(B, '/api/v1/namespaces', { metadata: { name: 'vault' } });
    for (const ns of ['default', 'vault']) {
      await setupObject(B, `/api/v1/namespaces/${ns}/configmaps`, { metadata: { name: 'victim-cm' }, data: { canary: canaryCm } });
      await setupObject(B, `/api/v1/namespaces/${ns}/secrets`, { metadata: { name: 'victim-secret' }, data: { canary: Buffer.from(canarySecret).toString('base64') } });
    }
    await setupObject(B, '/api/v1/namespaces/default/pods', pod('victim-pod', 'victim-secret', 'victim-cm', 'victim'));
    await setupObject(B, '/api/v1/namespaces/default/services', { metadata: { name: 'victim-svc' }, spec: { selector: { app: 'victim' }, ports: [{ port: 80 }] } });
    await setupObject(B, `/apis/${RBAC}/v1/namespaces/default/roles`, { metadata: { name: 'victim-role' }, rules: [{ apiGroups: [''], resources: ['secrets'], verbs: ['get'] }] });
    await setupObject(A, '/api/v1/namespaces/default/configmaps', { metadata: { name: 'atk-cm' }, data: { mine: 'attacker data' } });
    await setupObject(A, '/api/v1/namespaces/default/secrets', { metadata: { name: 'atk-secret' }, data: { mine: Buffer.from('attacker secret').toString('base64') } });
    await setupObject(A, '/api/v1/namespaces/default/pods', pod('atk-pod', 'atk-secret', 'atk-cm', 'atk'));
    await setupObject(A, '/api/v1/namespaces/default/services', { metadata: { name: 'atk-svc' }, spec: { selector: { app: 'atk' }, ports: [{ port: 80 }] } });
    await setupObject(A, `/apis/${RBAC}/v1/namespaces/default/roles`, { metadata: { name: 'atk-role' }, rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get'] }] });

    // Both pods run on the host (their twins exist, so exec, logs and port-forward reach something).
    for (const [tenant, name] of [[A, 'atk-pod'], [B, 'victim-pod']] as const) {
      await eventually(async () => {
        const r = await gw.json<KubeObject & { status?: { phase?: string } }>(admin[tenant]!, 'GET', t(tenant, `/api/v1/namespaces/default/pods/${name}`));
        return r.body?.status?.phase === 'Running' ? true : undefined;
      }, 90_000, `${tenant}/${name} Running`);
    }
    await new Promise((r) => setTimeout(r, 2000));
    await takeBaseline();
  }, 420_000);

  afterAll(async () => {
    gw?.close();
    await host?.close();
  });

  function pod(name: string, secret: string, cm: string, app: string): Json {
    return {
      metadata: { name, labels: { app } },
      spec: {
        containers: [{ name: 'c', image: 'busybox', envFrom: [{ secretRef: { name: secret } }, { configMapRef: { name: cm } }], volumeMounts: [{ name: 's', mountPath: '/s' }] }],
        volumes: [{ name: 's', secret: { secretName: secret } }],
        // kwok runs them, so exec, logs and port-forward reach a simulated container.
        ...onSimulatedNodes,
      },
    };
  }

  async function mintTokens(): Promise<void> {
    const keys = await loadSigningKeys(host);
    const newest = [...keys].sort((x, y) => y.createdAt.localeCompare(x.createdAt))[0]!;
    const { createdAt: _c, ...jwk } = newest;
    const key = await importJWK(jwk, 'ES256');
    const now = Math.floor(Date.now() / 1000);
    const foreign = (await generateKeyPair('ES256', { extractable: true })).privateKey;
    const publicJwk: JWK = { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y };
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');

    interface Spec {
      tenant: string;
      uid: string;
      role: string;
      user?: string;
      groups?: string[];
      iss?: string;
      aud?: string;
      exp?: number;
      nbf?: number;
      kid?: string;
      signWith?: 'key' | 'foreign';
    }
    const sign = async (s: Spec): Promise<string> =>
      new SignJWT({ tenant: s.tenant, tenant_uid: s.uid, role: s.role, groups: s.groups ?? [] })
        .setProtectedHeader({ alg: 'ES256', kid: s.kid ?? newest.kid, typ: 'JWT' })
        .setIssuer(s.iss ?? 'kplex')
        .setAudience(s.aud ?? 'kplex-gateway')
        .setSubject(s.user ?? 'mallory')
        .setIssuedAt(now - 10)
        .setNotBefore(s.nbf ?? now - 10)
        .setExpirationTime(s.exp ?? now + 7200)
        .setJti(randomUUID())
        .sign(s.signWith === 'foreign' ? foreign : key);
    const claims = (role: string) => ({ tenant: A, tenant_uid: uid[A], role, groups: [], sub: 'mallory', iss: 'kplex', aud: 'kplex-gateway', iat: now, exp: now + 7200 });

    admin[A] = await sign({ tenant: A, uid: uid[A]!, role: 'admin', user: 'setup' });
    admin[B] = await sign({ tenant: B, uid: uid[B]!, role: 'admin', user: 'setup' });
    // The minted tokens must be what the gateway accepts, or every verdict below would be about the wrong thing.
    const probe = await gw.json(admin[A]!, 'GET', t(A, '/api/v1/namespaces/default'));
    if (probe.status !== 200) {
      const cli = await kplex(['token', A, '--role', 'admin', '--context', 'kplex-host'], env);
      const viaCli = cli.code === 0 ? await gw.json(cli.stdout.trim(), 'GET', t(A, '/api/v1/namespaces/default')) : undefined;
      throw new Error(`the gateway refuses a token minted like the CLI's (${probe.status} ${probe.text}); a CLI token gets ${viaCli?.status ?? cli.stderr}: update mintTokens to the token format`);
    }
    expect((await gw.json(admin[B]!, 'GET', t(B, '/api/v1/namespaces/default'))).status).toBe(200);

    for (const role of ROLES) {
      valid[role] = [];
      for (let u = 0; u < USERS.length; u++) {
        valid[role]![u] = [];
        for (let g = 0; g < GROUP_SETS.length; g++) valid[role]![u]![g] = await sign({ tenant: A, uid: uid[A]!, role, user: USERS[u], groups: GROUP_SETS[g] });
      }
    }
    for (const kind of TAMPERED) tampered[kind] = {};
    for (const role of ROLES) {
      const good = valid[role]![0]![0]!;
      const [h, p, sig] = good.split('.') as [string, string, string];
      const i = Math.floor(sig.length / 2);
      tampered['bad-signature']![role] = `${h}.${p}.${sig.slice(0, i)}${sig[i] === 'A' ? 'B' : 'A'}${sig.slice(i + 1)}`;
      tampered['alg-none']![role] = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims(role))}.`;
      tampered['alg-none-upper']![role] = `${b64({ alg: 'NONE', typ: 'JWT', kid: newest.kid })}.${b64(claims(role))}.`;
      tampered.expired![role] = await sign({ tenant: A, uid: uid[A]!, role, exp: now - 600, nbf: now - 3600 });
      tampered['not-yet-valid']![role] = await sign({ tenant: A, uid: uid[A]!, role, nbf: now + 3600 });
      tampered['unknown-kid']![role] = await sign({ tenant: A, uid: uid[A]!, role, kid: randomUUID(), signWith: 'foreign' });
      tampered['foreign-key-real-kid']![role] = await sign({ tenant: A, uid: uid[A]!, role, signWith: 'foreign' });
      tampered['wrong-audience']![role] = await sign({ tenant: A, uid: uid[A]!, role, aud: 'kubernetes' });
      tampered['wrong-issuer']![role] = await sign({ tenant: A, uid: uid[A]!, role, iss: 'https://kubernetes.default.svc' });
      tampered['hs256-confusion']![role] = await new SignJWT({ ...claims(role) })
        .setProtectedHeader({ alg: 'HS256', kid: newest.kid, typ: 'JWT' })
        .sign(new TextEncoder().encode(JSON.stringify(publicJwk)));
      tampered['bad-role']![role] = await sign({ tenant: A, uid: uid[A]!, role: role === 'admin' ? 'cluster-admin' : `${role}er` });
      // Signed with the real key, for tenant A by name but for another tenant object (a deleted and re-created A, or B).
      tampered['wrong-tenant-uid']![role] = await sign({ tenant: A, uid: role === 'view' ? randomUUID() : uid[B]!, role });
      tampered['other-tenant']![role] = await sign({ tenant: B, uid: uid[B]!, role });
    }
  }

  function authorizationOf(a: Attempt): string | undefined {
    const tk = a.token;
    if (tk.kind === 'valid') return `Bearer ${valid[tk.role]![tk.user]![tk.groups]!}`;
    if (tk.kind === 'no-token') return undefined;
    if (tk.kind === 'garbage') return tk.garbage.startsWith('Basic ') ? tk.garbage : `Bearer ${tk.garbage}`;
    return `Bearer ${tampered[tk.kind]![tk.role]!}`;
  }

  const describeToken = (a: Attempt): string => {
    const tk = a.token;
    if (tk.kind !== 'valid') return `token=${tk.kind}(role ${tk.role})`;
    const groups = GROUP_SETS[tk.groups]!;
    return `token=valid role=${tk.role} user=${USERS[tk.user]}${groups.length ? ` groups=${groups.join(',')}` : ''}`;
  };

  const describeHeaders = (a: Attempt, b: Built): string => {
    const imp = Object.entries(b.headers)
      .filter(([k]) => /^(impersonate-|x-remote-)/.test(k))
      .map(([k, v]) => `${k}: ${[v].flat().join(',')}`);
    return [describeToken(a), ...(b.upgrade ? [`upgrade=${b.upgrade}`] : []), ...imp].join('; ');
  };

  async function takeBaseline(): Promise<void> {
    for (const [ns, kinds] of [['default', ['configmaps', 'secrets', 'pods', 'services']], ['vault', ['configmaps', 'secrets']]] as const) {
      for (const kind of kinds) {
        const list = await gw.json<{ items: KubeObject[] }>(admin[B]!, 'GET', t(B, `/api/v1/namespaces/${ns}/${kind}`));
        for (const o of list.body.items) if (o.metadata.name!.startsWith('victim-')) baseline.bObjects.set(`${kind}/${ns}/${o.metadata.name}`, o);
      }
    }
    const role = await gw.json<KubeObject>(admin[B]!, 'GET', t(B, `/apis/${RBAC}/v1/namespaces/default/roles/victim-role`));
    baseline.bObjects.set('roles/default/victim-role', role.body);
    const vault = await gw.json<KubeObject>(admin[B]!, 'GET', t(B, '/api/v1/namespaces/vault'));
    baseline.bObjects.set('namespaces//vault', vault.body);
    expect(baseline.bObjects.size).toBe(8);
    for (const o of baseline.bObjects.values()) markers.secrets.push({ what: `uid of B's ${o.kind} ${o.metadata.name}`, value: o.metadata.uid! });
    markers.secrets.push(
      { what: "B's ConfigMap data", value: canaryCm },
      { what: "B's Secret data", value: canarySecret },
      { what: "B's Secret data (base64)", value: Buffer.from(canarySecret).toString('base64') },
    );
    baseline.bNames = await bNames();
    baseline.hostNames = await hostNames();
    baseline.signingKeysRv = (await host.get({ group: '', version: 'v1', resource: 'secrets', namespace: 'kplex-system', name: 'kplex-signing-keys' })).metadata.resourceVersion!;
    for (const s of await hostList('secrets', `kplex-${B}`)) baseline.hostSecretsRv.set(s.metadata.name!, s.metadata.resourceVersion!);
  }

  /** The names of B's objects, by kind and namespace, as B's admin sees them. */
  async function bNames(): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    const paths = ['/api/v1/namespaces', `/apis/${RBAC}/v1/clusterrolebindings`, `/apis/${RBAC}/v1/clusterroles`];
    for (const ns of ['default', 'vault']) {
      for (const kind of ['configmaps', 'secrets', 'pods', 'services', 'serviceaccounts']) paths.push(`/api/v1/namespaces/${ns}/${kind}`);
      for (const kind of ['roles', 'rolebindings']) paths.push(`/apis/${RBAC}/v1/namespaces/${ns}/${kind}`);
    }
    for (const p of paths) {
      const r = await gw.json<{ items: KubeObject[] }>(admin[B]!, 'GET', t(B, p));
      expect(r.status, `${p}: ${r.text}`).toBe(200);
      out.set(p, r.body.items.map((o) => o.metadata.name!).sort());
    }
    return out;
  }

  /** The names of the host's namespaces, and of the objects in the tenants' host namespaces and kplex-system. */
  async function hostNames(): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    out.set('namespaces', (await host.list({ group: '', version: 'v1', resource: 'namespaces' })).items.map((n) => n.metadata.name!).sort());
    for (const ns of [`kplex-${A}`, `kplex-${B}`, 'kplex-system']) {
      for (const kind of ['pods', 'configmaps', 'secrets', 'services', 'serviceaccounts', 'persistentvolumeclaims']) {
        out.set(`${ns}/${kind}`, (await hostList(kind, ns)).map((o) => o.metadata.name!).sort());
      }
    }
    return out;
  }

  it(`answers ${RUNS} generated attacks only as the token's tenant and role allow, and leaks nothing of B or the host`, async () => {
    const started = Date.now();
    const violations: Violation[] = [];
    let attempts = 0;
    let errors = 0;
    const statuses = new Map<string, number>();
    const expectations = new Map<string, number>();
    const count = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
    const errorSamples: string[] = [];

    // 1. Generated requests.
    const generated = fc.sample(attemptArb(world), { numRuns: RUNS, seed: SEED });
    const results = await bounded(generated, CONCURRENCY, async (raw) => {
      let attempt = raw;
      // B's token is the attacker's only on A's path (on B's own path, or the root, which is its own tenant, it is just B).
      if (attempt.token.kind === 'other-tenant') attempt = { ...attempt, pathTenant: 'A' };
      // A tenant prefix trick names A (or B before A): it only means something with a token of A on A's path.
      if (attempt.trick?.kind === 'tenant-path' && (attempt.pathTenant !== 'A' || attempt.token.kind === 'other-tenant')) attempt = { ...attempt, trick: undefined };
      const tokenValidForPath = attempt.token.kind === 'valid' && attempt.pathTenant !== 'B';
      const role = attempt.token.role;
      const canaryName = /^atk-(pod|cm|secret|svc|role)$/.test(attempt.op.name) || ['namespaces', 'nodes', 'clusterrolebindings'].includes(attempt.op.resource) || attempt.op.verb === 'deletecollection';
      const built = build(attempt, world, {
        tenantPrefix: attempt.pathTenant === 'root' ? '' : t(attempt.pathTenant === 'A' ? A : B, ''),
        authorization: authorizationOf(attempt),
        // Writes on A's path the role may make, or that would break A's own canaries, are dry runs: the
        // next attempts find A as it was. Writes on B's path, and forbidden ones, are real.
        dryRun: (s) => attempt.pathTenant !== 'B' && (roleAllows(role, s) || canaryName),
      });
      const expect_ = expectation({ tokenValidForPath, refusedPath: built.refusedPath, role, semantic: built.semantic });
      const answer = await gw.send({ method: built.method, path: built.path, headers: built.headers, body: built.body, upgrade: built.upgrade, subresource: built.verb, streaming: built.streaming });
      return { attempt, built, expect_, answer };
    });
    for (const { attempt, built, expect_, answer } of results) {
      attempts++;
      count(expectations, expect_);
      count(statuses, answer.status === 0 ? `error` : `${answer.status}${answer.upgraded ? ' upgraded' : ''}`);
      if (answer.status === 0) {
        errors++;
        if (errorSamples.length < 5) errorSamples.push(`${built.method} ${built.path}: ${answer.error}`);
      }
      // A malformed path or bad impersonation headers may be refused (400/404) before the token is read;
      // a path from the root without a token names no tenant at all (404).
      const lenient = built.trick !== undefined || attempt.impersonation !== undefined || attempt.pathTenant === 'root';
      const why = judge(expect_, answer, lenient);
      const record = (kind: string, reason: string) =>
        violations.push({ kind, why: reason, method: built.method, path: built.path, headers: describeHeaders(attempt, built), status: answer.upgraded ? `${answer.status} (upgraded)` : answer.status });
      if (why) record(classify(attempt, built, expect_, answer), why);
      for (const leak of leaksIn(answer.body, built.echoes, markers)) {
        const what = leak.replace(/ ".*"$/, '');
        record(`leak of ${what} via ${built.semantic.nonResource ? 'a non-resource path' : `${built.verb} ${built.semantic.resource}`}${built.trick ? ` (${built.trick.kind})` : ''}`, `${leak} in a ${answer.status} answer: ${excerpt(answer.body, leak)}`);
      }
    }
    const fuzzSeconds = (Date.now() - started) / 1000;

    // 2. Generated pods whose references point at the host's and B's objects: their host twins may name
    // only A's translated objects.
    const podPhase = await generatedPods();
    attempts += podPhase.attempts;
    violations.push(...podPhase.violations);

    // 3. B and the host afterwards.
    const after = await checkUnchanged();
    attempts += after.attempts;
    violations.push(...after.violations);

    const seconds = (Date.now() - started) / 1000;
    const byKind = new Map<string, Violation[]>();
    for (const v of violations) byKind.set(v.kind, [...(byKind.get(v.kind) ?? []), v]);
    const lines = [
      `security: ${attempts} attempts, ${violations.length} violations (seed ${SEED}; ${RUNS} generated requests in ${fuzzSeconds.toFixed(1)} s, ${CONCURRENCY} at a time; ${podPhase.attempts} generated pods; ${seconds.toFixed(1)} s in all)`,
      `  expectations: ${[...expectations].map(([k, v]) => `${k} ${v}`).join(', ')}`,
      `  answers: ${[...statuses].sort((x, y) => y[1] - x[1]).map(([k, v]) => `${k} ×${v}`).join(', ')}`,
      ...(errors ? [`  no answer for ${errors} (${errorSamples.join(' | ')})`] : []),
      `  ${podPhase.summary}`,
      ...[...byKind].sort((x, y) => y[1].length - x[1].length).map(([k, vs]) => `  [${vs.length}] ${k}\n      e.g. ${fmt(vs[0]!)}`),
    ];
    console.log(lines.join('\n'));
    expect(attempts).toBeGreaterThanOrEqual(2000);
    if (violations.length) {
      // Up to 20: one of each kind first, then more.
      const shown: Violation[] = [...byKind.values()].map((vs) => vs[0]!).slice(0, 20);
      for (const v of violations) if (shown.length < 20 && !shown.includes(v)) shown.push(v);
      throw new Error(`security: ${attempts} attempts, ${violations.length} violations of ${byKind.size} kinds (seed ${SEED}):\n${shown.map((v) => `  - ${v.kind}: ${fmt(v)}`).join('\n')}`);
    }
  }, 900_000);

  const fmt = (v: Violation) => `${v.method} ${v.path.length > 260 ? `${v.path.slice(0, 260)}…` : v.path} [${v.headers}] → ${v.status}: ${v.why}`;

  function excerpt(body: string, leak: string): string {
    const needle = leak.match(/"(.*)"$/)?.[1] ?? markers.secrets.find((s) => leak.startsWith(s.what))?.value ?? '';
    const i = needle ? body.indexOf(needle) : -1;
    return JSON.stringify(i < 0 ? body.slice(0, 160) : body.slice(Math.max(0, i - 80), i + needle.length + 80));
  }

  /** A violation's kind: what broke, and the dimensions that made it. */
  function classify(a: Attempt, b: Built, e: string, answer: RawAnswer): string {
    const granted = answer.upgraded || (answer.status >= 200 && answer.status < 300);
    const how = granted ? 'answered 2xx' : forwarded(answer) ? 'forwarded to an API server' : `answered ${answer.status}`;
    const where = b.semantic.nonResource ? 'a non-resource path' : `${b.verb}${HOST_ROUTED.has(b.verb) ? ' (host-routed)' : ''} ${b.semantic.group ? `${b.semantic.group}/` : ''}${b.semantic.resource}`;
    if (e === 'unauthorized') return `token ${a.token.kind === 'valid' ? 'of A on B\'s path' : a.token.kind} not refused: ${how}`;
    if (e === 'refused') return `malformed path (${b.trick?.kind}) ${how}: ${b.semantic.nonResource ? 'a non-resource path' : `${HOST_ROUTED.has(b.verb) ? `pods/${b.verb} (host-routed)` : b.semantic.subresource ? `${b.semantic.resource}/${b.semantic.subresource}` : b.semantic.resource}`}`;
    const tk = a.token;
    const who = [
      `role ${tk.role}`,
      ...(tk.user ? [`user named ${USERS[tk.user]}`] : []),
      ...(tk.groups ? [`groups ${GROUP_SETS[tk.groups]!.join(',')}`] : []),
      ...(a.impersonation ? ['impersonation headers'] : []),
      ...(b.trick ? [`${b.trick.kind}`] : []),
    ].join(', ');
    const s = b.semantic;
    const what = s.nonResource
      ? 'non-resource'
      : `${s.subresource ? `pods/${s.subresource}` : WRITES.has(s.verb) ? 'write' : 'read'} of ${s.resource}${s.namespace ? '' : ' at cluster scope'}`;
    return `forbidden ${what} ${how} (${who})`;
  }

  async function generatedPods(): Promise<{ attempts: number; violations: Violation[]; summary: string }> {
    const violations: Violation[] = [];
    // A's own objects under the names of host and B objects, so the tenant takes pods that use them.
    const own: [string, Json][] = [];
    for (const name of [`vc-${A}`, `vc-${B}`, 'kplex-signing-keys', 'victim-secret']) own.push(['secrets', { metadata: { name }, data: { k: Buffer.from('attacker').toString('base64') } }]);
    for (const name of [`vc-${A}`, 'kplex-gateway', 'victim-cm']) own.push(['configmaps', { metadata: { name }, data: { k: 'attacker' } }]);
    for (const name of [`vc-${A}`, `vc-${B}`, 'kplex-signing-keys']) own.push(['serviceaccounts', { metadata: { name } }]);
    for (const [kind, obj] of own) await setupObject(A, `/api/v1/namespaces/default/${kind}`, obj);

    const refNames = [`vc-${A}`, `vc-${B}`, 'kplex-signing-keys', 'kplex-gateway', 'victim-secret', 'victim-cm', `victim-secret-x-default-x-${B}`, 'atk-secret', 'atk-cm', 'default', 'kube-root-ca.crt'];
    const fields = [
      'volume.secret', 'volume.configMap', 'volume.projected.secret', 'volume.projected.configMap', 'volume.projected.serviceAccountToken',
      'volume.csi', 'volume.flexVolume', 'volume.cephfs', 'volume.iscsi', 'volume.rbd', 'volume.azureFile', 'volume.pvc',
      'env.secretKeyRef', 'env.configMapKeyRef', 'envFrom.secretRef', 'envFrom.configMapRef', 'initEnv.secretKeyRef', 'imagePullSecrets',
    ] as const;
    const podArb = fc.record({
      refs: fc.array(fc.record({ field: fc.constantFrom(...fields), name: fc.constantFrom(...refNames) }), { minLength: 1, maxLength: 4 }),
      serviceAccount: fc.option(fc.constantFrom(`vc-${A}`, `vc-${B}`, 'kplex-signing-keys', 'default'), { nil: undefined }),
      deprecatedServiceAccount: fc.boolean(),
      // Scheduling constraints aimed at B's pods: by their labels or kplex's own label keys, in every
      // namespace, in B's namespaces or host namespaces by name.
      scheduling: fc.option(fc.record({
        kind: fc.constantFrom('podAffinity', 'podAntiAffinity', 'topologySpread'),
        required: fc.boolean(),
        labels: fc.constantFrom<Record<string, string>>({ app: 'victim' }, { 'kplex.dev/tenant': B }, { 'kplex.dev/namespace': 'default' }, {}),
        namespaces: fc.constantFrom(undefined, ['default', 'vault'], [`kplex-${B}`, 'kube-system']),
        namespaceSelector: fc.constantFrom(undefined, {}, { matchLabels: { 'kubernetes.io/metadata.name': `kplex-${B}` } }, { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'Exists' }] }),
      }), { nil: undefined }),
    });
    const pods = fc.sample(podArb, { numRuns: POD_RUNS, seed: SEED + 1 });
    const stats = { created: 0, twins: 0, refs: 0, selectors: 0, refused: new Map<string, number>() };
    await bounded(pods, 4, async (p, i) => {
      const name = `refs-${i}`;
      const volumes: Json[] = [];
      const env: Json[] = [];
      const envFrom: Json[] = [];
      const initEnv: Json[] = [];
      const pull: Json[] = [];
      p.refs.forEach((r, j) => {
        const v = `v${j}`;
        const n = r.name;
        switch (r.field) {
          case 'volume.secret': volumes.push({ name: v, secret: { secretName: n, optional: true } }); break;
          case 'volume.configMap': volumes.push({ name: v, configMap: { name: n, optional: true } }); break;
          case 'volume.projected.secret': volumes.push({ name: v, projected: { sources: [{ secret: { name: n, optional: true } }] } }); break;
          case 'volume.projected.configMap': volumes.push({ name: v, projected: { sources: [{ configMap: { name: n, optional: true } }] } }); break;
          case 'volume.projected.serviceAccountToken': volumes.push({ name: v, projected: { sources: [{ serviceAccountToken: { audience: n === 'default' ? 'kplex-gateway' : 'https://kubernetes.default.svc', path: 'token', expirationSeconds: 3600 } }] } }); break;
          case 'volume.csi': volumes.push({ name: v, csi: { driver: 'secrets-store.csi.k8s.io', nodePublishSecretRef: { name: n } } }); break;
          case 'volume.flexVolume': volumes.push({ name: v, flexVolume: { driver: 'example.com/flex', secretRef: { name: n } } }); break;
          case 'volume.cephfs': volumes.push({ name: v, cephfs: { monitors: ['10.0.0.1:6789'], secretRef: { name: n } } }); break;
          case 'volume.iscsi': volumes.push({ name: v, iscsi: { targetPortal: '10.0.0.1:3260', iqn: 'iqn.2001-04.com.example:storage', lun: 0, chapAuthSession: true, secretRef: { name: n } } }); break;
          case 'volume.rbd': volumes.push({ name: v, rbd: { monitors: ['10.0.0.1:6789'], image: 'img', secretRef: { name: n } } }); break;
          case 'volume.azureFile': volumes.push({ name: v, azureFile: { secretName: n, shareName: 'share' } }); break;
          case 'volume.pvc': volumes.push({ name: v, persistentVolumeClaim: { claimName: n } }); break;
          case 'env.secretKeyRef': env.push({ name: `E${j}`, valueFrom: { secretKeyRef: { name: n, key: 'k', optional: true } } }); break;
          case 'env.configMapKeyRef': env.push({ name: `E${j}`, valueFrom: { configMapKeyRef: { name: n, key: 'k', optional: true } } }); break;
          case 'envFrom.secretRef': envFrom.push({ secretRef: { name: n, optional: true } }); break;
          case 'envFrom.configMapRef': envFrom.push({ configMapRef: { name: n, optional: true } }); break;
          case 'initEnv.secretKeyRef': initEnv.push({ name: `I${j}`, valueFrom: { secretKeyRef: { name: n, key: 'k', optional: true } } }); break;
          case 'imagePullSecrets': pull.push({ name: n }); break;
        }
      });
      // On the simulated nodes: a real kubelet would try to mount the volumes aimed at (iSCSI, RBD, CephFS).
      const spec: Json = { containers: [{ name: 'c', image: 'busybox', env, envFrom }], volumes, imagePullSecrets: pull, ...onSimulatedNodes };
      if (initEnv.length) spec.initContainers = [{ name: 'i', image: 'busybox', env: initEnv }];
      if (p.serviceAccount) {
        spec.serviceAccountName = p.serviceAccount;
        if (p.deprecatedServiceAccount) spec.serviceAccount = p.serviceAccount;
      }
      const sched = p.scheduling;
      if (sched?.kind === 'topologySpread') {
        spec.topologySpreadConstraints = [{ maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: sched.required ? 'DoNotSchedule' : 'ScheduleAnyway', labelSelector: { matchLabels: sched.labels } }];
      } else if (sched) {
        const term = { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: sched.labels }, ...(sched.namespaces ? { namespaces: sched.namespaces } : {}), ...(sched.namespaceSelector ? { namespaceSelector: sched.namespaceSelector } : {}) };
        spec.affinity = { [sched.kind]: sched.required ? { requiredDuringSchedulingIgnoredDuringExecution: [term] } : { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 50, podAffinityTerm: term }] } };
      }
      const manifest = { apiVersion: 'v1', kind: 'Pod', metadata: { name }, spec };
      const p_ = t(A, '/api/v1/namespaces/default/pods');
      const created = await gw.json<KubeObject>(admin[A]!, 'POST', p_, manifest);
      const record = (why: string, kind = why.replace(/: .*$/, '')) => violations.push({ kind, why, method: 'POST', path: p_, headers: `token=valid role=admin; pod ${JSON.stringify(p.refs.map((r) => `${r.field}=${r.name}`).concat(p.serviceAccount ? [`serviceAccountName=${p.serviceAccount}`] : []))}`, status: created.status });
      const echoes = JSON.stringify(manifest).match(/"[^"]*"/g)!.map((s) => s.slice(1, -1));
      for (const leak of leaksIn(created.text, echoes, markers)) record(`leak in the answer to a pod create: ${leak}`);
      if (created.status !== 201) {
        const why = `${created.status} ${((created.body as { reason?: string } | undefined)?.reason ?? '')}`;
        stats.refused.set(why, (stats.refused.get(why) ?? 0) + 1);
        return;
      }
      stats.created++;
      const twinName = `${name}-x-default-x-${A}`;
      const twin = await host.find<KubeObject>({ group: '', version: 'v1', resource: 'pods', namespace: `kplex-${A}`, name: twinName });
      if (!twin) return;
      stats.twins++;
      for (const ref of hostRefs(twin.spec)) {
        stats.refs++;
        const at = ref.path.replace(/\[\d+\]/g, '[]');
        if (ref.field === 'serviceAccountToken') record(`host twin projects a host service-account token: ${ref.path} in ${twinName}`, `host twin of a pod projects a host service-account token (${at})`);
        // Its own token Secret (tenant-issued tokens, pod-access.ts) is the one name that is kplex's, not A's.
        else if (ref.name === tokenSecretName(twinName) && /\.projected\.sources\[\d+\]\.secret\.name$/.test(ref.path)) continue;
        else if (!isTranslatedRef(ref.name, 'default', A)) record(`host twin names an untranslated object: ${ref.path} = "${ref.name}" in ${twinName}`, `host twin of a pod names an untranslated object at ${at}`);
      }
      // Whatever it aimed at, each selector over pods counts A's twins only, in A's host namespace.
      for (const [at, c] of podSelectorsIn(twin.spec as Json)) {
        stats.selectors++;
        const scoped = !c.namespaces && !c.namespaceSelector && (!c.labelSelector || c.labelSelector.matchLabels?.['kplex.dev/tenant'] === A);
        if (!scoped) record(`host twin has a pod selector not scoped to the tenant: ${at} = ${JSON.stringify(c)} in ${twinName}`, `host twin of a pod has a pod selector not scoped to the tenant at ${at.replace(/\[\d+\]/g, '[]')}`);
      }
    });
    return { attempts: pods.length, violations, summary: `${pods.length} generated pods: ${stats.created} created (refused: ${[...stats.refused].map(([k, v]) => `${k} ×${v}`).join(', ') || 'none'}), ${stats.twins} host twins with ${stats.refs} references and ${stats.selectors} pod selectors checked` };
  }

  /** The pod (anti-)affinity terms and topology spread constraints of a pod spec, with where they are. */
  function podSelectorsIn(spec: Record<string, any>): [string, Record<string, any>][] {
    const out: [string, Record<string, any>][] = [];
    for (const kind of ['podAffinity', 'podAntiAffinity']) {
      const a = spec.affinity?.[kind] ?? {};
      (a.requiredDuringSchedulingIgnoredDuringExecution ?? []).forEach((t: Json, i: number) => out.push([`spec.affinity.${kind}.required[${i}]`, t]));
      (a.preferredDuringSchedulingIgnoredDuringExecution ?? []).forEach((w: Json, i: number) => out.push([`spec.affinity.${kind}.preferred[${i}]`, (w.podAffinityTerm ?? {}) as Json]));
    }
    (spec.topologySpreadConstraints ?? []).forEach((c: Json, i: number) => out.push([`spec.topologySpreadConstraints[${i}]`, c]));
    return out;
  }

  /** Where two JSON values differ: `path: before → after`. */
  function diff(x: unknown, y: unknown, p = ''): string[] {
    if (JSON.stringify(x) === JSON.stringify(y)) return [];
    if (x && y && typeof x === 'object' && typeof y === 'object' && Array.isArray(x) === Array.isArray(y)) {
      const keys = new Set([...Object.keys(x), ...Object.keys(y)]);
      return [...keys].flatMap((k) => diff((x as Json)[k], (y as Json)[k], `${p}.${k}`));
    }
    const show = (v: unknown) => (v === undefined ? '(none)' : JSON.stringify(v).slice(0, 120));
    return [`${p || '.'}: ${show(x)} → ${show(y)}`];
  }

  /** Every name a pod spec refers to, with where: secrets, config maps, claims, service accounts. */
  function hostRefs(spec: unknown): { path: string; name: string; field?: string }[] {
    const out: { path: string; name: string; field?: string }[] = [];
    const refKeys = new Set(['secretRef', 'secretKeyRef', 'configMapKeyRef', 'configMapRef', 'nodePublishSecretRef', 'nodeStageSecretRef', 'controllerPublishSecretRef', 'controllerExpandSecretRef', 'nodeExpandSecretRef', 'configMap', 'secret']);
    const walk = (v: unknown, p: string): void => {
      if (Array.isArray(v)) return v.forEach((x, i) => walk(x, `${p}[${i}]`));
      if (!v || typeof v !== 'object') return;
      for (const [k, x] of Object.entries(v as Json)) {
        const here = `${p}.${k}`;
        if (['secretName', 'claimName', 'serviceAccountName', 'serviceAccount'].includes(k) && typeof x === 'string') out.push({ path: here, name: x });
        if (refKeys.has(k) && x && typeof x === 'object' && typeof (x as Json).name === 'string') out.push({ path: `${here}.name`, name: (x as Json).name as string });
        if (k === 'imagePullSecrets' && Array.isArray(x)) x.forEach((s: Json, i) => typeof s?.name === 'string' && out.push({ path: `${here}[${i}].name`, name: s.name }));
        if (k === 'serviceAccountToken') out.push({ path: here, name: '', field: 'serviceAccountToken' });
        walk(x, here);
      }
    };
    walk(spec, 'spec');
    return out;
  }

  async function checkUnchanged(): Promise<{ attempts: number; violations: Violation[] }> {
    const violations: Violation[] = [];
    let attempts = 0;
    const record = (kind: string, why: string, what: string) => violations.push({ kind, why, method: 'CHECK', path: what, headers: '', status: '-' });
    const strip = (o: KubeObject) => {
      // Items of a list carry no kind and apiVersion; status is the host's to change.
      const { status: _s, kind: _k, apiVersion: _a, ...rest } = o as Json;
      const { managedFields: _m, resourceVersion: _r, ...meta } = (rest.metadata ?? {}) as Json;
      return JSON.stringify({ ...rest, metadata: meta });
    };
    for (const [key, before] of baseline.bObjects) {
      const [kind, ns, name] = key.split('/') as [string, string, string];
      const group = kind === 'roles' ? `/apis/${RBAC}/v1` : '/api/v1';
      const p = kind === 'namespaces' ? `${group}/namespaces/${name}` : `${group}/namespaces/${ns}/${kind}/${name}`;
      const now = await gw.json<KubeObject>(admin[B]!, 'GET', t(B, p));
      attempts++;
      if (now.status !== 200) {
        record("B's canary changed", `${key} is gone: ${now.status} ${now.text.slice(0, 200)}`, key);
        continue;
      }
      if (now.body.metadata.resourceVersion !== before.metadata.resourceVersion && strip(now.body) !== strip(before)) {
        const changes = diff(JSON.parse(strip(before)), JSON.parse(strip(now.body)));
        record("B's canary changed", `${key}: resourceVersion ${before.metadata.resourceVersion} → ${now.body.metadata.resourceVersion}: ${changes.slice(0, 8).join('; ')}`, key);
      }
    }
    const names = await bNames();
    attempts += names.size;
    for (const [p, before] of baseline.bNames) {
      const now = names.get(p) ?? [];
      if (JSON.stringify(now) !== JSON.stringify(before)) record("B's objects changed", `${p}: ${JSON.stringify(before)} → ${JSON.stringify(now)}`, p);
    }
    const hostNow = await hostNames();
    attempts += hostNow.size;
    for (const [key, before] of baseline.hostNames) {
      const now = hostNow.get(key) ?? [];
      if (key.startsWith(`kplex-${A}/`)) continue;
      // A pod that a Deployment of B would make could come and go; B has none, so every change counts.
      if (JSON.stringify(now) !== JSON.stringify(before)) record(key === 'namespaces' ? 'host namespaces changed' : `host namespace ${key.split('/')[0]} changed`, `${key}: added ${JSON.stringify(now.filter((n) => !before.includes(n)))}, removed ${JSON.stringify(before.filter((n) => !now.includes(n)))}`, key);
    }
    const keys = await host.get({ group: '', version: 'v1', resource: 'secrets', namespace: 'kplex-system', name: 'kplex-signing-keys' });
    if (keys.metadata.resourceVersion !== baseline.signingKeysRv) record('host signing keys changed', `resourceVersion ${baseline.signingKeysRv} → ${keys.metadata.resourceVersion}`, 'kplex-system/kplex-signing-keys');
    for (const s of await hostList('secrets', `kplex-${B}`)) {
      const rv = baseline.hostSecretsRv.get(s.metadata.name!);
      if (rv && rv !== s.metadata.resourceVersion) record(`host namespace kplex-${B} changed`, `secret ${s.metadata.name} resourceVersion ${rv} → ${s.metadata.resourceVersion}`, `kplex-${B}/secrets/${s.metadata.name}`);
    }
    // A's host namespace: what was there before, and kplex-managed twins of A's objects, nothing else.
    for (const kind of ['pods', 'configmaps', 'secrets', 'services', 'serviceaccounts', 'persistentvolumeclaims']) {
      const before = new Set(baseline.hostNames.get(`kplex-${A}/${kind}`) ?? []);
      for (const o of await hostList(kind, `kplex-${A}`)) {
        attempts++;
        if (before.has(o.metadata.name!)) continue;
        const labels = o.metadata.labels ?? {};
        const ns = o.metadata.annotations?.['kplex.dev/namespace'] ?? '';
        const managed = labels['app.kubernetes.io/managed-by'] === 'kplex' && labels['kplex.dev/tenant'] === A;
        // A pod's token Secret: named after a twin of A's pod, for that pod only.
        const forPod = o.metadata.annotations?.['kplex.dev/pod'] ?? '';
        const podToken = kind === 'secrets' && labels['kplex.dev/pod-token'] === 'true' && isTranslatedRef(forPod, 'default', A) && o.metadata.name === tokenSecretName(forPod);
        if (!managed || (!podToken && !isTranslatedRef(o.metadata.name!, ns, A))) {
          record(`host namespace kplex-${A} holds an object that is not a kplex twin of A's`, `${kind}/${o.metadata.name} labels ${JSON.stringify(labels)} origin namespace "${ns}"`, `kplex-${A}/${kind}/${o.metadata.name}`);
        }
      }
    }
    return { attempts, violations };
  }
});
