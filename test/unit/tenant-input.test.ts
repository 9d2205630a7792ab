import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { hostNamespace, InvalidNameError, MAX_TENANT_NAME, validateTenantName } from '../../src/tenants/names.js';
import { parseValues, readValuesFile, ValuesError } from '../../src/tenants/values.js';

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
      controlPlane: { provider: 'local' },
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
