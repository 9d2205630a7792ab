import { describe, expect, it } from 'vitest';
import { apiServerArgs, controllerManagerArgs, goMemoryLimitEnv, mergeComponentArgs, TENANT_ARGS, TENANT_CONTROLLERS } from '../../src/controlplane/components.js';

describe("a tenant's components", () => {
  it('serve no DRA and no CertificateSigningRequests, and run none of their controllers', () => {
    const args = apiServerArgs({ etcdServers: 'http://127.0.0.1:2379', etcdPrefix: '/t', port: 6443, pkiDir: '/pki', authorizationModes: 'RBAC', extraArgs: TENANT_ARGS['kube-apiserver'] });
    expect(args).toContain('--runtime-config=resource.k8s.io/v1=false,certificates.k8s.io/v1=false');
    const controllers = TENANT_CONTROLLERS.split(',');
    expect(controllers[0]).toBe('*');
    for (const off of ['certificatesigningrequest-signing-controller', 'certificatesigningrequest-approving-controller', 'resourceclaim-controller', 'device-taint-eviction-controller', 'persistentvolume-binder', 'nodelifecycle', 'taint-eviction-controller']) {
      expect(controllers).toContain(`-${off}`);
    }
    // What tenants use stays: garbage collection, namespaces, workloads, service accounts, endpoints, claims' protection.
    expect(controllers.filter((c) => !c.startsWith('-'))).toEqual(['*']);
    for (const on of ['garbage-collector-controller', 'namespace-controller', 'replicaset-controller', 'serviceaccount-token-controller', 'endpointslice-controller', 'persistentvolumeclaim-protection-controller']) {
      expect(controllers).not.toContain(`-${on}`);
    }
    const kcm = controllerManagerArgs({ kubeconfig: '/k', port: 1, pkiDir: '/pki', controllers: TENANT_CONTROLLERS });
    expect(kcm).toContain(`--controllers=${TENANT_CONTROLLERS}`);
  });

  it("put an operator's flags after the tenant defaults, so the operator's win", () => {
    expect(mergeComponentArgs({ 'kube-apiserver': ['--a=1'] }, { 'kube-apiserver': ['--a=2'], etcd: ['--b'] }, {})).toEqual({ 'kube-apiserver': ['--a=1', '--a=2'], etcd: ['--b'] });
    expect(mergeComponentArgs()).toEqual({});
  });

  it('get GOMEMLIMIT in bytes only when a limit is set', () => {
    expect(goMemoryLimitEnv(128 * 1024 * 1024)).toEqual({ GOMEMLIMIT: '134217728' });
    expect(goMemoryLimitEnv(undefined)).toEqual({});
  });
});
