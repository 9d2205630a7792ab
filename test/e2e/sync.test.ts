import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/controlplane/ports.js';
import { hostLabelKey } from '../../src/sync/names.js';
import { Translator } from '../../src/sync/translate.js';
import { eventually, kplex, kubectl, kubectlPath, onSimulatedNodes, useSharedHost, type Run } from './helpers.js';

interface Pod {
  metadata: { name: string; namespace: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: { nodeName?: string };
  status: { phase: string; podIP?: string };
}

/**
 * The first-time user's scenario: a Deployment in a tenant runs as pods on the host. Its pods run on
 * the simulated nodes, whose logs, exec, attach and port-forward kwok answers as the tests expect.
 */
describe('tenant <-> host sync', () => {
  const shared = useSharedHost('sync', ['demo', 'other', 'iso']);
  const { dir, dataDir, env } = shared;
  let demo = '';
  let other = '';
  const host = (args: string[]) => kubectl(shared.hostKubeconfig, args);
  /** A pod spec's placement on the simulated nodes, in YAML flow style. */
  const simulated = `nodeSelector: ${JSON.stringify(onSimulatedNodes.nodeSelector)}, tolerations: ${JSON.stringify(onSimulatedNodes.tolerations)}`;
  const tenant = (args: string[], input?: string, kc = demo) => kubectl(kc, args, { input });
  const json = <T>(r: Run): T => {
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as T;
  };
  const hostPods = async (selector = 'kplex.dev/tenant=demo') => json<{ items: Pod[] }>(await host(['-n', 'kplex-demo', 'get', 'pods', '-l', selector, '-o', 'json'])).items;
  const running = (pods: Pod[]) => pods.filter((p) => p.status.phase === 'Running' && p.spec.nodeName);

  const app = `apiVersion: apps/v1
kind: Deployment
metadata: {name: nginx, namespace: demo-nginx}
spec:
  replicas: 2
  selector: {matchLabels: {app: nginx}}
  template:
    metadata: {labels: {app: nginx}}
    spec: {containers: [{name: nginx, image: nginx, ports: [{containerPort: 80}]}], ${simulated}}
---
apiVersion: v1
kind: Service
metadata: {name: nginx, namespace: demo-nginx}
spec:
  selector: {app: nginx}
  ports: [{port: 80, targetPort: 80}]
`;

  beforeAll(async () => {
    [demo, other] = await Promise.all([shared.createTenant('demo'), shared.createTenant('other')]);
  });

  it('runs a tenant Deployment as Running pods in kplex-demo, with translated names; high-level objects stay in the tenant', async () => {
    expect((await tenant(['create', 'ns', 'demo-nginx'])).code).toBe(0);
    const apply = await tenant(['apply', '-f', '-'], app);
    expect(apply.code, apply.stderr).toBe(0);
    const pods = await eventually(async () => {
      const p = running(await hostPods());
      return p.length === 2 ? p : undefined;
    }, 60_000, '2 Running host pods');
    for (const p of pods) {
      expect(p.metadata.name).toMatch(/^nginx-[a-z0-9]+-[a-z0-9]+-x-demo-nginx-x-demo$/);
      expect(p.metadata.annotations?.['kplex.dev/namespace']).toBe('demo-nginx');
    }
    expect((await host(['get', 'ns', 'demo-nginx'])).code).not.toBe(0);
    expect((await host(['get', 'deployments', '-A', '-o', 'name'])).stdout).not.toContain('nginx');
  });

  it('shows tenant pods Running on the nodes their host twins run on, and those nodes', async () => {
    const pods = await eventually(async () => {
      const p = running(json<{ items: Pod[] }>(await tenant(['-n', 'demo-nginx', 'get', 'pods', '-o', 'json'])).items);
      return p.length === 2 && p.every((x) => x.status.podIP) ? p : undefined;
    }, 60_000, 'Running tenant pods');
    const hostByName = new Map((await hostPods()).map((p) => [p.metadata.annotations?.['kplex.dev/name'], p]));
    for (const p of pods) {
      expect(p.spec.nodeName).toBe(hostByName.get(p.metadata.name)?.spec.nodeName);
      expect(p.status.podIP).toBe(hostByName.get(p.metadata.name)?.status.podIP);
    }
    const nodes = (await tenant(['get', 'nodes', '-o', 'jsonpath={.items[*].metadata.name}'])).stdout.split(' ').sort();
    expect(nodes).toEqual([...new Set(pods.map((p) => p.spec.nodeName!))].sort());
    // The host scheduler's events, told in the tenant's names.
    const events = await eventually(async () => {
      const r = await tenant(['-n', 'demo-nginx', 'get', 'events', '--field-selector', 'reason=Scheduled', '-o', 'jsonpath={.items[*].message}']);
      return r.stdout.includes(`Successfully assigned demo-nginx/${pods[0]!.metadata.name} to ${pods[0]!.spec.nodeName}`) ? r.stdout : undefined;
    }, 30_000, 'the Scheduled event in the tenant');
    expect(events).not.toContain('-x-');
  });

  it('gives the host Service the same ClusterIP and a selector matching exactly the mirrored pods', async () => {
    const ip = (await tenant(['-n', 'demo-nginx', 'get', 'svc', 'nginx', '-o', 'jsonpath={.spec.clusterIP}'])).stdout;
    const svc = json<{ spec: { clusterIP: string; selector: Record<string, string> } }>(await host(['-n', 'kplex-demo', 'get', 'svc', 'nginx-x-demo-nginx-x-demo', '-o', 'json']));
    expect(svc.spec.clusterIP).toBe(ip);
    const selector = Object.entries(svc.spec.selector).map(([k, v]) => `${k}=${v}`).join(',');
    const selected = (await hostPods(selector)).map((p) => p.metadata.name).sort();
    const mirrored = (await hostPods('kplex.dev/tenant=demo')).filter((p) => p.metadata.annotations?.['kplex.dev/namespace'] === 'demo-nginx').map((p) => p.metadata.name).sort();
    expect(selected).toEqual(mirrored);
  });

  it('gives a Service changed by kubectl apply a twin with only its new port and labels', async () => {
    // The twin of a Service written as JSON is made on the host first (the tenant stores the host's
    // ClusterIP), then kept by server-side apply: what the tenant drops must go from it too.
    const svc = (port: number, labels: string) => `apiVersion: v1
kind: Service
metadata: {name: ports, namespace: svc-ports, labels: {${labels}}}
spec:
  selector: {app: web}
  ports: [{name: http, port: ${port}, targetPort: 80}]
`;
    expect((await tenant(['create', 'namespace', 'svc-ports'])).code).toBe(0);
    const first = await tenant(['apply', '-f', '-'], svc(80, 'tier: web, old: "yes"'));
    expect(first.code, first.stderr).toBe(0);
    const changed = await tenant(['apply', '-f', '-'], svc(8080, 'tier: web'));
    expect([changed.code, changed.stderr]).toEqual([0, '']);
    const twin = await eventually(async () => {
      const t = json<{ metadata: { labels: Record<string, string> }; spec: { ports: { name: string; port: number }[] } }>(await host(['-n', 'kplex-demo', 'get', 'svc', 'ports-x-svc-ports-x-demo', '-o', 'json']));
      return t.spec.ports.length === 1 && t.spec.ports[0]!.port === 8080 ? t : undefined;
    }, 15_000, 'the twin with port 8080 only');
    expect(twin.spec.ports.map((p) => [p.name, p.port])).toEqual([['http', 8080]]);
    expect(twin.metadata.labels[hostLabelKey('tier')]).toBe('web');
    expect(twin.metadata.labels).not.toHaveProperty(hostLabelKey('old'));
  });

  it('mirrors the Endpoints of a selectorless Service, and only those', async () => {
    const manifest = `apiVersion: v1
kind: Service
metadata: {name: db, namespace: demo-nginx}
spec: {ports: [{port: 5432}]}
---
apiVersion: v1
kind: Endpoints
metadata: {name: db, namespace: demo-nginx}
subsets: [{addresses: [{ip: 192.0.2.10}], ports: [{port: 5432}]}]
`;
    expect((await tenant(['apply', '-f', '-'], manifest)).code).toBe(0);
    const ip = await eventually(async () => {
      const r = await host(['-n', 'kplex-demo', 'get', 'endpoints', 'db-x-demo-nginx-x-demo', '-o', 'jsonpath={.subsets[0].addresses[0].ip}']);
      return r.code === 0 && r.stdout ? r.stdout : undefined;
    }, 30_000, 'the host Endpoints');
    expect(ip).toBe('192.0.2.10');
    // The nginx Service has a selector: the host computes its Endpoints from the mirrored pods.
    const nginx = json<{ metadata: { labels?: Record<string, string>; annotations?: Record<string, string> } }>(await host(['-n', 'kplex-demo', 'get', 'endpoints', 'nginx-x-demo-nginx-x-demo', '-o', 'json']));
    expect(nginx.metadata.labels?.['endpoints.kubernetes.io/managed-by']).toBe('endpoint-controller');
    expect(nginx.metadata.annotations?.['kplex.dev/name']).toBeUndefined();
  });

  it('mirrors only the ConfigMaps and Secrets that pods use, and only while they use them', async () => {
    const twin = (kind: string, name: string) => new Translator('demo').name('demo-nginx', name, kind);
    const onHost = async (resource: string, name: string) => (await host(['-n', 'kplex-demo', 'get', resource, name, '-o', 'name'])).code === 0;
    for (const args of [['create', 'configmap', 'settings', '--from-literal=mode=fast'], ['create', 'secret', 'generic', 'api-key', '--from-literal=key=s3cret'], ['create', 'configmap', 'unused', '--from-literal=a=b']]) {
      const r = await tenant(['-n', 'demo-nginx', ...args]);
      expect(r.code, r.stderr).toBe(0);
    }
    const reader = `apiVersion: v1
kind: Pod
metadata: {name: reader, namespace: demo-nginx}
spec:
  containers: [{name: app, image: busybox, envFrom: [{configMapRef: {name: settings}}], volumeMounts: [{name: key, mountPath: /key}]}]
  volumes: [{name: key, secret: {secretName: api-key}}]
  nodeSelector: ${JSON.stringify(onSimulatedNodes.nodeSelector)}
  tolerations: ${JSON.stringify(onSimulatedNodes.tolerations)}
`;
    // A server-side dry run stores nothing in the tenant, and nothing reaches the host either.
    const dry = await tenant(['apply', '--dry-run=server', '-f', '-'], reader);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain('pod/reader created (server dry run)');
    expect(await onHost('pod', twin('Pod', 'reader'))).toBe(false);
    expect(await onHost('secret', twin('Secret', 'api-key'))).toBe(false);

    const apply = await tenant(['apply', '-f', '-'], reader);
    expect(apply.code, apply.stderr).toBe(0);
    // What the pod uses is on the host before the pod, already when kubectl returns.
    expect(await onHost('configmap', twin('ConfigMap', 'settings'))).toBe(true);
    expect(await onHost('secret', twin('Secret', 'api-key'))).toBe(true);
    expect(await onHost('configmap', twin('ConfigMap', 'unused'))).toBe(false);

    // A change to a used ConfigMap reaches its twin.
    expect((await tenant(['-n', 'demo-nginx', 'patch', 'configmap', 'settings', '-p', '{"data":{"mode":"slow"}}'])).code).toBe(0);
    const data = await host(['-n', 'kplex-demo', 'get', 'configmap', twin('ConfigMap', 'settings'), '-o', 'jsonpath={.data.mode}']);
    expect(data.stdout).toBe('slow');

    expect((await tenant(['-n', 'demo-nginx', 'delete', 'pod', 'reader', '--wait=false'])).code).toBe(0);
    await eventually(async () => (!(await onHost('configmap', twin('ConfigMap', 'settings'))) && !(await onHost('secret', twin('Secret', 'api-key'))) ? true : undefined), 60_000, 'twins removed once no pod uses them');
    expect((await tenant(['-n', 'demo-nginx', 'get', 'configmap', 'settings', '-o', 'name'])).stdout.trim()).toBe('configmap/settings');
  });

  it('serves kubectl logs and exec of a tenant pod from its host twin', async () => {
    const name = (await tenant(['-n', 'demo-nginx', 'get', 'pods', '-o', 'jsonpath={.items[0].metadata.name}'])).stdout;
    const logs = await tenant(['-n', 'demo-nginx', 'logs', name]);
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toContain('simulated container started');
    // kwok's exec does not pass stdin's end on to the command (the same without the gateway), so the
    // command ends by itself after one line.
    const exec = await tenant(['-n', 'demo-nginx', 'exec', '-i', name, '--', 'head', '-1'], 'through the gateway\n');
    expect(exec.code, exec.stderr).toBe(0);
    expect(exec.stdout).toBe('through the gateway\n');
  });

  it('runs kubectl exec -it with a terminal on the host twin', async () => {
    const name = (await tenant(['-n', 'demo-nginx', 'get', 'pods', '-o', 'jsonpath={.items[0].metadata.name}'])).stdout;
    // script(1) gives kubectl the terminal a person would have, so -t really asks for a TTY. kwok closes
    // the pty as soon as the command exits, racing its copy of the last output, so the command waits a
    // moment after writing (without the wait, 'interactive' went missing in one CI run in several).
    const command = `${kubectlPath()} --kubeconfig ${demo} -n demo-nginx exec -it ${name} -- sh -c 'tty; echo interactive; sleep 1'`;
    const r = spawnSync('script', ['-qec', command, '/dev/null'], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\/dev\/pts\/\d+/);
    expect(r.stdout).toContain('interactive');
  });

  it('streams kubectl logs -f as the container writes, and serves --previous and -c', async () => {
    const name = (await tenant(['-n', 'demo-nginx', 'get', 'pods', '-o', 'jsonpath={.items[0].metadata.name}'])).stdout;
    for (const args of [['--previous'], ['-c', 'nginx']]) {
      const r = await tenant(['-n', 'demo-nginx', 'logs', name, ...args]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('simulated container started');
    }
    const follow = spawn(kubectlPath(), ['--kubeconfig', demo, '-n', 'demo-nginx', 'logs', '-f', name], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      follow.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      await eventually(async () => (out.includes('simulated container started') ? true : undefined), 20_000, 'the log so far');
      // A line written while kubectl follows arrives through the open stream.
      const line = `followed at ${Date.now()}`;
      appendFileSync(path.join(dataDir, 'kwok', 'container.log'), `2026-01-01T00:00:03.000000000Z stdout F ${line}\n`);
      await eventually(async () => (out.includes(line) ? true : undefined), 20_000, 'the new line');
      expect(follow.exitCode).toBeNull();
    } finally {
      follow.kill();
    }
  });

  it('forwards a port and attaches to a tenant pod through the gateway (SPDY/WebSocket upgrades)', async () => {
    const name = (await tenant(['-n', 'demo-nginx', 'get', 'pods', '-o', 'jsonpath={.items[0].metadata.name}'])).stdout;
    const localPort = await freePort();
    const forward = spawn(kubectlPath(), ['--kubeconfig', demo, '-n', 'demo-nginx', 'port-forward', `pod/${name}`, `${localPort}:80`], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      forward.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      await eventually(async () => (out.includes('Forwarding from') ? true : undefined), 20_000, 'port-forward to listen');
      // kwok answers the forwarded port with an echo.
      const echoed = await new Promise<string>((resolve, reject) => {
        const socket = net.connect(localPort, '127.0.0.1', () => socket.write('ping through the gateway'));
        let got = '';
        socket.on('data', (d) => {
          got += d.toString();
          if (got.includes('ping through the gateway')) {
            socket.destroy();
            resolve(got);
          }
        });
        socket.on('error', reject);
        setTimeout(() => reject(new Error(`no echo, got "${got}"`)), 15_000).unref();
      });
      expect(echoed).toBe('ping through the gateway');
    } finally {
      forward.kill();
    }
    const attach = spawn(kubectlPath(), ['--kubeconfig', demo, '-n', 'demo-nginx', 'attach', name], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      let err = '';
      attach.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      attach.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      await eventually(async () => (err.includes("If you don't see a command prompt") ? true : undefined), 20_000, 'attach to connect');
      // kwok's attach streams what the simulated container writes from now on: write a line as the container.
      const line = `attached at ${Date.now()}`;
      await eventually(async () => {
        appendFileSync(path.join(dataDir, 'kwok', 'container.log'), `2026-01-01T00:00:02.000000000Z stdout F ${line}\n`);
        return out.includes(line) ? true : undefined;
      }, 20_000, 'attached output');
    } finally {
      attach.kill();
    }
  });

  it('mirrors scaling to 5 and back to 1', async () => {
    expect((await tenant(['-n', 'demo-nginx', 'scale', 'deployment', 'nginx', '--replicas=5'])).code).toBe(0);
    await eventually(async () => (running(await hostPods()).length === 5 ? true : undefined), 60_000, '5 host pods');
    expect((await tenant(['-n', 'demo-nginx', 'scale', 'deployment', 'nginx', '--replicas=1'])).code).toBe(0);
    await eventually(async () => {
      const tenantPods = json<{ items: Pod[] }>(await tenant(['-n', 'demo-nginx', 'get', 'pods', '-o', 'json'])).items;
      return (await hostPods()).length === 1 && tenantPods.length === 1 ? true : undefined;
    }, 60_000, '1 pod on both sides');
  });

  it('puts back a host pod deleted by hand', async () => {
    const live = (await tenant(['-n', 'demo-nginx', 'get', 'pods', '-o', 'jsonpath={.items[0].metadata.name}'])).stdout;
    const pod = (await hostPods()).find((p) => p.metadata.annotations?.['kplex.dev/name'] === live);
    expect(pod, `the host twin of ${live}`).toBeDefined();
    const uid = (pod as unknown as { metadata: { uid: string } }).metadata.uid;
    expect((await host(['-n', 'kplex-demo', 'delete', 'pod', pod!.metadata.name, '--wait=false'])).code).toBe(0);
    await eventually(async () => {
      const back = json<Pod & { metadata: { uid: string } }>(await host(['-n', 'kplex-demo', 'get', 'pod', pod!.metadata.name, '-o', 'json']));
      return back.metadata.uid !== uid && back.status.phase === 'Running' ? true : undefined;
    }, 60_000, 'a new host pod of that name, Running');
  });

  it('keeps pods of two tenants with the same names in the same namespaces apart', async () => {
    for (const kc of [demo, other]) {
      await tenant(['create', 'ns', 'same'], undefined, kc);
      const r = await tenant(['-n', 'same', 'run', 'twin', '--image=nginx', `--overrides=${JSON.stringify({ spec: onSimulatedNodes })}`], undefined, kc);
      expect(r.code, r.stderr).toBe(0);
    }
    const names = await eventually(async () => {
      const a = (await host(['-n', 'kplex-demo', 'get', 'pod', 'twin-x-same-x-demo', '-o', 'name'])).stdout.trim();
      const b = (await host(['-n', 'kplex-other', 'get', 'pod', 'twin-x-same-x-other', '-o', 'name'])).stdout.trim();
      return a && b ? [a, b] : undefined;
    }, 60_000, 'both twins');
    expect(names).toEqual(['pod/twin-x-same-x-demo', 'pod/twin-x-same-x-other']);
  });

  it('mirrors an Ingress with its backend renamed once enabled with --upgrade -f values.yaml', async () => {
    const values = path.join(dir, 'values.yaml');
    writeFileSync(values, 'sync:\n  ingresses: {enabled: true}\n  networkPolicies: {enabled: true}\n  nodes: {mode: all}\n');
    const up = await kplex(['create', 'demo', '--upgrade', '-f', values, '--context', 'kplex-host'], env);
    expect(up.code, up.stderr).toBe(0);
    const ing = 'apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: site, namespace: demo-nginx}\nspec:\n  rules: [{http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: nginx, port: {number: 80}}}}]}}]\n';
    expect((await tenant(['apply', '-f', '-'], ing)).code).toBe(0);
    const backend = await eventually(async () => {
      const r = await host(['-n', 'kplex-demo', 'get', 'ingress', 'site-x-demo-nginx-x-demo', '-o', 'jsonpath={.spec.rules[0].http.paths[0].backend.service.name}']);
      return r.code === 0 ? r.stdout : undefined;
    }, 60_000, 'the host Ingress');
    expect(backend).toBe('nginx-x-demo-nginx-x-demo');
    // The tenant kept its data through the upgrade.
    expect((await tenant(['-n', 'demo-nginx', 'get', 'deployment', 'nginx'])).code).toBe(0);
  });

  it('mirrors a NetworkPolicy whose host selector picks exactly the mirrored pods, and shows all nodes in mode all', async () => {
    const np = 'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: web-only, namespace: demo-nginx}\nspec:\n  podSelector: {matchLabels: {app: nginx}}\n  ingress: [{from: [{podSelector: {matchLabels: {role: client}}}]}]\n';
    expect((await tenant(['apply', '-f', '-'], np)).code).toBe(0);
    const policy = await eventually(async () => {
      const r = await host(['-n', 'kplex-demo', 'get', 'networkpolicy', new Translator('demo').name('demo-nginx', 'web-only', 'NetworkPolicy'), '-o', 'json']);
      return r.code === 0 ? (JSON.parse(r.stdout) as { spec: { podSelector: { matchLabels: Record<string, string> } } }) : undefined;
    }, 60_000, 'the host NetworkPolicy');
    const selector = Object.entries(policy.spec.podSelector.matchLabels).map(([k, v]) => `${k}=${v}`).join(',');
    const selected = (await hostPods(selector)).map((p) => p.metadata.annotations?.['kplex.dev/name']);
    const tenantPods = json<{ items: Pod[] }>(await tenant(['-n', 'demo-nginx', 'get', 'pods', '-l', 'app=nginx', '-o', 'json'])).items.map((p) => p.metadata.name);
    expect(selected.sort()).toEqual(tenantPods.sort());
    expect(selected.length).toBeGreaterThan(0);

    const hostNodes = (await host(['get', 'nodes', '-o', 'name'])).stdout.trim().split('\n').sort();
    await eventually(async () => {
      const seen = (await tenant(['get', 'nodes', '-o', 'name'])).stdout.trim().split('\n').sort();
      return JSON.stringify(seen) === JSON.stringify(hostNodes) ? true : undefined;
    }, 30_000, 'every host node in the tenant');
  });

  it('in isolated mode refuses a privileged pod when it is written, refuses what is over quota or tells why, until isolation is lifted', async () => {
    const iso = await shared.createTenant('iso', { isolate: true, quota: { pods: 1, services: 1, cpu: '1' } });
    const pod = (name: string, securityContext: string) => `apiVersion: v1\nkind: Pod\nmetadata: {name: ${name}}\nspec: {containers: [{name: c, image: busybox, securityContext: ${securityContext}}], ${simulated}}\n`;
    const twinOf = (name: string) => new Translator('iso').name('default', name, 'Pod');

    // The tenant API server refuses it with Kubernetes' own words; nothing is stored, nothing mirrored.
    const refused = await tenant(['apply', '-f', '-'], pod('priv', '{privileged: true}'), iso);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('pods "priv" is forbidden: violates PodSecurity "baseline:latest": privileged (container "c" must not set securityContext.privileged=true)');
    expect((await tenant(['get', 'pod', 'priv'], undefined, iso)).stderr).toContain('NotFound');

    // A CPU quota wants requests on every pod: the tenant's LimitRange fills them in, and the host is
    // asked about the pod as the tenant stores it.
    const limits = 'apiVersion: v1\nkind: LimitRange\nmetadata: {name: defaults}\nspec: {limits: [{type: Container, defaultRequest: {cpu: 100m}}]}\n';
    expect((await tenant(['apply', '-f', '-'], limits, iso)).code).toBe(0);
    // A baseline pod is accepted with the "restricted" warning, and the isolated host namespace runs it.
    const plain = await tenant(['apply', '-f', '-'], pod('plain', '{}'), iso);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stderr).toContain('would violate PodSecurity "restricted:latest"');
    await eventually(async () => {
      const r = await host(['-n', 'kplex-iso', 'get', 'pod', twinOf('plain'), '-o', 'jsonpath={.status.phase}']);
      return r.stdout === 'Running' ? true : undefined;
    }, 60_000, 'the baseline pod running on the host');

    // Over the host namespace's quota (one pod, one Service), a pod or Service written through the
    // gateway is refused before it is stored, in Kubernetes' words with the tenant's names...
    const extra = await tenant(['apply', '-f', '-'], pod('extra', '{}'), iso);
    expect(extra.code).not.toBe(0);
    expect(extra.stderr).toContain('pods "extra" is forbidden: exceeded quota: kplex-quota, requested: pods=1, used: pods=1, limited: pods=1');
    expect((await tenant(['get', 'pod', 'extra'], undefined, iso)).stderr).toContain('NotFound');
    const service = (name: string) => `apiVersion: v1\nkind: Service\nmetadata: {name: ${name}}\nspec: {ports: [{port: 80}]}\n`;
    expect((await tenant(['apply', '-f', '-'], service('s1'), iso)).code).toBe(0);
    // The host's quota is eventually consistent: its controller may recount from a cache that has not
    // seen s1 yet and lower what admission counted (kubernetes/kubernetes#123434). Over the quota means
    // over it as the host counts it.
    await eventually(async () => {
      const r = await host(['-n', 'kplex-iso', 'get', 'resourcequota', 'kplex-quota', '-o', 'jsonpath={.status.used.services}/{.status.hard.services}']);
      const [used, hard] = r.stdout.split('/');
      return used && used === hard ? true : undefined;
    }, 30_000, "the host's quota counting s1");
    const s2 = await tenant(['apply', '-f', '-'], service('s2'), iso);
    expect(s2.stderr).toContain('services "s2" is forbidden: exceeded quota: kplex-quota');
    expect((await tenant(['get', 'service', 's2'], undefined, iso)).stderr).toContain('NotFound');
    // ...and a pod the tenant's own controllers make stays Pending with an event telling why.
    const more = `apiVersion: apps/v1
kind: Deployment
metadata: {name: more}
spec:
  selector: {matchLabels: {app: more}}
  template:
    metadata: {labels: {app: more}}
    spec: {containers: [{name: busybox, image: busybox}], ${simulated}}
`;
    expect((await tenant(['apply', '-f', '-'], more, iso)).code).toBe(0);
    await eventually(async () => {
      const r = await tenant(['get', 'events', '--field-selector', 'reason=HostRefused,involvedObject.kind=Pod', '-o', 'jsonpath={.items[*].message}'], undefined, iso);
      return r.stdout.includes('the host cluster refused it: pods "more-') && r.stdout.includes('exceeded quota: kplex-quota') ? true : undefined;
    }, 30_000, 'a HostRefused event on the Deployment\'s pod');
    expect((await host(['-n', 'kplex-iso', 'get', 'pods', '-o', 'name'])).stdout.trim().split('\n')).toEqual([`pod/${twinOf('plain')}`]);

    // Lifting isolation (the control plane restarts with its data) lifts it on both sides, quota included.
    const values = path.join(dir, 'iso-values.yaml');
    writeFileSync(values, 'isolate: false\n');
    const up = await kplex(['create', 'iso', '--upgrade', '-f', values, '--context', 'kplex-host'], env);
    expect(up.code, up.stderr).toBe(0);
    await eventually(async () => ((await tenant(['apply', '-f', '-'], pod('priv', '{privileged: true}'), iso)).code === 0 ? true : undefined), 30_000, 'the privileged pod accepted');
    await eventually(async () => {
      const r = await host(['-n', 'kplex-iso', 'get', 'pod', twinOf('priv'), '-o', 'jsonpath={.status.phase}']);
      return r.stdout === 'Running' ? true : undefined;
    }, 60_000, 'the privileged pod running on the host');
    expect((await host(['-n', 'kplex-iso', 'get', 'resourcequota,networkpolicy', '-o', 'name'])).stdout.trim()).toBe('');
    await eventually(async () => {
      const r = await tenant(['get', 'pods', '-l', 'app=more', '-o', 'jsonpath={.items[*].status.phase}'], undefined, iso);
      return r.stdout === 'Running' ? true : undefined;
    }, 60_000, 'the pod the quota held back running');
    expect((await tenant(['get', 'pod', 'plain', '-o', 'name'], undefined, iso)).stdout.trim()).toBe('pod/plain');
    expect((await kplex(['delete', 'iso', '--context', 'kplex-host'], env)).code).toBe(0);
  });

  it('removes everything on the host when the tenant namespace is deleted', async () => {
    expect((await tenant(['delete', 'ns', 'demo-nginx'], undefined)).code).toBe(0);
    await eventually(async () => {
      const left = (await host(['-n', 'kplex-demo', 'get', 'pods,services,ingresses,configmaps', '-o', 'name'])).stdout;
      return left.includes('demo-nginx') ? undefined : true;
    }, 60_000, 'the host objects of demo-nginx to go');
  });
});
