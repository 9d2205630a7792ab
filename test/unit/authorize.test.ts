import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Authorizer, parseTenantPolicy, patternMatch, PolicyError, subjectsOf } from '../../src/gateway/authorize.js';
import type { UserInfo } from '../../src/gateway/authenticate.js';
import type { Role } from '../../src/tenants/roles.js';
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
    // Aggregated APIs: kplex's own metrics.k8s.io is readable, registering one is kplex's alone.
    ['admin', 'POST', '/apis/apiregistration.k8s.io/v1/apiservices', false],
    ['admin', 'PUT', '/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.metrics.k8s.io', false],
    ['admin', 'PATCH', '/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.metrics.k8s.io/status', false],
    ['admin', 'DELETE', '/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.metrics.k8s.io', false],
    ['admin', 'GET', '/apis/apiregistration.k8s.io/v1/apiservices', true],
    ['view', 'GET', '/apis/metrics.k8s.io/v1beta1/namespaces/x/pods', true],
    ['view', 'GET', '/apis/metrics.k8s.io/v1beta1/nodes', true],
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
    // Lists and watches across namespaces (kubectl get -A) pass the gateway; the tenant's RBAC decides
    // which resources (its view role lists pods, not nodes).
    ['view', 'GET', '/api/v1/pods?watch=true', true],
    ['view', 'GET', '/api/v1/secrets', false],
    ['view', 'GET', '/api/v1/nodes/n1', false],
    ['edit', 'GET', '/apis/apps/v1/deployments', true],
    ['edit', 'DELETE', '/api/v1/nodes/n1', false],
    ['view', 'GET', '/api/v1/namespaces/x/pods/p/log', true],
    ['view', 'GET', '/api/v1/namespaces', true],
    ['view', 'GET', '/api/v1/namespaces/x/secrets', false],
    ['view', 'GET', '/api/v1/namespaces/x/secrets/s', false],
    ['view', 'POST', '/api/v1/namespaces/x/pods/p/exec', false],
    ['view', 'GET', '/api/v1/namespaces/x/pods/p/exec', false],
    ['view', 'POST', '/api/v1/namespaces/x/configmaps', false],
    ['view', 'DELETE', '/api/v1/namespaces/x/pods/p', false],
    ['view', 'GET', '/api/v1/nodes', true],
    ['view', 'GET', '/version', true],
    ['view', 'GET', '/openapi/v3/apis/apps/v1', true],
    ['view', 'GET', '/apis', true],
    ['view', 'POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', true],
    ['view', 'POST', '/logs', false],
  ] as const)('%s %s %s → %s', (role, method, url, allowed) => {
    expect(can(role, method, url)).toBe(allowed);
  });

  it("adds a tenant's own lines to that tenant only, and reloads them", async () => {
    await authz.setTenantPolicy('team-a', 'g, user:jane, role:admin, team-a\np, group:ops, team-a, create, , namespaces, cluster, allow');
    const ns = parseRequestInfo('POST', '/api/v1/namespaces');
    expect(authz.authorize('team-a', user('view', 'jane'), ns)).toBe(true);
    expect(authz.authorize('team-a', user('view', 'bob', ['ops']), ns)).toBe(true);
    expect(authz.authorize('team-a', user('view', 'bob'), ns)).toBe(false);
    expect(authz.authorize('team-b', { ...user('view', 'jane'), tenant: 'team-b' }, ns)).toBe(false);
    await authz.setTenantPolicy('team-a', '');
    expect(authz.authorize('team-a', user('view', 'jane'), ns)).toBe(false);
  });

  it('refuses lines that name another tenant or are malformed, keeping the old policy', async () => {
    await authz.setTenantPolicy('team-a', 'g, user:jane, role:admin, team-a');
    const ns = parseRequestInfo('POST', '/api/v1/namespaces');
    expect(authz.authorize('team-a', user('view', 'jane'), ns)).toBe(true);
    await expect(authz.setTenantPolicy('team-a', 'g, user:jane, role:admin, team-b')).rejects.toThrow(PolicyError);
    await expect(authz.setTenantPolicy('team-a', 'g, user:bob, role:admin, team-a\nx, y')).rejects.toThrow(/start with p or g/);
    // The refused lines took nothing away (jane) and gave nothing (bob).
    expect(authz.authorize('team-a', user('view', 'jane'), ns)).toBe(true);
    expect(authz.authorize('team-a', user('view', 'bob'), ns)).toBe(false);
    await authz.setTenantPolicy('team-a', '');
    expect(() => parseTenantPolicy('team-a', 'p, user:x, team-a, get')).toThrow(/7 fields/);
    expect(() => parseTenantPolicy('team-a', 'p, user:x, team-a, get, , pods, *, maybe')).toThrow(/allow or deny/);
    expect(() => parseTenantPolicy('team-a', 'x, y')).toThrow(/start with p or g/);
  });

  it('refuses policy subjects without a user:, group: or role: prefix, and g lines that are not member → role', () => {
    const refused: [string, RegExp][] = [
      ['p, jane, team-a, *, *, *, *, allow', /subject must be user:NAME, group:NAME or role:NAME/],
      ['p, user:, team-a, *, *, *, *, allow', /subject must be/],
      ['p, admins:x, team-a, *, *, *, *, allow', /subject must be/],
      ['g, jane, role:admin, team-a', /gives a role to user:NAME or group:NAME/],
      ['g, role:view, role:admin, team-a', /gives a role to user:NAME or group:NAME/],
      ['g, user:jane, group:admins, team-a', /gives role:NAME, not "group:admins"/],
      ['g, group:ops, admin, team-a', /gives role:NAME/],
    ];
    for (const [line, reason] of refused) expect(() => parseTenantPolicy('team-a', line), line).toThrow(reason);
    expect(parseTenantPolicy('team-a', 'p,role:deployer,team-a,create,apps,deployments,namespaced,allow\ng, group:ci, role:deployer, team-a')).toBe(
      'p, role:deployer, team-a, create, apps, deployments, namespaced, allow\ng, group:ci, role:deployer, team-a',
    );
  });

  it('keeps users, groups and roles apart: a user named "role:admin" or "group:x" is neither', async () => {
    const del = parseRequestInfo('DELETE', '/api/v1/namespaces/x/pods/p');
    expect(authz.authorize('team-a', user('view', 'role:admin'), del)).toBe(false);
    expect(authz.authorize('team-a', user('view', 'x', ['role:admin']), del)).toBe(false);
    await authz.setTenantPolicy('team-a', 'g, group:x, role:admin, team-a\np, user:jane, team-a, delete, , pods, namespaced, allow');
    expect(authz.authorize('team-a', user('view', 'bob', ['x']), del)).toBe(true);
    expect(authz.authorize('team-a', user('view', 'group:x'), del)).toBe(false);
    expect(authz.authorize('team-a', user('view', 'jane'), del)).toBe(true);
    expect(authz.authorize('team-a', user('view', 'bob', ['jane']), del)).toBe(false);
    expect(authz.authorize('team-a', user('view', 'user:jane'), del)).toBe(false);
    // A name with a comma does not share the decision made for another user's groups.
    expect(authz.authorize('team-a', user('view', 'bob,group:x'), del)).toBe(false);
    await authz.setTenantPolicy('team-a', '');
  });

  it('fails closed: no policy folder, no authorizer', async () => {
    await expect(Authorizer.load('/nonexistent')).rejects.toThrow();
  });
});

describe('subjectsOf', () => {
  it('prefixes the role, the user and each group', () => {
    expect(subjectsOf(user('view', 'role:admin', ['x', 'group:y']))).toEqual(['role:view', 'user:role:admin', 'group:x', 'group:group:y']);
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
