import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadAllYaml } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accessFromKubeconfig } from '../../src/k8s/kubeconfig.js';
import { packageRoot } from '../../src/paths.js';
import { Translator } from '../../src/sync/translate.js';
import { granted, used, type AuditEvent, type PolicyRule } from './rbac-audit.js';
import { ResumingWatch } from './resuming-watch.js';
import { eventually, helmPath, isolatedEnv, kplex, kubectl, kubectlPath, processesMentioning, run, tmpDir, type Run } from './helpers.js';

const NODE_IP = '10.250.0.1';
const NODE_PORT = 31443;
const TENANT = 't1';
const VOLUMES = '/tmp/kplex-install-volumes';
// Every feature whose host objects the chart's RBAC grants, so that the last test sees each permission used.
const TENANT_VALUES = `isolate: true
quota: {cpu: "1", memory: 2Gi}
sync:
  ingresses: {enabled: true}
  networkPolicies: {enabled: true}
  priorityClasses: {enabled: true}
  storageClasses: {enabled: true}
  persistentVolumes: {enabled: true, localPathPrefixes: [${VOLUMES}]}
`;
const GATEWAY_USER = 'system:serviceaccount:kplex-system:kplex-gateway';
const VALUES = ['--set', 'service.type=NodePort', '--set', `service.nodePort=${NODE_PORT}`, '--set', `advertiseUrl=https://${NODE_IP}:${NODE_PORT}`, '--set', `tls.names={${NODE_IP}}`];

interface Pod {
  metadata: { name: string };
  status: { phase: string; conditions?: { type: string; status: string }[] };
}

/**
 * kplex installed into a cluster that runs no kplex (a host from `kplex dev up --no-gateway`): the
 * gateway image built here (scripts/gateway-image.sh) loaded onto the node, `helm install` of
 * deploy/chart, gateways Ready behind a NodePort, and a tenant made by the CLI whose control plane is a
 * StatefulSet on the host and whose Deployment runs there, reached through the NodePort.
 */
describe('install into a cluster: the Helm chart, the gateway image, provider cluster', () => {
  const dir = tmpDir('install');
  const dataDir = path.join(dir, 'data');
  const env = isolatedEnv(dir);
  const hostKc = path.join(dataDir, 'admin.kubeconfig');
  const host = (args: string[]): Promise<Run> => kubectl(hostKc, args);
  const helmEnv = { HELM_CONFIG_HOME: path.join(dir, 'helm', 'config'), HELM_CACHE_HOME: path.join(dir, 'helm', 'cache'), HELM_DATA_HOME: path.join(dir, 'helm', 'data') };
  const helm = (args: string[], timeoutMs = 300_000): Promise<Run> => run(helmPath(), ['--kubeconfig', hostKc, ...args], helmEnv, timeoutMs);
  const ok = (r: Run): string => {
    expect(r.code, r.stderr + r.stdout).toBe(0);
    return r.stdout;
  };
  let tenantKc = '';
  // The host API server writes down every request of the gateways' service account, to compare with the chart's RBAC.
  const auditLog = path.join(dir, 'audit.log');
  const auditPolicy = path.join(dir, 'audit-policy.yaml');
  // helm uninstall removes the binding before the gateway pods end, so what they do after (release the Lease) is refused.
  let uninstalledAt = Infinity;

  beforeAll(async () => {
    ok(await run('bash', [path.join(packageRoot, 'scripts', 'gateway-image.sh')], {}, 240_000));
    writeFileSync(auditPolicy, JSON.stringify({
      apiVersion: 'audit.k8s.io/v1',
      kind: 'Policy',
      omitStages: ['RequestReceived'],
      rules: [{ level: 'Metadata', users: [GATEWAY_USER] }, { level: 'None' }],
    }));
    const audit = ['--component-arg', `kube-apiserver=--audit-policy-file=${auditPolicy}`, '--component-arg', `kube-apiserver=--audit-log-path=${auditLog}`];
    ok(await kplex(['dev', 'up', '--nodes', '1', '--simulated-nodes', '0', '--no-gateway', '--detach', '--data-dir', dataDir, ...audit], env, 300_000));
    ok(await kplex(['dev', 'image', 'load', path.join(packageRoot, 'dist', 'images', 'gateway.tar'), '--data-dir', dataDir], env, 120_000));
  }, 600_000);

  afterAll(async () => {
    await kplex(['dev', 'down', '--data-dir', dataDir], env);
    expect(processesMentioning(dataDir)).toEqual([]);
  }, 120_000);

  it('helm install: every manifest is accepted by the API server, the gateways become Ready behind the NodePort', async () => {
    const values = VALUES;
    const rendered = ok(await helm(['template', 'kplex', path.join(packageRoot, 'deploy', 'chart'), '--namespace', 'kplex-system', ...values]));
    ok(await host(['create', 'namespace', 'kplex-system']));
    // The gateways make the Tenant CRD themselves on a cluster that has none.
    ok(await host(['delete', 'crd', 'tenants.kplex.dev', '--ignore-not-found']));
    const dryRun = await kubectl(hostKc, ['apply', '--dry-run=server', '-n', 'kplex-system', '-f', '-'], { input: rendered });
    expect(dryRun.code, dryRun.stderr).toBe(0);
    ok(await helm(['install', 'kplex', path.join(packageRoot, 'deploy', 'chart'), '--namespace', 'kplex-system', '--wait', '--timeout', '4m', ...values], 300_000));
    const pods = JSON.parse(ok(await host(['-n', 'kplex-system', 'get', 'pods', '-l', 'app.kubernetes.io/name=kplex-gateway', '-o', 'json']))) as { items: Pod[] };
    expect(pods.items).toHaveLength(2);
    for (const p of pods.items) expect(p.status.conditions?.find((c) => c.type === 'Ready')?.status, p.metadata.name).toBe('True');
  }, 360_000);

  it('kplex create makes the tenant through the installed gateway; kubectl through the NodePort runs a Deployment with logs and exec', async () => {
    const valuesFile = path.join(dir, 't1-values.yaml');
    writeFileSync(valuesFile, TENANT_VALUES);
    ok(await kplex(['create', TENANT, '-f', valuesFile, '--connect=false', '--context', 'kplex-host'], env, 300_000));
    const sts = JSON.parse(ok(await host(['-n', `kplex-${TENANT}`, 'get', 'statefulset', 'kplex-control-plane', '-o', 'json']))) as { status: { readyReplicas?: number } };
    expect(sts.status.readyReplicas).toBe(1);
    tenantKc = path.join(dir, `${TENANT}.kubeconfig`);
    const printed = ok(await kplex(['connect', TENANT, '--print', '--context', 'kplex-host'], env));
    expect(printed).toContain(`server: https://${NODE_IP}:${NODE_PORT}/tenants/${TENANT}`);
    writeFileSync(tenantKc, printed);
    ok(await kubectl(tenantKc, ['create', 'deployment', 'web', '--image=nginx']));
    const name = await eventually(async () => {
      const items = (JSON.parse(ok(await kubectl(tenantKc, ['get', 'pods', '-l', 'app=web', '-o', 'json']))) as { items: Pod[] }).items;
      return items.find((p) => p.status.phase === 'Running')?.metadata.name;
    }, 180_000, 'a Running pod of the Deployment');
    expect(ok(await kubectl(tenantKc, ['exec', name, '--', 'cat', '/etc/hostname'])).trim()).toBe(name);
    ok(await kubectl(tenantKc, ['logs', name]));
  }, 400_000);

  it("kubectl top pod and top node in the tenant: the leading gateway serves its metrics.k8s.io on its pod IP, where the tenant's API server pod reaches it", async () => {
    const pod = ok(await kubectl(tenantKc, ['get', 'pods', '-l', 'app=web', '-o', 'jsonpath={.items[0].metadata.name}']));
    const shows = (args: string[], name: string) =>
      eventually(async () => {
        const r = await kubectl(tenantKc, args);
        return r.code === 0 && r.stdout.split('\n').some((l) => l.split(/\s+/)[0] === name) ? true : undefined;
      }, 180_000, `kubectl ${args.join(' ')} in the tenant to list ${name}`);
    await shows(['top', 'pod'], pod);
    await shows(['top', 'node'], 'kplex-real-0');
  }, 400_000);

  it('every kind the tenant syncs reaches the host through the installed gateways, and goes again', async () => {
    const t = (args: string[], input?: string): Promise<Run> => kubectl(tenantKc, args, { input });
    const twin = new Translator(TENANT);
    const onHost = async (kind: string, resource: string, name: string): Promise<boolean> =>
      (await host(['-n', `kplex-${TENANT}`, 'get', resource, twin.name('default', name, kind), '-o', 'name'])).code === 0;
    const web = ok(await t(['get', 'pods', '-l', 'app=web', '-o', 'jsonpath={.items[0].metadata.name}']));
    ok(await t(['label', 'pod', web, 'checked=yes']));
    expect(await stream(tenantKc, ['port-forward', `pod/${web}`, ':80'], /Forwarding from 127\.0\.0\.1:(\d+)/, async (m) => (await fetch(`http://127.0.0.1:${m[1]}/`)).text())).toContain('Welcome to nginx!');

    // A pod made through the gateway names a host PriorityClass; attach shows what it prints.
    ok(await host(['create', 'priorityclass', 'kplex-e2e-high', '--value=1000']));
    ok(await t(['run', 'ticker', '--image=busybox', '--overrides={"spec":{"priorityClassName":"kplex-e2e-high"}}', '--', 'sh', '-c', 'while true; do echo tick; sleep 1; done']));
    ok(await t(['wait', '--for=condition=Ready', 'pod/ticker', '--timeout=120s']));
    expect(await stream(tenantKc, ['attach', 'ticker'], /tick/, async (m) => m[0])).toBe('tick');
    ok(await t(['delete', 'pod', 'ticker', '--wait=false']));

    ok(await t(['create', 'configmap', 'settings', '--from-literal=a=b']));
    ok(await t(['create', 'serviceaccount', 'robot']));
    ok(await t(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' }, spec: { selector: { app: 'web' }, ports: [{ port: 80 }] } })));
    ok(await t(['label', 'service', 'web', 'tier=front']));
    ok(await t(['apply', '-f', '-'], `apiVersion: v1
kind: Service
metadata: {name: outside}
spec: {ports: [{port: 80}]}
---
apiVersion: v1
kind: Endpoints
metadata: {name: outside}
subsets: [{addresses: [{ip: 10.250.0.1}], ports: [{port: 80}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web}
spec: {podSelector: {matchLabels: {app: web}}, ingress: [{}]}
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: vol}
spec:
  capacity: {storage: 10Mi}
  accessModes: [ReadWriteOnce]
  storageClassName: manual
  local: {path: ${VOLUMES}/vol}
  claimRef: {namespace: default, name: data}
  nodeAffinity: {required: {nodeSelectorTerms: [{matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [kplex-real-0]}]}]}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec: {accessModes: [ReadWriteOnce], storageClassName: manual, volumeName: vol, resources: {requests: {storage: 10Mi}}}
`));
    ok(await t(['create', 'ingress', 'web', '--rule=web.example/=web:80']));
    await eventually(async () => ((await Promise.all([
      onHost('Service', 'services', 'web'), onHost('Service', 'services', 'outside'), onHost('Endpoints', 'endpoints', 'outside'),
      onHost('NetworkPolicy', 'networkpolicies', 'web'), onHost('Ingress', 'ingresses', 'web'), onHost('PersistentVolumeClaim', 'persistentvolumeclaims', 'data'),
    ])).every(Boolean) ? true : undefined), 60_000, 'the twins on the host');
    // The tenant's volume goes to the host, and is bound there to the claim's twin.
    await eventually(async () => (ok(await t(['get', 'pvc', 'data', '-o', 'jsonpath={.status.phase}'])) === 'Bound' ? true : undefined), 60_000, 'the claim bound');

    ok(await t(['delete', 'pvc', 'data']));
    ok(await t(['delete', 'pv', 'vol']));
    // Endpoints first: the tenant's controllers delete a Service's Endpoints with it.
    ok(await t(['delete', 'endpoints', 'outside']));
    ok(await t(['delete', 'service', 'outside']));
    ok(await t(['delete', 'service', 'web']));
    ok(await t(['delete', 'networkpolicy,ingress', 'web']));
    ok(await t(['delete', 'configmap', 'settings']));
    ok(await t(['delete', 'serviceaccount', 'robot']));
    await eventually(async () => ((await Promise.all([
      onHost('Service', 'services', 'web'), onHost('Service', 'services', 'outside'), onHost('Endpoints', 'endpoints', 'outside'),
      onHost('NetworkPolicy', 'networkpolicies', 'web'), onHost('Ingress', 'ingresses', 'web'), onHost('PersistentVolumeClaim', 'persistentvolumeclaims', 'data'),
    ])).some(Boolean) ? undefined : true), 60_000, 'the twins gone from the host');
    await eventually(async () => (ok(await host(['get', 'pv', '-o', 'jsonpath={.items[*].spec.local.path}'])).includes(`${VOLUMES}/vol`) ? undefined : true), 60_000, "the tenant's volume gone from the host");

    // Isolated no more: the quota and its default requests go from the host namespace.
    const valuesFile = path.join(dir, 't1-plain.yaml');
    writeFileSync(valuesFile, TENANT_VALUES.replace('isolate: true', 'isolate: false'));
    ok(await kplex(['create', TENANT, '-f', valuesFile, '--upgrade', '--connect=false', '--context', 'kplex-host'], env, 300_000));
    await eventually(async () => (ok(await host(['-n', `kplex-${TENANT}`, 'get', 'resourcequotas,limitranges', '-o', 'name'])).trim() === '' ? true : undefined), 60_000, 'the quota gone');
  }, 300_000);

  it('losing a gateway pod keeps the tenant served by the other replica, and watches through it miss no event', async () => {
    const configmaps = '/api/v1/namespaces/default/configmaps';
    const listed = JSON.parse(ok(await kubectl(tenantKc, ['get', '--raw', configmaps]))) as { metadata: { resourceVersion: string } };
    // Each watch has a connection of its own, so the NodePort spreads them over both gateways.
    const watches = Array.from({ length: 6 }, () => new ResumingWatch(accessFromKubeconfig({ file: tenantKc }), configmaps, listed.metadata.resourceVersion));
    for (const w of watches) w.start();
    try {
      const created: string[] = [];
      const create = async (name: string): Promise<void> => {
        ok(await kubectl(tenantKc, ['create', 'configmap', name]));
        created.push(name);
      };
      for (let i = 0; i < 3; i++) await create(`before-${i}`);
      await eventually(async () => (watches.every((w) => w.added.has('before-2')) ? true : undefined), 30_000, 'every watch open');
      // The gateway to lose is the one holding most of the watches: its metrics count them.
      const pods = ok(await host(['-n', 'kplex-system', 'get', 'pods', '-l', 'app.kubernetes.io/name=kplex-gateway', '-o', 'jsonpath={.items[*].metadata.name}'])).trim().split(' ');
      const open = await Promise.all(pods.map((p) => stream(hostKc, ['-n', 'kplex-system', 'port-forward', `pod/${p}`, ':9090'], /Forwarding from 127\.0\.0\.1:(\d+)/, async (m) => {
        const text = await (await fetch(`http://127.0.0.1:${m[1]}/metrics`)).text();
        return Number(new RegExp(`^kplex_gateway_open_watches\\{tenant="${TENANT}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
      })));
      const lost = open.indexOf(Math.max(...open));
      expect(open[lost], `open watches per gateway: ${open.join(', ')}`).toBeGreaterThan(0);
      ok(await host(['-n', 'kplex-system', 'delete', `pod/${pods[lost]}`, '--wait=false']));
      // Through the shutdown delay (5 s), the end of the lost gateway's watches, and after.
      const until = Date.now() + 12_000;
      for (let i = 0; Date.now() < until; i++) {
        await create(`during-${i}`);
        await new Promise((r) => setTimeout(r, 300));
      }
      await eventually(async () => (watches.every((w) => created.every((n) => w.added.has(n))) ? true : undefined), 60_000, 'every watch to see every configmap added');
      for (const w of watches) expect(w.broken).toEqual([]);
      // The lost gateway's watches ended cleanly and went on through the other one.
      expect(watches.reduce((n, w) => n + w.cleanEnds, 0)).toBeGreaterThan(0);
    } finally {
      for (const w of watches) w.stop();
    }
    await eventually(async () => ((await kubectl(tenantKc, ['get', 'deployment', 'web', '-o', 'name'])).code === 0 ? true : undefined), 60_000, 'the tenant through the remaining gateway');
  }, 180_000);

  it('kplex delete and helm uninstall leave only what the README says is kept (the gateway CA, the CRD, the signing keys)', async () => {
    ok(await kplex(['delete', TENANT, '--context', 'kplex-host'], env, 180_000));
    expect((await host(['get', 'namespace', `kplex-${TENANT}`])).code).not.toBe(0);
    // The claim's volume goes after the claim (reclaim policy Delete).
    await eventually(async () => (ok(await host(['get', 'pv', '-o', 'name'])).trim() === '' ? true : undefined), 60_000, 'the control plane volume to go');
    uninstalledAt = Date.now();
    ok(await helm(['uninstall', 'kplex', '--namespace', 'kplex-system', '--wait']));
    // Its pods end after the release is gone (their grace period).
    await eventually(async () => (ok(await host(['-n', 'kplex-system', 'get', 'deployments,services,pods,serviceaccounts', '-l', 'app.kubernetes.io/name=kplex-gateway', '-o', 'name'])).trim() === '' ? true : undefined), 90_000, 'nothing of the release left');
    expect(ok(await host(['get', 'clusterroles,clusterrolebindings', '-o', 'name'])).split('\n').filter((n) => n.endsWith('/kplex-gateway'))).toEqual([]);
    expect(ok(await host(['-n', 'kplex-system', 'get', 'secret', 'kplex-gateway-tls', '-o', 'name'])).trim()).toBe('secret/kplex-gateway-tls');
  }, 300_000);

  // Runs last: by now the gateways have made and deleted a tenant, mirrored a Deployment's pods, served
  // logs and exec, lost a replica and been uninstalled.
  it("the chart's ClusterRole is what the gateways used: no request of theirs was refused, and no permission went unused", async () => {
    const rendered = ok(await helm(['template', 'kplex', path.join(packageRoot, 'deploy', 'chart'), '--namespace', 'kplex-system', ...VALUES]));
    const role = (loadAllYaml(rendered) as { kind?: string; rules?: PolicyRule[] }[]).find((d) => d?.kind === 'ClusterRole');
    const events = readFileSync(auditLog, 'utf8').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as AuditEvent);
    const { allowed, forbidden } = used(events.filter((e) => Date.parse(e.requestReceivedTimestamp) < uninstalledAt), GATEWAY_USER);
    expect([...forbidden].sort()).toEqual([]);
    const unused = [...granted(role!.rules!)].filter((p) => !allowed.has(p)).sort();
    expect(unused).toEqual([]);
  }, 60_000);
});

/** Runs kubectl until its output matches `pattern`, hands the match to `use`, then stops it. */
async function stream<T>(kubeconfig: string, args: string[], pattern: RegExp, use: (m: RegExpExecArray) => Promise<T>): Promise<T> {
  const child = spawn(kubectlPath(), ['--kubeconfig', kubeconfig, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const m = await new Promise<RegExpExecArray>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`kubectl ${args.join(' ')} printed no ${pattern} in 60 s: ${out}`)), 60_000);
      const onData = (d: Buffer): void => {
        out += d.toString();
        const found = pattern.exec(out);
        if (found) {
          clearTimeout(timer);
          resolve(found);
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`kubectl ${args.join(' ')} exited with ${code}: ${out}`));
      });
    });
    return await use(m);
  } finally {
    child.kill();
  }
}
