import { describe, expect, it } from 'vitest';
import { configFiles, controlPlaneStatefulSet, UPSTREAM_IMAGES } from '../../src/controlplane/cluster.js';
import { podSecurityFor, UNRESTRICTED } from '../../src/controlplane/pod-security.js';
import { controlPlaneService } from '../../src/controller/control-plane-service.js';

const pki = { 'ca.crt': 'CA', 'admin.crt': 'ADMIN', 'admin.key': 'ADMINKEY', 'dns.crt': 'DNS', 'dns.key': 'DNSKEY' };

interface Container { name: string; image: string; args: string[]; securityContext: Record<string, unknown> }
interface Sts {
  metadata: { namespace: string };
  spec: {
    selector: { matchLabels: Record<string, string> };
    template: { metadata: { labels: Record<string, string>; annotations: Record<string, string> }; spec: { securityContext: Record<string, unknown>; containers: Container[]; automountServiceAccountToken: boolean } };
    volumeClaimTemplates: { spec: { storageClassName?: string } }[];
  };
}

const sts = (files: Record<string, string>, storageClass?: string) => controlPlaneStatefulSet('t1', files, UPSTREAM_IMAGES, storageClass, { 'kplex.dev/tenant': 't1' }) as unknown as Sts;
const container = (s: Sts, name: string) => s.spec.template.spec.containers.find((c) => c.name === name)!;

describe('the control plane of provider cluster', () => {
  it('runs in the tenant host namespace as the restricted pod security standard allows, with no host token mounted', () => {
    const s = sts(configFiles('t1', pki, { podSecurity: UNRESTRICTED }, '10.96.0.10'));
    expect(s.metadata.namespace).toBe('kplex-t1');
    expect(s.spec.template.spec.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    for (const c of s.spec.template.spec.containers) expect(c.securityContext, c.name).toEqual({ allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    expect(s.spec.template.spec.automountServiceAccountToken).toBe(false);
    expect(s.spec.selector.matchLabels).toEqual({ 'kplex.dev/control-plane': 't1' });
    expect(s.spec.template.metadata.labels).toMatchObject(s.spec.selector.matchLabels);
  });

  it('the API server listens on every pod address, advertises the pod IP and stores in the pod etcd under the tenant prefix', () => {
    const args = container(sts(configFiles('t1', pki, { podSecurity: UNRESTRICTED }, '10.96.0.10')), 'kube-apiserver').args;
    expect(args).toEqual(expect.arrayContaining(['--bind-address=0.0.0.0', '--advertise-address=$(POD_IP)', '--etcd-servers=http://127.0.0.1:2379', '--etcd-prefix=/kplex/tenants/t1', '--secure-port=6443']));
    expect(args.some((a) => a.startsWith('--admission-control-config-file'))).toBe(false);
  });

  it('pod security is read from the admission file, present only when something is enforced', () => {
    const files = configFiles('t1', pki, { podSecurity: podSecurityFor('baseline') }, '10.96.0.10');
    expect(files['admission.yaml']).toContain('PodSecurity');
    expect(container(sts(files), 'kube-apiserver').args).toContain('--admission-control-config-file=/etc/kplex/admission.yaml');
  });

  it('the DNS server answers on 1053 of every pod address and asks the host DNS only when the values fall back to it', () => {
    const own = configFiles('t1', pki, { podSecurity: UNRESTRICTED, pods: { serviceIP: '10.96.5.5', fallbackToHost: false } }, '10.96.0.10').Corefile!;
    expect(own).toMatch(/^\.:1053 \{/);
    expect(own).toContain('bind 0.0.0.0');
    expect(own).not.toContain('10.96.0.10');
    const fallback = configFiles('t1', pki, { podSecurity: UNRESTRICTED, pods: { serviceIP: '10.96.5.5', fallbackToHost: true } }, '10.96.0.10').Corefile!;
    expect(fallback).toContain('forward . 10.96.0.10');
  });

  it('a changed file (a renewed certificate, another admission setting) changes the pod template, so the pod rolls', () => {
    const a = sts(configFiles('t1', pki, { podSecurity: UNRESTRICTED }, '10.96.0.10'));
    const b = sts(configFiles('t1', { ...pki, 'admin.crt': 'RENEWED' }, { podSecurity: UNRESTRICTED }, '10.96.0.10'));
    expect(a.spec.template.metadata.annotations['kplex.dev/spec-hash']).not.toEqual(b.spec.template.metadata.annotations['kplex.dev/spec-hash']);
    expect(sts(configFiles('t1', pki, { podSecurity: UNRESTRICTED }, '10.96.0.10')).spec.template.metadata.annotations).toEqual(a.spec.template.metadata.annotations);
  });

  it('the etcd claim uses the class asked for, else the host default', () => {
    const files = configFiles('t1', pki, { podSecurity: UNRESTRICTED }, '10.96.0.10');
    expect(sts(files).spec.volumeClaimTemplates[0]!.spec.storageClassName).toBeUndefined();
    expect(sts(files, 'fast').spec.volumeClaimTemplates[0]!.spec.storageClassName).toBe('fast');
  });

  it('the control-plane Service selects the pods and targets their ports; without pods it has no selector', () => {
    const withPods = controlPlaneService('kplex-t1', {}, { selector: { 'kplex.dev/control-plane': 't1' }, apiPort: 6443, dnsPort: 1053 }) as unknown as { spec: { selector?: object; ports: { name: string; port: number; targetPort: number }[] } };
    expect(withPods.spec.selector).toEqual({ 'kplex.dev/control-plane': 't1' });
    expect(withPods.spec.ports.map((p) => [p.name, p.port, p.targetPort])).toEqual([['https', 443, 6443], ['dns', 53, 1053], ['dns-tcp', 53, 1053]]);
    const without = controlPlaneService('kplex-t1', {}) as unknown as { spec: { selector?: object; ports: { port: number; targetPort: number }[] } };
    expect(without.spec.selector).toBeUndefined();
    expect(without.spec.ports.every((p) => p.port === p.targetPort)).toBe(true);
  });
});
