import { describe, expect, it } from 'vitest';
import { warningHeader } from '../../src/gateway/mirror.js';
import { StatusError } from '../../src/k8s/status.js';
import { HostRefused } from '../../src/sync/host-refused.js';
import { Translator } from '../../src/sync/translate.js';

describe('HostRefused', () => {
  const t = new Translator('iso');
  const origin = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web', namespace: 'shop' } };
  const twin = t.pod(origin);

  it("tells the host's refusal with the tenant's names, in message and details", () => {
    const host = new StatusError(403, 'Forbidden', `pods "${twin.metadata.name}" is forbidden: exceeded quota: kplex-quota, requested: pods=1, used: pods=1, limited: pods=1`, { name: twin.metadata.name, kind: 'pods' });
    expect(new HostRefused(host, t, twin, origin).toStatus()).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'pods "web" is forbidden: exceeded quota: kplex-quota, requested: pods=1, used: pods=1, limited: pods=1',
      reason: 'Forbidden',
      details: { name: 'web', kind: 'pods' },
      code: 403,
    });
  });

  it('names the tenant namespace, not the host namespace', () => {
    const host = new StatusError(403, 'Forbidden', `pods "${twin.metadata.name}" is forbidden: unable to create new content in namespace ${t.hostNamespace} because it is being terminated`);
    expect(new HostRefused(host, t, twin, origin).message).toBe('pods "web" is forbidden: unable to create new content in namespace shop because it is being terminated');
  });
});

describe('Warning header', () => {
  it('quotes the text as kube-apiserver does, escaping quotes and backslashes', () => {
    expect(warningHeader('pods "web" is forbidden: exceeded quota: kplex-quota')).toBe('299 - "pods \\"web\\" is forbidden: exceeded quota: kplex-quota"');
    expect(warningHeader('a\\b')).toBe('299 - "a\\\\b"');
  });

  it('keeps the header a valid ASCII field value', () => {
    expect(warningHeader('line\nbreak µ')).toBe('299 - "line?break ?"');
  });
});
