import { describe, expect, it } from 'vitest';
import { admissionConfiguration, podSecurityLabels, UNRESTRICTED } from '../../src/controlplane/pod-security.js';
import { parseValues, podSecurityOf } from '../../src/tenants/values.js';

describe('pod security of a tenant', () => {
  it('isolated mode enforces baseline and warns about restricted; otherwise nothing is restricted', () => {
    expect(podSecurityOf(parseValues({ isolate: true }))).toEqual({ enforce: 'baseline', warn: 'restricted' });
    expect(podSecurityOf(parseValues({}))).toEqual(UNRESTRICTED);
  });

  it('podSecurityStandard chooses the level, isolated or not; privileged enforces and warns about nothing', () => {
    expect(podSecurityOf(parseValues({ podSecurityStandard: 'restricted' }))).toEqual({ enforce: 'restricted', warn: 'restricted' });
    expect(podSecurityOf(parseValues({ podSecurityStandard: 'baseline' }))).toEqual({ enforce: 'baseline', warn: 'restricted' });
    expect(podSecurityOf(parseValues({ isolate: true, podSecurityStandard: 'restricted' }))).toEqual({ enforce: 'restricted', warn: 'restricted' });
    expect(podSecurityOf(parseValues({ isolate: true, podSecurityStandard: 'privileged' }))).toEqual(UNRESTRICTED);
    expect(podSecurityLabels(podSecurityOf(parseValues({ podSecurityStandard: 'restricted' })))).toEqual({
      'pod-security.kubernetes.io/enforce': 'restricted',
      'pod-security.kubernetes.io/warn': 'restricted',
    });
    expect(() => parseValues({ podSecurityStandard: 'strict' })).toThrow(/podSecurityStandard: Invalid enum value. Expected 'privileged' \| 'baseline' \| 'restricted', received 'strict'/);
  });

  it('labels the host namespace with the same levels, and with nothing when unrestricted', () => {
    expect(podSecurityLabels({ enforce: 'baseline', warn: 'restricted' })).toEqual({
      'pod-security.kubernetes.io/enforce': 'baseline',
      'pod-security.kubernetes.io/warn': 'restricted',
    });
    expect(podSecurityLabels(UNRESTRICTED)).toEqual({});
  });

  it("gives the tenant API server the same levels as PodSecurity defaults, exempting no namespace", () => {
    const config = admissionConfiguration({ enforce: 'baseline', warn: 'restricted' }) as { kind: string; plugins: { name: string; configuration: { defaults: Record<string, string>; exemptions: { namespaces: string[] } } }[] };
    expect(config.kind).toBe('AdmissionConfiguration');
    expect(config.plugins.map((p) => p.name)).toEqual(['PodSecurity']);
    expect(config.plugins[0]!.configuration.defaults).toMatchObject({ enforce: 'baseline', warn: 'restricted', 'enforce-version': 'latest' });
    expect(config.plugins[0]!.configuration.exemptions.namespaces).toEqual([]);
    expect(admissionConfiguration(UNRESTRICTED)).toBeUndefined();
  });
});
