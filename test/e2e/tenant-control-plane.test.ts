import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findBinaries } from '../../src/controlplane/binaries.js';
import { LocalProvider } from '../../src/controlplane/local.js';
import { DEFAULT_SPEC } from '../../src/controlplane/provider.js';
import { kubeconfigFor, toYaml, writePrivateFile } from '../../src/k8s/kubeconfig.js';
import { startHostCluster, type HostCluster } from '../../src/dev/host-cluster.js';
import { eventually, kubectl, processesMentioning, tmpDir } from './helpers.js';

describe('local provider: tenant control planes beside the host', () => {
  const dir = tmpDir('tenant-cp');
  let host: HostCluster;
  let provider: LocalProvider;
  const kubeconfigs: Record<string, string> = {};

  beforeAll(async () => {
    const binaries = findBinaries();
    host = await startHostCluster({ dataDir: path.join(dir, 'host'), simulatedNodes: 1, binaries, unsafeNoFsync: true });
    provider = new LocalProvider({ etcdServers: host.etcdServers, baseDir: path.join(dir, 'tenants'), binaries });
    const [a, b] = await Promise.all([provider.ensure('team-a'), provider.ensure('team-b')]);
    for (const [name, ep] of [['team-a', a!], ['team-b', b!]] as const) {
      kubeconfigs[name] = path.join(dir, `${name}.kubeconfig`);
      writePrivateFile(kubeconfigs[name], toYaml(kubeconfigFor(name, ep.access)));
    }
  });

  afterAll(async () => {
    await provider?.close();
    await host?.stop();
  });

  it('serves kubectl with its own admin credential; its controller manager makes ReplicaSets', async () => {
    const kc = kubeconfigs['team-a']!;
    expect((await kubectl(kc, ['create', 'namespace', 'shop'])).code).toBe(0);
    const dep = await kubectl(kc, ['-n', 'shop', 'create', 'deployment', 'web', '--image=nginx', '--replicas=2']);
    expect(dep.code, dep.stderr).toBe(0);
    const rs = await eventually(async () => {
      const r = await kubectl(kc, ['-n', 'shop', 'get', 'replicasets', '-o', 'name']);
      return r.stdout.trim() || undefined;
    }, 60_000, 'a ReplicaSet from the tenant controller manager');
    expect(rs).toMatch(/^replicaset\.apps\/web-/);
    // Pods are created by the ReplicaSet controller but never scheduled: the tenant has no nodes.
    const nodes = await kubectl(kc, ['get', 'nodes', '-o', 'name']);
    expect(nodes.code, nodes.stderr).toBe(0);
    expect(nodes.stdout.trim()).toBe('');
  });

  it('serves no DRA or CertificateSigningRequest API; what kubectl and controllers use stays', async () => {
    const kc = kubeconfigs['team-a']!;
    const versions = await kubectl(kc, ['api-versions']);
    expect(versions.code, versions.stderr).toBe(0);
    const groups = versions.stdout.split('\n').map((v) => v.split('/')[0]);
    expect(groups).not.toContain('resource.k8s.io');
    expect(groups).not.toContain('certificates.k8s.io');
    for (const kept of ['apps', 'batch', 'policy', 'coordination.k8s.io', 'discovery.k8s.io', 'events.k8s.io', 'networking.k8s.io', 'storage.k8s.io', 'autoscaling', 'apiregistration.k8s.io', 'apiextensions.k8s.io', 'admissionregistration.k8s.io', 'rbac.authorization.k8s.io', 'scheduling.k8s.io', 'node.k8s.io', 'flowcontrol.apiserver.k8s.io']) {
      expect(groups, kept).toContain(kept);
    }
    const csr = await kubectl(kc, ['get', 'certificatesigningrequests']);
    expect(csr.code).not.toBe(0);
    expect(csr.stderr).toMatch(/the server doesn't have a resource type "certificatesigningrequests"/);
  });

  it("starts the API server with the spec's memory limit as GOMEMLIMIT, and restarts it when the limit changes", async () => {
    const limit = 160 * 1024 * 1024;
    await provider.ensure('team-c', { ...DEFAULT_SPEC, memoryLimits: { apiServer: limit } });
    const environ = (program: string): string[] => {
      const line = processesMentioning(path.join(dir, 'tenants', 'team-c') + '/').find((l) => l.split(' ')[1]?.endsWith(`/${program}`));
      expect(line, program).toBeDefined();
      return readFileSync(`/proc/${line!.split(' ')[0]}/environ`, 'utf8').split('\0');
    };
    expect(environ('kube-apiserver')).toContain(`GOMEMLIMIT=${limit}`);
    expect(environ('kube-controller-manager').some((e) => e.startsWith('GOMEMLIMIT='))).toBe(false);
    await provider.ensure('team-c', { ...DEFAULT_SPEC, memoryLimits: { apiServer: 2 * limit, controllerManager: 64 * 1024 * 1024 } });
    expect(environ('kube-apiserver')).toContain(`GOMEMLIMIT=${2 * limit}`);
    expect(environ('kube-controller-manager')).toContain(`GOMEMLIMIT=${64 * 1024 * 1024}`);
    await provider.destroy('team-c');
  });

  it('keeps tenants apart: what team-a creates does not exist in team-b or on the host', async () => {
    const b = await kubectl(kubeconfigs['team-b']!, ['get', 'namespace', 'shop']);
    expect(b.code).not.toBe(0);
    expect(b.stderr).toMatch(/NotFound|not found/);
    const hostKc = path.join(dir, 'host.kubeconfig');
    writePrivateFile(hostKc, toYaml(kubeconfigFor('host', host.access)));
    expect((await kubectl(hostKc, ['get', 'namespace', 'shop'])).code).not.toBe(0);
  });

  it("allocates Service IPs from the host's range", async () => {
    const kc = kubeconfigs['team-a']!;
    await kubectl(kc, ['-n', 'shop', 'create', 'service', 'clusterip', 'web', '--tcp=80:80']);
    const ip = (await kubectl(kc, ['-n', 'shop', 'get', 'service', 'web', '-o', 'jsonpath={.spec.clusterIP}'])).stdout;
    expect(ip).toMatch(/^10\.96\.\d+\.\d+$/);
  });

  it('destroy stops the processes and deletes the data; ensure() then starts an empty cluster', async () => {
    await provider.destroy('team-b');
    expect(processesMentioning(path.join(dir, 'tenants', 'team-b'))).toEqual([]);
    await provider.ensure('team-b');
    writePrivateFile(kubeconfigs['team-b']!, toYaml(kubeconfigFor('team-b', (await provider.ensure('team-b')).access)));
    const ns = await kubectl(kubeconfigs['team-b']!, ['get', 'namespaces', '-o', 'name']);
    expect(ns.stdout).not.toContain('shop');
  });
});
