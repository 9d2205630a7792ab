import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { beforeAll, describe, expect, it } from 'vitest';
import { certificateValidity } from '../../src/controlplane/pki.js';
import type { CertificateStatus } from '../../src/controlplane/provider.js';
import { eventually, kplex, kubectl, kubectlPath, processesMentioning, useSharedHost, type Run } from './helpers.js';

const TENANT = 'certs';
const DAY = 86_400_000;

/**
 * Certificates that do not expire under the tenant: `kplex certs check` shows each one's expiry, and a
 * renewal (`kplex certs rotate`, the same path as the automatic one at two thirds of a lifetime) changes
 * every leaf while clients keep working: a watch opened before it goes on, the API server serves its
 * new certificate without a restart, the controller manager and DNS server run with their new ones.
 */
describe('certificate expiry and renewal', () => {
  const shared = useSharedHost('certificates', [TENANT]);
  const pkiDir = () => path.join(shared.dataDir, 'tenants', TENANT, 'pki');
  let tenant = '';
  const as = (args: string[]): Promise<Run> => kubectl(tenant, args);
  const check = async (): Promise<CertificateStatus[]> => {
    const r = await kplex(['certs', 'check', TENANT, '-o', 'json', '--context', 'kplex-host'], shared.env);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as CertificateStatus[];
  };
  const pidOf = (program: string): string | undefined =>
    processesMentioning(`/tenants/${TENANT}/`).find((l) => l.split(' ')[1]?.endsWith(`/${program}`))?.split(' ')[0];
  /** The certificate the tenant's API server presents now. */
  const servedCertificate = async (): Promise<string> => {
    const server = /server: (\S+)/.exec(readFileSync(path.join(shared.dataDir, 'tenants', TENANT, 'admin.kubeconfig'), 'utf8'))?.[1];
    if (!server) throw new Error("no server in the tenant's admin kubeconfig");
    const url = new URL(server);
    return new Promise((resolve, reject) => {
      const s = tls.connect({ host: url.hostname, port: Number(url.port), rejectUnauthorized: false }, () => {
        resolve(s.getPeerCertificate().raw.toString('base64'));
        s.end();
      });
      s.once('error', reject);
    });
  };
  const fileCertificate = (name: string): string => readFileSync(path.join(pkiDir(), `${name}.crt`), 'utf8').replace(/-----[A-Z ]+-----|\s/g, '');

  beforeAll(async () => {
    tenant = await shared.createTenant(TENANT);
  });

  it('check lists every certificate of the control plane and the gateway, with leaves of a year renewed from eight months on', async () => {
    const certs = await check();
    const names = certs.map((c) => c.name);
    expect(names).toEqual(expect.arrayContaining(['ca', 'front-proxy-ca', 'apiserver', 'admin', 'front-proxy-client', 'dns', 'gateway (serving)']));
    for (const leaf of certs.filter((c) => ['apiserver', 'admin', 'front-proxy-client', 'dns'].includes(c.name))) {
      const life = Date.parse(leaf.notAfter) - Date.parse(leaf.notBefore);
      expect(life, leaf.name).toBeGreaterThan(360 * DAY);
    }
    const table = await kplex(['certs', 'check', TENANT, '--context', 'kplex-host'], shared.env);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/^CERTIFICATE\s+EXPIRES\s+REMAINING\s+RENEWED/);
    expect(table.stdout).toMatch(/\napiserver\s+\S+Z\s+36\dd\s+automatically, from \d{4}-\d\d-\d\d/);
    expect(table.stdout).toMatch(/\nca\s+\S+Z\s+\d+d\s+no \(a CA\)/);
  });

  it('rotate renews every leaf while a watch through the gateway goes on; the CAs stay; the new credentials work', async () => {
    const before = await check();
    const pids = { kcm: pidOf('kube-controller-manager'), dns: pidOf('coredns'), apiserver: pidOf('kube-apiserver') };
    expect(pids.kcm && pids.dns && pids.apiserver).toBeTruthy();
    expect(await servedCertificate()).toEqual(fileCertificate('apiserver'));

    const watch = spawn(kubectlPath(), ['--kubeconfig', tenant, 'get', 'configmaps', '-w', '-o', 'name'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let seen = '';
    watch.stdout.on('data', (d: Buffer) => (seen += d.toString()));
    try {
      await eventually(async () => (seen.includes('configmap/kube-root-ca.crt') ? true : undefined), 30_000, 'the watch to list');
      // Certificate times have whole seconds: a rotation asked for in the second the tenant was made would renew nothing.
      await new Promise((r) => setTimeout(r, 1100));
      const rotated = await kplex(['certs', 'rotate', TENANT, '--context', 'kplex-host'], shared.env);
      expect(rotated.code, rotated.stderr).toBe(0);
      expect(rotated.stdout).toMatch(/renewed the certificates of tenant certs/);

      const after = await check();
      for (const name of ['apiserver', 'admin', 'front-proxy-client', 'dns']) {
        const [b, a] = [before, after].map((l) => l.find((c) => c.name === name)!) as [CertificateStatus, CertificateStatus];
        expect(Date.parse(a.notBefore), name).toBeGreaterThan(Date.parse(b.notBefore));
      }
      for (const name of ['ca', 'front-proxy-ca']) expect(after.find((c) => c.name === name)).toEqual(before.find((c) => c.name === name));

      // The API server was not restarted; it serves the new certificate it read from its file.
      expect(pidOf('kube-apiserver')).toEqual(pids.apiserver);
      await eventually(async () => ((await servedCertificate()) === fileCertificate('apiserver') ? true : undefined), 90_000, 'the API server to serve its renewed certificate');
      // The components that read their credential at start were restarted with the new one.
      expect(pidOf('kube-controller-manager')).not.toEqual(pids.kcm);
      expect(pidOf('coredns')).not.toEqual(pids.dns);

      // The watch opened before the rotation still delivers.
      expect((await as(['create', 'configmap', 'after-rotation'])).code).toBe(0);
      await eventually(async () => (seen.includes('configmap/after-rotation') ? true : undefined), 30_000, 'the old watch to see a new object');
      expect(watch.exitCode).toBeNull();
    } finally {
      watch.kill();
    }

    // The restarted controller manager works: a Deployment gets its ReplicaSet.
    expect((await as(['create', 'deployment', 'web', '--image=nginx', '--replicas=0'])).code).toBe(0);
    await eventually(async () => {
      const r = await as(['get', 'replicasets', '-l', 'app=web', '-o', 'name']);
      return r.code === 0 && r.stdout.includes('replicaset.apps/web-') ? true : undefined;
    }, 60_000, 'a ReplicaSet made by the restarted controller manager');
    // The gateway's kubeconfig Secret holds the new credential, and requests use it.
    const admin = certificateValidity(readFileSync(path.join(pkiDir(), 'admin.crt'), 'utf8'));
    expect(admin.notBefore.getTime()).toBeGreaterThan(Date.parse(before.find((c) => c.name === 'admin')!.notBefore));
    expect((await as(['get', 'namespaces'])).code).toBe(0);
  });

  it('bad input gets one clear line', async () => {
    const missing = await kplex(['certs', 'check', 'no-such-tenant', '--context', 'kplex-host'], shared.env);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr.trim()).toBe('kplex: tenant "no-such-tenant" not found');
    const invalid = await kplex(['certs', 'rotate', 'Bad_Name', '--context', 'kplex-host'], shared.env);
    expect(invalid.code).not.toBe(0);
    expect(invalid.stderr.trim().split('\n')).toHaveLength(1);
  });
});
