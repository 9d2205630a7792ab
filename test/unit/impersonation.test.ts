import { describe, expect, it } from 'vitest';
import { impersonated, impersonationChecks, impersonationDenied, requestedImpersonation } from '../../src/gateway/impersonation.js';

const req = (h: Record<string, string[]>) => ({ headersDistinct: h, headers: Object.fromEntries(Object.entries(h).map(([k, v]) => [k, v.join(', ')])) });

describe('requestedImpersonation', () => {
  it('is undefined without Impersonate-* headers', () => {
    expect(requestedImpersonation(req({ accept: ['application/json'] }))).toBeUndefined();
  });

  it('reads the user, every group, the uid and the extras (keys percent-decoded)', () => {
    expect(requestedImpersonation(req({ 'impersonate-user': ['alice'], 'impersonate-group': ['a', 'b'], 'impersonate-uid': ['u1'], 'impersonate-extra-scopes%2Fx': ['s1', 's2'] }))).toEqual({
      user: 'alice',
      groups: ['a', 'b'],
      uid: 'u1',
      extra: { 'scopes/x': ['s1', 's2'] },
    });
  });

  it('refuses groups without a user, as kube-apiserver does', () => {
    expect(() => requestedImpersonation(req({ 'impersonate-group': ['system:masters'] }))).toThrow(/requires impersonating a user/);
  });
});

describe('impersonationChecks', () => {
  it('asks for impersonate on users, service accounts, groups, uids and userextras', () => {
    expect(impersonationChecks({ user: 'system:serviceaccount:dev:bot', groups: ['g'], uid: 'u', extra: { k: ['v'] } })).toEqual([
      { verb: 'impersonate', group: '', resource: 'serviceaccounts', namespace: 'dev', name: 'bot' },
      { verb: 'impersonate', group: '', resource: 'groups', name: 'g' },
      { verb: 'impersonate', group: 'authentication.k8s.io', resource: 'uids', name: 'u' },
      { verb: 'impersonate', group: 'authentication.k8s.io', resource: 'userextras', subresource: 'k', name: 'v' },
    ]);
    expect(impersonationChecks({ user: 'alice', groups: [], extra: {} })).toEqual([{ verb: 'impersonate', group: '', resource: 'users', name: 'alice' }]);
  });

  it("refuses in kube-apiserver's words and forwards exactly what was asked", () => {
    const denied = impersonationDenied('bob', { verb: 'impersonate', group: '', resource: 'users', name: 'alice' });
    expect(denied.code).toBe(403);
    expect(denied.message).toBe('users "alice" is forbidden: User "bob" cannot impersonate resource "users" in API group "" at the cluster scope');
    expect(impersonated({ user: 'alice', groups: [], extra: {} })).toEqual({ user: 'alice', groups: [], uid: undefined, extra: undefined });
  });
});
