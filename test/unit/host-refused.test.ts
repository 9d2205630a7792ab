import { describe, expect, it } from 'vitest';
import { warningHeader } from '../../src/gateway/mirror.js';
import { StatusError } from '../../src/k8s/status.js';
import { HostRefused } from '../../src/sync/syncer.js';

describe('HostRefused', () => {
  it("tells the host's refusal with the tenant's names, in message and details", () => {
    const host = new StatusError(403, 'Forbidden', 'pods "web-x-default-x-iso" is forbidden: exceeded quota: kplex-quota, requested: pods=1, used: pods=1, limited: pods=1', { name: 'web-x-default-x-iso', kind: 'pods' });
    const refused = new HostRefused(host, 'web-x-default-x-iso', 'web');
    expect(refused.toStatus()).toEqual({
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
