import { isIP } from 'node:net';
import tls from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeClient } from '../k8s/client.js';
import { certificateValidity, issuedBefore, renewalDue } from '../controlplane/pki.js';
import type { CertificateStatus } from '../controlplane/provider.js';
import { readGatewayInfo } from '../tenants/system.js';
import { ANNOTATIONS, tenantsRef, type Tenant } from '../tenants/resources.js';
import { durationFlag, tenantName } from './connect.js';
import { CliError } from './errors.js';
import { withHost } from './host.js';

/** CAs are not renewed by kplex: every certificate and kubeconfig trusting them would have to change at once. */
const isAuthority = (name: string): boolean => name === 'ca' || name.endsWith('-ca');

async function tenantOf(host: KubeClient, name: string): Promise<Tenant> {
  const tenant = await host.find<Tenant>(tenantsRef(name));
  if (!tenant) throw new CliError(`tenant "${name}" not found`);
  return tenant;
}

/** The serving certificate the gateway presents now, read by a TLS handshake with its published endpoint. */
async function gatewayCertificate(endpoint: string, ca: string): Promise<CertificateStatus> {
  const url = new URL(endpoint);
  const pem = await new Promise<string>((resolve, reject) => {
    const socket = tls.connect({ host: url.hostname, port: Number(url.port || 443), ca, servername: isIP(url.hostname) ? undefined : url.hostname, timeout: 10_000 }, () => {
      const raw = socket.getPeerCertificate().raw;
      socket.end();
      resolve(`-----BEGIN CERTIFICATE-----\n${raw.toString('base64')}\n-----END CERTIFICATE-----\n`);
    });
    socket.once('timeout', () => socket.destroy(new Error(`no TLS answer from the gateway at ${endpoint} within 10s`)));
    socket.once('error', reject);
  });
  const v = certificateValidity(pem);
  return { name: 'gateway (serving)', notBefore: v.notBefore.toISOString(), notAfter: v.notAfter.toISOString() };
}

const days = (ms: number): string => (ms < 0 ? 'EXPIRED' : ms < 2 * 86_400_000 ? `${Math.floor(ms / 3_600_000)}h` : `${Math.floor(ms / 86_400_000)}d`);

/** When each certificate is renewed, in words: from a date for leaves, never for CAs. */
function renewsText(c: CertificateStatus, now: Date): string {
  if (isAuthority(c.name)) return 'no (a CA)';
  if (c.name === 'gateway (serving)') return 'by whoever provides the gateway its certificate files';
  const v = { notBefore: new Date(c.notBefore), notAfter: new Date(c.notAfter) };
  if (renewalDue(v, now)) return 'due: at the next reconcile';
  const at = new Date(v.notBefore.getTime() + ((v.notAfter.getTime() - v.notBefore.getTime()) * 2) / 3);
  return `automatically, from ${at.toISOString().slice(0, 10)}`;
}

export async function check(name: string, f: { output: string; context?: string }): Promise<void> {
  if (f.output !== 'table' && f.output !== 'json') throw new CliError(`--output must be table or json; got "${f.output}"`);
  const tenant = tenantName(name);
  const certificates = await withHost(f.context, async (host) => {
    const t = await tenantOf(host, tenant);
    const own = t.status?.certificates;
    if (!own?.length) throw new CliError(`tenant "${tenant}" has reported no certificates yet (status ${t.status?.phase ?? 'Pending'}); is its gateway running?`);
    const gateway = await readGatewayInfo(host);
    return [...own, await gatewayCertificate(gateway.endpoint, gateway.ca)];
  });
  if (f.output === 'json') {
    console.log(JSON.stringify(certificates, null, 2));
    return;
  }
  const now = new Date();
  const table = [
    ['CERTIFICATE', 'EXPIRES', 'REMAINING', 'RENEWED'],
    ...certificates.map((c) => [c.name, c.notAfter.replace(/\.\d+Z$/, 'Z'), days(Date.parse(c.notAfter) - now.getTime()), renewsText(c, now)]),
  ];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
  for (const r of table) console.log(r.map((c, i) => c.padEnd(widths[i]! + 3)).join('').trimEnd());
}

/** Asks the tenant controller to make every leaf certificate of the tenant again now, and waits until it has. */
export async function rotate(name: string, f: { timeout: string; context?: string }): Promise<void> {
  const tenant = tenantName(name);
  const timeoutMs = durationFlag('--timeout', f.timeout) * 1000;
  const asked = new Date();
  await withHost(f.context, async (host) => {
    await tenantOf(host, tenant);
    await host.patch(tenantsRef(tenant), { metadata: { annotations: { [ANNOTATIONS.rotateCertificates]: asked.toISOString() } } });
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const leaves = ((await tenantOf(host, tenant)).status?.certificates ?? []).filter((c) => !isAuthority(c.name));
      const renewed = leaves.length > 0 && leaves.every((c) => !issuedBefore({ notBefore: new Date(c.notBefore), notAfter: new Date(c.notAfter) }, asked));
      if (renewed) break;
      if (Date.now() > deadline) throw new CliError(`the certificates of tenant "${tenant}" were not renewed within ${timeoutMs / 1000}s; is its gateway running?`);
      await sleep(500);
    }
  });
  console.log(`renewed the certificates of tenant ${tenant}; the API server kept serving, the controller manager and DNS server restarted with theirs`);
}
