import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { hostNamespace, InvalidNameError, MAX_TENANT_NAME, validateTenantName } from '../../src/tenants/names.js';
import { DEFAULT_API_SERVER_MEMORY_LIMIT, memoryBytes, memoryLimitsOf, parseValues, readValuesFile, ValuesError } from '../../src/tenants/values.js';

describe('tenant names', () => {
  it.each(['team-a', 'a', 'x1', 'a'.repeat(MAX_TENANT_NAME)])('accepts %s', (n) => {
    expect(validateTenantName(n)).toBe(n);
    expect(hostNamespace(n).length).toBeLessThanOrEqual(63);
  });
  it.each([
    ['', /required/],
    ['Team', /not a DNS label/],
    ['-a', /not a DNS label/],
    ['a-', /not a DNS label/],
    ['a_b', /not a DNS label/],
    ['a.b', /not a DNS label/],
    ['a'.repeat(MAX_TENANT_NAME + 1), /longer than 57/],
    ['default', /reserved/],
    ['kube-foo', /reserved/],
  ])('refuses "%s"', (n, why) => {
    expect(() => validateTenantName(n)).toThrow(InvalidNameError);
    expect(() => validateTenantName(n)).toThrow(why);
  });
});

describe('values', () => {
  it('fills defaults', () => {
    expect(parseValues({})).toEqual({
      isolate: false,
      controlPlane: { replicas: 1, resources: { apiServer: { memoryLimit: DEFAULT_API_SERVER_MEMORY_LIMIT }, controllerManager: {} } },
      sync: {
        ingresses: { enabled: false },
        dns: { fallbackToHost: false },
        networkPolicies: { enabled: false },
        storageClasses: { enabled: false },
        priorityClasses: { enabled: false },
        persistentVolumes: { enabled: false, csiDrivers: [], localPathPrefixes: [] },
        services: { externalIPs: { allowedCIDRs: [] } },
        nodes: { mode: 'real', selector: {} },
      },
      sleep: { workloads: 'keep' },
      quota: {},
    });
  });

  it('names unknown keys and wrong types by their path', () => {
    expect(() => parseValues({ sync: { ingress: { enabled: true } } })).toThrow(/sync: Unrecognized key\(s\) in object: 'ingress'/);
    expect(() => parseValues({ sync: { ingresses: { enabled: 'yes' } } })).toThrow(/sync\.ingresses\.enabled: Expected boolean, received string/);
    expect(() => parseValues({ sync: { nodes: { mode: 'some' } } })).toThrow(/sync\.nodes\.mode: Invalid enum value/);
    expect(() => parseValues({ quota: { pods: -1 } })).toThrow(ValuesError);
  });

  it("takes the control plane's memory limits in Kubernetes' binary units, and refuses what is no such size", () => {
    expect(memoryBytes('160Mi')).toBe(160 * 1024 * 1024);
    expect(memoryBytes('1Gi')).toBe(1024 ** 3);
    expect(memoryBytes('65536Ki')).toBe(64 * 1024 * 1024);
    for (const bad of ['160M', '160', '0Mi', '-1Mi', '1.5Gi', '01Mi', ' 1Gi', '1Gi\n', '99999999Gi', '']) expect(memoryBytes(bad), bad).toBeUndefined();
    expect(memoryLimitsOf(parseValues({}))).toEqual({ apiServer: memoryBytes(DEFAULT_API_SERVER_MEMORY_LIMIT) });
    const values = parseValues({ controlPlane: { resources: { apiServer: { memoryLimit: '1Gi' }, controllerManager: { memoryLimit: '64Mi' } } } });
    expect(memoryLimitsOf(values)).toEqual({ apiServer: 1024 ** 3, controllerManager: 64 * 1024 * 1024 });
    expect(() => parseValues({ controlPlane: { resources: { apiServer: { memoryLimit: '16Mi' } } } })).toThrow(/controlPlane\.resources\.apiServer\.memoryLimit: not a memory size of at least 32Mi/);
    expect(() => parseValues({ controlPlane: { resources: { controllerManager: { memoryLimit: 100 } } } })).toThrow(/controlPlane\.resources\.controllerManager\.memoryLimit: Expected string/);
    expect(() => parseValues({ controlPlane: { resources: { etcd: {} } } })).toThrow(/controlPlane\.resources: Unrecognized key/);
  });

  it('reads a YAML file and names it in errors', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kplex-values-'));
    const good = path.join(dir, 'good.yaml');
    writeFileSync(good, 'sync:\n  ingresses:\n    enabled: true\n');
    expect(readValuesFile(good).sync.ingresses.enabled).toBe(true);
    const bad = path.join(dir, 'bad.yaml');
    writeFileSync(bad, 'isolate: [1\n');
    expect(() => readValuesFile(bad)).toThrow(new RegExp(`^${bad}: `));
  });
});
