import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findBinaries, PROGRAMS } from '../../src/controlplane/binaries.js';
import { freePort } from '../../src/controlplane/ports.js';
import { eventually, isolatedEnv, kplex, kubectl, kubectlPath, processesMentioning, run, tmpDir, type Run } from './helpers.js';

const sh = (cmd: string): string => spawnSync('sh', ['-c', cmd], { encoding: 'utf8' }).stdout;

/** What a real node could leave on the machine; each list must be empty once the cluster is down. */
function leftovers(dataDir: string): Record<string, string[]> {
  const lines = (s: string) => s.split('\n').filter(Boolean);
  return {
    processes: processesMentioning(dataDir),
    shims: lines(sh("pgrep -af '^[^ ]*containerd-shim'")),
    links: lines(sh('ip -o link show | grep -E "kplex|master kplex0" || true')),
    chains: lines(sh('(iptables-save; ip6tables-save) 2>/dev/null | grep -E "^:(KUBE-|CNI-)" || true')),
    ipsets: lines(sh('ipset list -n 2>/dev/null | grep -E "KUBE-(SRC|DST)-" || true')),
    mounts: readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(dataDir)),
    netns: existsSync('/run/netns') ? readdirSync('/run/netns').filter((n) => n.startsWith('cni-')) : [],
    cgroups: lines(sh('ls -d /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods 2>/dev/null || true')),
  };
}
const nothingLeft = (dataDir: string) => Object.fromEntries(Object.keys(leftovers(dataDir)).map((k) => [k, []]));

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
 */
describe('real nodes', () => {
  const dir = tmpDir('real-nodes');
  const dataDir = path.join(dir, 'data');
  const env = isolatedEnv(dir);
  const hostKc = path.join(dataDir, 'admin.kubeconfig');
  const tenantKc = path.join(dir, 'team.kubeconfig');
  const host = (args: string[], timeoutMs?: number) => kubectl(hostKc, args, { timeoutMs });
  const tenant = (args: string[], input?: string, timeoutMs?: number) => kubectl(tenantKc, args, { input, timeoutMs });
  const ok = (r: Run): string => {
    expect(r.code, r.stderr).toBe(0);
    return r.stdout;
  };
  const up = () => kplex(['dev', 'up', '--nodes', '1', '--simulated-nodes', '1', '--detach', '--gateway-port', String(gatewayPort), '--data-dir', dataDir], env, 300_000);
  let gatewayPort = 0;

  /** The log of a pod that ran to completion, once it has. */
  const finishedLogs = async (run: (args: string[]) => Promise<Run>, pod: string): Promise<string> => {
    await eventually(async () => ((await run(['get', 'pod', pod, '-o', 'jsonpath={.status.phase}'])).stdout === 'Succeeded' ? true : undefined), 90_000, `${pod} Succeeded`);
    return ok(await run(['logs', pod]));
  };

  beforeAll(async () => {
    gatewayPort = await freePort();
    const r = await up();
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).not.toContain('no real node');
    const c = await kplex(['create', 'team', '--connect=false', '--context', 'kplex-host'], env);
    expect(c.code, c.stderr).toBe(0);
    writeFileSync(tenantKc, (await kplex(['connect', 'team', '--print', '--context', 'kplex-host'], env)).stdout);
  });

  afterAll(async () => {
    await kplex(['dev', 'down', '--data-dir', dataDir], env);
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

  it('after SIGKILL of everything, dev up starts clean and runs the pods again', async () => {
    const state = JSON.parse(readFileSync(path.join(dataDir, 'state.json'), 'utf8')) as { pid: number };
    process.kill(state.pid, 'SIGKILL');
    for (const line of processesMentioning(dataDir)) {
      try {
        process.kill(Number(line.split(' ')[0]), 'SIGKILL');
      } catch {
        // already gone
      }
    }
    const r = await up();
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).not.toContain('no real node');
    // The tenant's control plane comes back (the gateway restarts it) and the pod's containers start again
    // in new sandboxes: exec reaches the new container.
    const pod = await eventually(async () => {
      const r = await tenant(['get', 'pods', '-l', 'app=nginx', '-o', 'jsonpath={.items[0].metadata.name}']);
      return r.code === 0 && r.stdout ? r.stdout : undefined;
    }, 120_000, 'the tenant back');
    const hostname = await eventually(async () => {
      const r = await tenant(['exec', pod, '--', 'hostname']);
      return r.code === 0 ? r.stdout.trim() : undefined;
    }, 120_000, 'exec in the restarted nginx');
    expect(hostname).toBe(pod);
    // One sandbox per running pod (the two nginx): the crashed run's are gone.
    const crictl = path.join(path.dirname(findBinaries().paths.kubectl), 'crictl');
    const count = (s: string) => s.split('\n').filter(Boolean).length;
    await eventually(async () => {
      const sandboxes = count(sh(`${crictl} --runtime-endpoint unix://${dataDir}/node/containerd.sock pods -q`));
      const running = count(ok(await host(['get', 'pods', '-A', '--field-selector=spec.nodeName=kplex-real-0,status.phase=Running', '-o', 'name'])));
      return sandboxes === 2 && running === 2 ? true : undefined;
    }, 60_000, 'one sandbox for each of the 2 running pods');
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
    ok(await tenant(['run', 'ticker', '--image=busybox', '--restart=Never', '--', 'sh', '-c', 'for i in $(seq 1 60); do echo tick $i; sleep 1; done']));
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
      spec: { containers: [{ name: 'main', image: 'busybox', stdin: true, command: ['sh', '-c', 'while read line; do echo "got $line"; done'] }] },
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
    const values = path.join(dir, 'secure.yaml');
    writeFileSync(values, 'isolate: true\npodSecurityStandard: restricted\n');
    const c = await kplex(['create', 'secure', '-f', values, '--connect=false', '--context', 'kplex-host'], env);
    expect(c.code, c.stderr).toBe(0);
    const secureKc = path.join(dir, 'secure.kubeconfig');
    writeFileSync(secureKc, (await kplex(['connect', 'secure', '--print', '--context', 'kplex-host'], env)).stdout);
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
        containers: [{ name: 'main', image: 'busybox', command: ['sleep', '3600'], securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } } }],
      },
    })));
    await eventually(async () => (ok(await secure(['get', 'pod', 'nonroot', '-o', 'jsonpath={.status.phase}'])) === 'Running' ? true : undefined), 90_000, 'nonroot Running');
    expect(ok(await secure(['exec', 'nonroot', '--', 'id', '-u'])).trim()).toBe('1000');
    ok(await secure(['delete', 'pod', 'nonroot', '--wait=false']));
  });

  it('dev down leaves no process, shim, link, iptables chain, ipset, mount, network namespace or pod cgroup', async () => {
    const r = await kplex(['dev', 'down', '--data-dir', dataDir], env);
    expect(r.code, r.stderr).toBe(0);
    expect(leftovers(dataDir)).toEqual(nothingLeft(dataDir));
  });
});

describe('where a real node cannot run', () => {
  it('says why in one line and starts the cluster with simulated nodes only', async () => {
    const dir = tmpDir('no-real-node');
    const dataDir = path.join(dir, 'data');
    const env = isolatedEnv(dir);
    // The control-plane programs without kubelet and the other node programs.
    const bin = path.join(dir, 'bin');
    mkdirSync(bin);
    const real = findBinaries();
    for (const p of PROGRAMS) symlinkSync(real.paths[p], path.join(bin, p));
    symlinkSync(path.join(path.dirname(real.paths.kwok), 'kwok-stages'), path.join(bin, 'kwok-stages'));
    const more = { KPLEX_BIN_DIR: bin, KPLEX_CACHE_DIR: path.join(dir, 'no-cache') };
    try {
      const r = await kplex(['dev', 'up', '--nodes', '1', '--simulated-nodes', '2', '--detach', '--no-gateway', '--data-dir', dataDir], { ...env, ...more });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^no real node: kubelet is not built in .*; pods run on simulated nodes only$/m);
      const nodes = await kubectl(path.join(dataDir, 'admin.kubeconfig'), ['get', 'nodes', '-o', 'json']);
      const items = (JSON.parse(nodes.stdout) as { items: { metadata: { name: string }; spec: { taints?: unknown[] } }[] }).items;
      // Without a real node, the simulated nodes take every pod: no kwok taint.
      expect(items.map((n) => n.metadata.name).sort()).toEqual(['kplex-node-0', 'kplex-node-1']);
      expect(JSON.stringify(items.map((n) => n.spec.taints ?? []))).not.toContain('kwok.x-k8s.io/node');
      // No node runs images: loading one says so.
      const load = await kplex(['dev', 'image', 'load', path.join(path.dirname(real.paths.kubectl), 'images', 'busybox.tar'), '--data-dir', dataDir], { ...env, ...more });
      expect([load.code, load.stderr]).toEqual([1, `kplex: the kplex dev cluster in ${dataDir} has no real node (its pods run on simulated nodes, which run no images); see why in: kplex dev up\n`]);
    } finally {
      await kplex(['dev', 'down', '--data-dir', dataDir], { ...env, ...more });
    }
    expect(processesMentioning(dataDir)).toEqual([]);
  });
});
