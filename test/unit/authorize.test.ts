import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Authorizer, parseTenantPolicy, patternMatch, PolicyError } from '../../src/gateway/authorize.js';
import type { Role, UserInfo } from '../../src/gateway/authenticate.js';
import { parseRequestInfo } from '../../src/gateway/request-info.js';
import { packageRoot } from '../../src/paths.js';

const user = (role: Role, name = 'u', groups: string[] = []): UserInfo => ({ tenant: 'team-a', name, groups, role });

describe('the Casbin model and default roles (policies/)', () => {
  let authz: Authorizer;
  beforeAll(async () => {
    authz = await Authorizer.load(path.join(packageRoot, 'policies'));
  });
  const can = (role: Role, method: string, url: string, tenant = 'team-a') => authz.authorize(tenant, user(role), parseRequestInfo(method, url));

  it.each([
    // [role, method, url, allowed] — meant as Kubernetes' admin/edit/view cluster roles are
    ['admin', 'POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', true],
    ['admin', 'DELETE', '/api/v1/namespaces/x', true],
    ['admin', 'POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', true],
    ['edit', 'POST', '/apis/apps/v1/namespaces/x/deployments', true],
    ['edit', 'PATCH', '/apis/apps/v1/namespaces/x/deployments/d/scale', true],
    ['edit', 'GET', '/api/v1/namespaces/x/secrets', true],
    ['edit', 'POST', '/api/v1/namespaces/x/pods/p/exec', true],
    ['edit', 'GET', '/api/v1/namespaces', true],
    ['edit', 'POST', '/api/v1/namespaces', false],
    ['edit', 'POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', false],
    ['edit', 'POST', '/apis/rbac.authorization.k8s.io/v1/namespaces/x/rolebindings', false],
    ['edit', 'GET', '/apis/rbac.authorization.k8s.io/v1/namespaces/x/rolebindings', true],
    ['view', 'GET', '/api/v1/namespaces/x/pods', true],
    ['view', 'GET', '/api/v1/pods?watch=true&namespace=x', true],
    ['view', 'GET', '/api/v1/namespaces/x/pods/p/log', true],
    ['view', 'GET', '/api/v1/namespaces', true],
    ['view', 'GET', '/api/v1/namespaces/x/secrets', false],
    ['view', 'GET', '/api/v1/namespaces/x/secrets/s', false],
    ['view', 'POST', '/api/v1/namespaces/x/pods/p/exec', false],
    ['view', 'GET', '/api/v1/namespaces/x/pods/p/exec', false],
    ['view', 'POST', '/api/v1/namespaces/x/configmaps', false],
    ['view', 'DELETE', '/api/v1/namespaces/x/pods/p', false],
    ['view', 'GET', '/api/v1/nodes', false],
    ['view', 'GET', '/version', true],
    ['view', 'GET', '/openapi/v3/apis/apps/v1', true],
    ['view', 'GET', '/apis', true],
    ['view', 'POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', true],
    ['view', 'POST', '/logs', false],
  ] as const)('%s %s %s → %s', (role, method, url, allowed) => {
    expect(can(role, method, url)).toBe(allowed);
  });

  it("adds a tenant's own lines to that tenant only, and reloads them", async () => {
    await authz.setTenantPolicy('team-a', 'g, jane, role:admin, team-a\np, group:ops, team-a, create, , namespaces, cluster, allow');
    const ns = parseRequestInfo('POST', '/api/v1/namespaces');
    expect(authz.authorize('team-a', user('view', 'jane'), ns)).toBe(true);
    expect(authz.authorize('team-a', user('view', 'bob', ['ops']), ns)).toBe(true);
    expect(authz.authorize('team-a', user('view', 'bob'), ns)).toBe(false);
    expect(authz.authorize('team-b', { ...user('view', 'jane'), tenant: 'team-b' }, ns)).toBe(false);
    await authz.setTenantPolicy('team-a', '');
    expect(authz.authorize('team-a', user('view', 'jane'), ns)).toBe(false);
  });

  it('refuses lines that name another tenant or are malformed, keeping the old policy', async () => {
    await expect(authz.setTenantPolicy('team-a', 'g, jane, role:admin, team-b')).rejects.toThrow(PolicyError);
    expect(() => parseTenantPolicy('team-a', 'p, x, team-a, get')).toThrow(/7 fields/);
    expect(() => parseTenantPolicy('team-a', 'p, x, team-a, get, , pods, *, maybe')).toThrow(/allow or deny/);
    expect(() => parseTenantPolicy('team-a', 'x, y')).toThrow(/start with p or g/);
  });

  it('fails closed: no policy folder, no authorizer', async () => {
    await expect(Authorizer.load('/nonexistent')).rejects.toThrow();
  });
});

describe('patternMatch', () => {
  it.each([
    ['get', '*', true],
    ['get', 'get|list', true],
    ['watch', 'get|list', false],
    ['/apis/apps', '/api*', true],
    ['/version', '/api*|/version', true],
    ['', '', true],
    ['apps', '', false],
  ] as const)('%s ~ %s → %s', (value, pattern, expected) => expect(patternMatch(value, pattern)).toBe(expected));
});
