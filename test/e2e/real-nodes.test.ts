import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { eventually, kplex, kubectl, kubectlPath, run, useSharedHost, type Run } from './helpers.js';

const sh = (cmd: string): string => spawnSync('sh', ['-c', cmd], { encoding: 'utf8' }).stdout;

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** One layer with the machine's static busybox as /bin/sh: an uncompressed tar, built once per folder. */
function busyboxLayer(dir: string): Buffer {
  const root = path.join(dir, 'layer-root');
  if (!existsSync(root)) {
    mkdirSync(path.join(root, 'bin'), { recursive: true });
    copyFileSync('/bin/busybox', path.join(root, 'bin', 'busybox'));
    symlinkSync('busybox', path.join(root, 'bin', 'sh'));
  }
  execFileSync('tar', ['-C', root, '--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner', '-cf', path.join(dir, 'layer.tar'), '.']);
  return readFileSync(path.join(dir, 'layer.tar'));
}

const imageConfig = (layer: Buffer, message: string) =>
  Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['sh', '-c', `echo ${message}`] }, rootfs: { type: 'layers', diff_ids: [`sha256:${sha256(layer)}`] } }));

/** Writes files into a fresh folder and tars them: an image archive as the tools that export images write it. */
function tarOf(dir: string, name: string, files: Record<string, Buffer | string>): string {
  const folder = path.join(dir, `${name}.d`);
  rmSync(folder, { recursive: true, force: true });
  for (const [file, data] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(folder, file)), { recursive: true });
    writeFileSync(path.join(folder, file), data);
  }
  execFileSync('tar', ['-C', folder, '-cf', path.join(dir, `${name}.tar`), ...Object.keys(files)]);
  return path.join(dir, `${name}.tar`);
}

/** An OCI image layout naming its image only by the OCI ref name, as `skopeo copy … oci-archive:FILE:REF` does. */
function ociArchive(dir: string, ref: string, message: string): string {
  const layer = busyboxLayer(dir);
  const gz = gzipSync(layer);
  const config = imageConfig(layer, message);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${sha256(config)}`, size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${sha256(gz)}`, size: gz.length }],
  }));
  const index = { schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${sha256(manifest)}`, size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': ref } }] };
  return tarOf(dir, 'oci', {
    'oci-layout': '{"imageLayoutVersion":"1.0.0"}',
    'index.json': JSON.stringify(index),
    [`blobs/sha256/${sha256(gz)}`]: gz,
    [`blobs/sha256/${sha256(config)}`]: config,
    [`blobs/sha256/${sha256(manifest)}`]: manifest,
  });
}

/** A `docker save` archive of the classic format: manifest.json, the config, each layer an uncompressed tar. */
function dockerArchive(dir: string, repoTag: string, message: string): string {
  const layer = busyboxLayer(dir);
  const config = imageConfig(layer, message);
  const configFile = `${sha256(config)}.json`;
  const layerFile = `${sha256(layer)}/layer.tar`;
  return tarOf(dir, 'docker', {
    'manifest.json': JSON.stringify([{ Config: configFile, RepoTags: [repoTag], Layers: [layerFile] }]),
    [configFile]: config,
    [layerFile]: layer,
  });
}

/**
 * The embedded cluster with a real node: kubelet, containerd, runc, the CNI bridge, kube-proxy and CoreDNS
 * run real containers from locally built images, and everything the gateway routes to the host works.
 * On the shared host cluster; what a crash and `dev down` do to a real node is real-node-lifecycle.test.ts.
 */
describe('real nodes', () => {
  const shared = useSharedHost('real-nodes', ['team', 'secure']);
  const { dir, dataDir, env } = shared;
  let tenantKc = '';
  /** An isolated tenant with pod security "restricted". */
  let secureKc = '';
  const host = (args: string[], timeoutMs?: number) => kubectl(shared.hostKubeconfig, args, { timeoutMs });
  const tenant = (args: string[], input?: string, timeoutMs?: number) => kubectl(tenantKc, args, { input, timeoutMs });
  const ok = (r: Run): string => {
    expect(r.code, r.stderr).toBe(0);
    return r.stdout;
  };

  /** The log of a pod that ran to completion, once it has. */
  const finishedLogs = async (run: (args: string[]) => Promise<Run>, pod: string): Promise<string> => {
    await eventually(async () => ((await run(['get', 'pod', pod, '-o', 'jsonpath={.status.phase}'])).stdout === 'Succeeded' ? true : undefined), 90_000, `${pod} Succeeded`);
    return ok(await run(['logs', pod]));
  };

  beforeAll(async () => {
    expect(ok(await host(['get', 'node', 'kplex-real-0', '-o', 'name'])).trim()).toBe('node/kplex-real-0');
    [tenantKc, secureKc] = await Promise.all([shared.createTenant('team'), shared.createTenant('secure', { isolate: true, podSecurityStandard: 'restricted' })]);
  });

  it('runs a tenant nginx; port-forward through the gateway gets its welcome page, logs show the request', async () => {
    ok(await tenant(['create', 'deployment', 'nginx', '--image=nginx', '--port=80']));
    ok(await tenant(['rollout', 'status', 'deployment/nginx', '--timeout=120s'], undefined, 130_000));
    const pod = ok(await tenant(['get', 'pods', '-l', 'app=nginx', '-o', 'jsonpath={.items[0].metadata.name}']));

    const pf = spawn(kubectlPath(), ['--kubeconfig', tenantKc, 'port-forward', `pod/${pod}`, ':80'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const localPort = await new Promise<number>((resolve, reject) => {
        let out = '';
        pf.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /Forwarding from 127\.0\.0\.1:(\d+)/.exec(out);
          if (m) resolve(Number(m[1]));
        });
        pf.once('exit', (code) => reject(new Error(`port-forward exited with ${code}`)));
      });
      const page = await (await fetch(`http://127.0.0.1:${localPort}/`, { headers: { 'user-agent': 'kplex-e2e' } })).text();
      expect(page).toContain('Welcome to nginx!');
    } finally {
      pf.kill();
    }
    const logs = await eventually(async () => {
      const l = ok(await tenant(['logs', pod]));
      return l.includes('"GET / HTTP/1.1" 200') ? l : undefined;
    }, 30_000, 'the access-log line');
    expect(logs).toContain('kplex-e2e');
  });

  it('execs in the container: hostname prints the pod name', async () => {
    const pod = ok(await tenant(['get', 'pods', '-l', 'app=nginx', '-o', 'jsonpath={.items[0].metadata.name}']));
    const r = await tenant(['exec', pod, '--', 'hostname']);
    expect(ok(r).trim()).toBe(pod);
  });

  it('a busybox pod fetches a Service of another namespace by its ClusterIP', async () => {
    ok(await tenant(['create', 'namespace', 'web']));
    ok(await tenant(['-n', 'web', 'create', 'deployment', 'site', '--image=nginx', '--port=80']));
    ok(await tenant(['-n', 'web', 'expose', 'deployment', 'site', '--port=80']));
    ok(await tenant(['-n', 'web', 'rollout', 'status', 'deployment/site', '--timeout=120s'], undefined, 130_000));
    const ip = ok(await tenant(['-n', 'web', 'get', 'service', 'site', '-o', 'jsonpath={.spec.clusterIP}']));
    expect(ip).toMatch(/^10\.96\./);
    ok(await tenant(['run', 'fetch', '--image=busybox', '--restart=Never', '--', 'wget', '-q', '-O', '-', `http://${ip}/`]));
    expect(await finishedLogs(tenant, 'fetch')).toContain('Welcome to nginx!');
  });

  it('a host pod resolves kubernetes.default.svc.cluster.local through the cluster DNS', async () => {
    ok(await host(['run', 'lookup', '--image=busybox', '--restart=Never', '--', 'nslookup', 'kubernetes.default.svc.cluster.local']));
    expect(await finishedLogs(host, 'lookup')).toMatch(/Address:\s+10\.96\.0\.1\b/);
    ok(await host(['delete', 'pod', 'lookup', '--wait=false']));
  });

  it('the real node and the simulated one heartbeat by Leases that are renewed', async () => {
    const renewed = async (): Promise<Map<string, number>> => {
      const leases = JSON.parse(ok(await host(['get', 'leases', '-n', 'kube-node-lease', '-o', 'json']))) as { items: { metadata: { name: string }; spec: { renewTime: string } }[] };
      return new Map(leases.items.map((l) => [l.metadata.name, Date.parse(l.spec.renewTime)]));
    };
    const before = await renewed();
    const nodes = ['kplex-real-0', 'kplex-node-0'];
    for (const n of nodes) expect(before.get(n), n).toBeGreaterThan(0);
    // kubelet and kwok both renew a 40-second Lease every 10 seconds.
    await eventually(async () => {
      const now = await renewed();
      return nodes.every((n) => now.get(n)! > before.get(n)!) ? true : undefined;
    }, 30_000, 'renewed node Leases');
  });

  it('dev image load imports an OCI layout and a docker save archive; tenant pods run them by their names', async () => {
    const oci = ociArchive(dir, 'example.com/team/hello:1', 'hello from a loaded image');
    const docker = dockerArchive(dir, 'hello:latest', 'hello from a docker archive');
    const load = (file: string) => kplex(['dev', 'image', 'load', file, '--data-dir', dataDir], env);
    expect(ok(await load(oci)).trim()).toBe('loaded example.com/team/hello:1');
    expect(ok(await load(docker)).trim()).toBe('loaded docker.io/library/hello:latest');

    ok(await tenant(['run', 'hello-oci', '--image=example.com/team/hello:1', '--restart=Never']));
    expect(await finishedLogs(tenant, 'hello-oci')).toBe('hello from a loaded image\n');
    // Tag latest: kubelet pulls on every start, from the node's registry mirror, which serves what was loaded.
    ok(await tenant(['run', 'hello-docker', '--image=hello', '--restart=Never']));
    expect(await finishedLogs(tenant, 'hello-docker')).toBe('hello from a docker archive\n');
    expect(ok(await tenant(['get', 'pod', 'hello-docker', '-o', 'jsonpath={.spec.containers[0].imagePullPolicy}']))).toBe('Always');
  });

  it('dev image load says in one line what is wrong: no file, not an archive, no cluster', async () => {
    const load = (file: string, data = dataDir) => kplex(['dev', 'image', 'load', file, '--data-dir', data], env);
    const missing = await load(path.join(dir, 'nope.tar'));
    expect([missing.code, missing.stderr]).toEqual([1, `kplex: ${path.join(dir, 'nope.tar')}: no such file\n`]);
    writeFileSync(path.join(dir, 'notes.txt'), 'not an image\n'.repeat(100));
    const text = await load(path.join(dir, 'notes.txt'));
    expect([text.code, text.stderr]).toEqual([1, `kplex: ${path.join(dir, 'notes.txt')} is not a tar archive\n`]);
    const noCluster = await load(ociArchive(dir, 'example.com/team/hello:1', 'x'), path.join(dir, 'no-cluster'));
    expect([noCluster.code, noCluster.stderr]).toEqual([3, `kplex: no kplex dev cluster is running from ${path.join(dir, 'no-cluster')}; start one with: kplex dev up\n`]);
  });

  it('a pod whose image is nowhere gets ErrImagePull and an event saying how to load it, in the tenant and on the host', async () => {
    ok(await tenant(['run', 'nope', '--image=example.com/team/nope:1', '--restart=Never']));
    const reason = await eventually(async () => {
      const r = ok(await tenant(['get', 'pod', 'nope', '-o', 'jsonpath={.status.containerStatuses[0].state.waiting.reason}']));
      return ['ErrImagePull', 'ImagePullBackOff'].includes(r) ? r : undefined;
    }, 90_000, 'the pull to fail');
    expect(reason).toMatch(/ErrImagePull|ImagePullBackOff/);
    const hint = 'example.com/team/nope:1 is not on this node and the embedded cluster has no registry access; load it with: kplex dev image load FILE.tar';
    await eventually(async () => (ok(await tenant(['describe', 'pod', 'nope'])).includes(hint) ? true : undefined), 60_000, 'the event in the tenant');
    const hostPod = ok(await host(['get', 'pods', '-A', '-o', 'jsonpath={range .items[?(@.spec.containers[0].image=="example.com/team/nope:1")]}{.metadata.namespace}/{.metadata.name}{end}']));
    const [ns, name] = hostPod.split('/') as [string, string];
    expect(ok(await host(['describe', 'pod', '-n', ns, name]))).toContain(hint);
    ok(await tenant(['delete', 'pod', 'nope', '--wait=false']));
  });

  it('the node registry mirror serves a loaded image from containerd, and no file by a digest that is a path', async () => {
    const mirror = /endpoint = \["(http:\/\/127\.0\.0\.1:\d+)"\]/.exec(readFileSync(path.join(dataDir, 'node', 'containerd.toml'), 'utf8'))![1]!;
    const index = JSON.parse(sh(`tar -xOf ${ociArchive(dir, 'example.com/team/hello:1', 'hello from a loaded image')} index.json`)) as { manifests: { digest: string }[] };
    const manifest = await fetch(`${mirror}/v2/team/hello/manifests/1?ns=example.com`);
    expect([manifest.status, manifest.headers.get('docker-content-digest')]).toEqual([200, index.manifests[0]!.digest]);
    const configDigest = ((await manifest.json()) as { config: { digest: string } }).config.digest;
    const config = await fetch(`${mirror}/v2/team/hello/blobs/${configDigest}?ns=example.com`);
    expect(config.status).toBe(200);
    expect(await config.text()).toContain('echo hello from a loaded image');
    for (const attack of ['sha256:..%2f..%2f..%2fcontainerd.toml', 'sha256:../../../containerd.toml', `sha256:${'0'.repeat(63)}/`, 'sha256:%2e%2e']) {
      const r = await fetch(`${mirror}/v2/team/hello/blobs/${attack}`);
      expect(r.status, attack).toBe(404);
      expect(await r.text(), attack).not.toContain('[grpc]');
    }
  });

  it('logs -f streams lines as the container prints them; logs --previous shows the restarted container', async () => {
    ok(await tenant(['run', 'ticker', '--image=busybox', '--restart=Never', `--overrides=${JSON.stringify({ spec: { terminationGracePeriodSeconds: 1 } })}`, '--', 'sh', '-c', 'for i in $(seq 1 60); do echo tick $i; sleep 1; done']));
    await eventually(async () => (ok(await tenant(['get', 'pod', 'ticker', '-o', 'jsonpath={.status.phase}'])) === 'Running' ? true : undefined), 60_000, 'ticker Running');
    const follow = spawn(kubectlPath(), ['--kubeconfig', tenantKc, 'logs', '-f', 'ticker'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      follow.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const ticks = () => [...out.matchAll(/tick (\d+)/g)].map((m) => Number(m[1]));
      const first = await eventually(async () => ticks().at(-1), 30_000, 'a first line');
      // A later line arrives on the same stream, printed after the follow began.
      const later = await eventually(async () => ((ticks().at(-1) ?? 0) >= first + 2 ? ticks().at(-1) : undefined), 30_000, 'a later line');
      expect(later).toBeGreaterThan(first);
      expect(follow.exitCode).toBeNull();
    } finally {
      follow.kill();
    }
    ok(await tenant(['delete', 'pod', 'ticker', '--wait=false']));

    // Each run counts itself in a volume that outlives the container, prints its number and fails.
    ok(await tenant(['apply', '-f', '-'], JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'restarts' },
      spec: {
        volumes: [{ name: 'count', emptyDir: {} }],
        containers: [{ name: 'main', image: 'busybox', volumeMounts: [{ name: 'count', mountPath: '/count' }], command: ['sh', '-c', 'n=$(($(cat /count/n 2>/dev/null || echo 0) + 1)); echo $n > /count/n; echo "run $n"; sleep 1; exit 1'] }],
      },
    })));
    await eventually(async () => (Number(ok(await tenant(['get', 'pod', 'restarts', '-o', 'jsonpath={.status.containerStatuses[0].restartCount}']))) >= 1 ? true : undefined), 90_000, 'a restart');
    const previous = ok(await tenant(['logs', 'restarts', '--previous']));
    expect(previous).toMatch(/^run \d+\n$/);
    expect(Number(/\d+/.exec(previous)![0])).toBeGreaterThanOrEqual(1);
    ok(await tenant(['delete', 'pod', 'restarts', '--wait=false']));
  });

  it('exec -it gives the command a terminal; attach -i talks to the container stdin', async () => {
    ok(await tenant(['apply', '-f', '-'], JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'talk' },
      // sh as PID 1 ignores SIGTERM: a short grace period keeps the tenant's deletion from waiting 30 s for it.
      spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'main', image: 'busybox', stdin: true, command: ['sh', '-c', 'while read line; do echo "got $line"; done'] }] },
    })));
    await eventually(async () => (ok(await tenant(['get', 'pod', 'talk', '-o', 'jsonpath={.status.phase}'])) === 'Running' ? true : undefined), 60_000, 'talk Running');

    // script(1) runs kubectl on a pseudo-terminal, as a person's shell would; the terminal shows kubectl's
    // stderr too (kubectl 1.32 may log a websocket line there), and script's end of input echoes as ^@.
    // The pause lets kubectl set up its streams before the first output.
    const exec = await run('script', ['-qec', `${kubectlPath()} --kubeconfig ${tenantKc} exec -it talk -- sh -c 'sleep 1; tty; hostname'`, '/dev/null'], {}, 60_000);
    expect(exec.code, exec.stderr + exec.stdout).toBe(0);
    expect(exec.stdout).toMatch(/(^|\n|\^@)\/dev\/pts\/\d+\r\ntalk\r\n$/);

    const attach = spawn(kubectlPath(), ['--kubeconfig', tenantKc, 'attach', '-i', 'talk'], { stdio: ['pipe', 'pipe', 'pipe'] });
    try {
      let out = '';
      attach.stdout.on('data', (d: Buffer) => (out += d.toString()));
      // The stream opens asynchronously: send until the answer comes.
      await eventually(async () => {
        attach.stdin.write('hello\n');
        await new Promise((r) => setTimeout(r, 500));
        return out.includes('got hello') ? true : undefined;
      }, 30_000, 'the echo');
    } finally {
      attach.kill();
    }
    ok(await tenant(['delete', 'pod', 'talk', '--wait=false']));
  });

  it('a restricted pod in an isolated tenant runs as its non-root user; a root pod is refused', async () => {
    const secure = (args: string[], input?: string) => kubectl(secureKc, args, { input });

    const refused = await secure(['run', 'root', '--image=busybox', '--', 'sleep', '3600']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('violates PodSecurity "restricted');
    ok(await secure(['apply', '-f', '-'], JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'nonroot' },
      spec: {
        securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, seccompProfile: { type: 'RuntimeDefault' } },
        terminationGracePeriodSeconds: 1,
        containers: [{ name: 'main', image: 'busybox', command: ['sleep', '3600'], securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } } }],
      },
    })));
    await eventually(async () => (ok(await secure(['get', 'pod', 'nonroot', '-o', 'jsonpath={.status.phase}'])) === 'Running' ? true : undefined), 90_000, 'nonroot Running');
    expect(ok(await secure(['exec', 'nonroot', '--', 'id', '-u'])).trim()).toBe('1000');
    ok(await secure(['delete', 'pod', 'nonroot', '--wait=false']));
  });
});
