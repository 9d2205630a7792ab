import { describe, expect, it } from 'vitest';
import { describeDenial, isLongRunning, nameProblem, parseRequestInfo, pathProblem } from '../../src/gateway/request-info.js';

type Row = [method: string, url: string, verb: string, group: string, version: string, namespace: string, resource: string, subresource: string, name: string];

// Expected values as kube-apiserver's requestinfo.go computes them.
const resourceRequests: Row[] = [
  ['GET', '/api/v1/namespaces', 'list', '', 'v1', '', 'namespaces', '', ''],
  ['GET', '/api/v1/namespaces/other', 'get', '', 'v1', 'other', 'namespaces', '', 'other'],
  ['PUT', '/api/v1/namespaces/other/finalize', 'update', '', 'v1', 'other', 'namespaces', 'finalize', 'other'],
  ['PATCH', '/api/v1/namespaces/other/status', 'patch', '', 'v1', 'other', 'namespaces', 'status', 'other'],
  ['DELETE', '/api/v1/namespaces/other', 'delete', '', 'v1', 'other', 'namespaces', '', 'other'],
  ['GET', '/api/v1/namespaces/other/pods', 'list', '', 'v1', 'other', 'pods', '', ''],
  ['GET', '/api/v1/namespaces/other/pods/foo', 'get', '', 'v1', 'other', 'pods', '', 'foo'],
  ['HEAD', '/api/v1/namespaces/other/pods/foo', 'get', '', 'v1', 'other', 'pods', '', 'foo'],
  ['GET', '/api/v1/pods', 'list', '', 'v1', '', 'pods', '', ''],
  ['GET', '/api/v1/pods?watch=true', 'watch', '', 'v1', '', 'pods', '', ''],
  ['GET', '/api/v1/pods?watch=1&resourceVersion=10', 'watch', '', 'v1', '', 'pods', '', ''],
  ['GET', '/api/v1/pods?watch=false', 'list', '', 'v1', '', 'pods', '', ''],
  ['GET', '/api/v1/namespaces/other/pods/foo?watch=true', 'get', '', 'v1', 'other', 'pods', '', 'foo'],
  ['GET', '/api/v1/namespaces/other/pods?fieldSelector=metadata.name%3Dfoo&watch=true', 'watch', '', 'v1', 'other', 'pods', '', 'foo'],
  ['GET', '/api/v1/namespaces/other/pods?fieldSelector=metadata.name%3D%3Dfoo', 'list', '', 'v1', 'other', 'pods', '', 'foo'],
  ['GET', '/api/v1/namespaces/other/pods?fieldSelector=spec.nodeName%3Dn1', 'list', '', 'v1', 'other', 'pods', '', ''],
  ['GET', '/api/v1/pods?namespace=other', 'list', '', 'v1', '', 'pods', '', ''],
  ['GET', '/api/v1/pods/p/log?namespace=other', 'get', '', 'v1', '', 'pods', 'log', 'p'],
  ['GET', '/api/v1/namespaces/other/pods?limit=500&continue=abc', 'list', '', 'v1', 'other', 'pods', '', ''],
  ['POST', '/api/v1/namespaces/other/pods', 'create', '', 'v1', 'other', 'pods', '', ''],
  ['PUT', '/api/v1/namespaces/other/pods/foo', 'update', '', 'v1', 'other', 'pods', '', 'foo'],
  ['PATCH', '/api/v1/namespaces/other/pods/foo', 'patch', '', 'v1', 'other', 'pods', '', 'foo'],
  ['DELETE', '/api/v1/namespaces/other/pods/foo', 'delete', '', 'v1', 'other', 'pods', '', 'foo'],
  ['DELETE', '/api/v1/namespaces/other/pods', 'deletecollection', '', 'v1', 'other', 'pods', '', ''],
  ['GET', '/api/v1/namespaces/other/pods/foo/status', 'get', '', 'v1', 'other', 'pods', 'status', 'foo'],
  ['PUT', '/api/v1/namespaces/other/pods/foo/status', 'update', '', 'v1', 'other', 'pods', 'status', 'foo'],
  ['GET', '/api/v1/namespaces/other/pods/foo/log?follow=true&container=c', 'get', '', 'v1', 'other', 'pods', 'log', 'foo'],
  ['POST', '/api/v1/namespaces/other/pods/foo/exec?command=ls&stdout=true', 'create', '', 'v1', 'other', 'pods', 'exec', 'foo'],
  ['GET', '/api/v1/namespaces/other/pods/foo/exec?command=ls', 'get', '', 'v1', 'other', 'pods', 'exec', 'foo'],
  ['POST', '/api/v1/namespaces/other/pods/foo/attach', 'create', '', 'v1', 'other', 'pods', 'attach', 'foo'],
  ['POST', '/api/v1/namespaces/other/pods/foo/portforward', 'create', '', 'v1', 'other', 'pods', 'portforward', 'foo'],
  ['POST', '/api/v1/namespaces/other/pods/foo/binding', 'create', '', 'v1', 'other', 'pods', 'binding', 'foo'],
  ['POST', '/api/v1/namespaces/other/pods/foo/eviction', 'create', '', 'v1', 'other', 'pods', 'eviction', 'foo'],
  ['GET', '/api/v1/namespaces/other/pods/foo/proxy/some/path', 'get', '', 'v1', 'other', 'pods', 'proxy', 'foo'],
  ['GET', '/api/v1/namespaces/other/services/web:80/proxy/', 'get', '', 'v1', 'other', 'services', 'proxy', 'web:80'],
  ['GET', '/api/v1/watch/pods', 'watch', '', 'v1', '', 'pods', '', ''],
  ['GET', '/api/v1/watch/namespaces/other/pods', 'watch', '', 'v1', 'other', 'pods', '', ''],
  ['GET', '/api/v1/watch/namespaces/other/pods/foo', 'watch', '', 'v1', 'other', 'pods', '', 'foo'],
  ['GET', '/api/v1/proxy/namespaces/other/pods/foo', 'proxy', '', 'v1', 'other', 'pods', '', 'foo'],
  ['GET', '/api/v1/nodes/n1', 'get', '', 'v1', '', 'nodes', '', 'n1'],
  ['GET', '/api/v1/nodes/n1/proxy/metrics', 'get', '', 'v1', '', 'nodes', 'proxy', 'n1'],
  ['GET', '/apis/apps/v1/namespaces/other/deployments', 'list', 'apps', 'v1', 'other', 'deployments', '', ''],
  ['GET', '/apis/apps/v1/namespaces/other/deployments/web', 'get', 'apps', 'v1', 'other', 'deployments', '', 'web'],
  ['PUT', '/apis/apps/v1/namespaces/other/deployments/web/scale', 'update', 'apps', 'v1', 'other', 'deployments', 'scale', 'web'],
  ['PATCH', '/apis/apps/v1/namespaces/other/deployments/web/scale', 'patch', 'apps', 'v1', 'other', 'deployments', 'scale', 'web'],
  ['GET', '/apis/apps/v1/deployments?watch=true', 'watch', 'apps', 'v1', '', 'deployments', '', ''],
  ['GET', '/apis/apps/v1/watch/namespaces/other/deployments', 'watch', 'apps', 'v1', 'other', 'deployments', '', ''],
  ['DELETE', '/apis/apps/v1/namespaces/other/replicasets', 'deletecollection', 'apps', 'v1', 'other', 'replicasets', '', ''],
  ['POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', 'create', 'apiextensions.k8s.io', 'v1', '', 'customresourcedefinitions', '', ''],
  ['GET', '/apis/rbac.authorization.k8s.io/v1/clusterroles/admin', 'get', 'rbac.authorization.k8s.io', 'v1', '', 'clusterroles', '', 'admin'],
  ['POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', 'create', 'authorization.k8s.io', 'v1', '', 'selfsubjectaccessreviews', '', ''],
  ['GET', '/apis/example.com/v1alpha1/namespaces/other/widgets/w1/status', 'get', 'example.com', 'v1alpha1', 'other', 'widgets', 'status', 'w1'],
  ['GET', '/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases', 'list', 'coordination.k8s.io', 'v1', 'kube-node-lease', 'leases', '', ''],
];

const nonResourceRequests: [string, string, string][] = [
  ['GET', '/api', 'get'],
  ['GET', '/api/v1', 'get'],
  ['GET', '/apis', 'get'],
  ['GET', '/apis/apps', 'get'],
  ['GET', '/apis/apps/v1', 'get'],
  ['GET', '/version', 'get'],
  ['GET', '/version/', 'get'],
  ['GET', '/openapi/v2', 'get'],
  ['GET', '/openapi/v3', 'get'],
  ['GET', '/openapi/v3/apis/apps/v1?hash=abc', 'get'],
  ['GET', '/healthz', 'get'],
  ['GET', '/readyz?verbose', 'get'],
  ['POST', '/logs', 'post'],
  ['OPTIONS', '/api/v1/pods', 'options'],
];

describe('parseRequestInfo', () => {
  it.each(resourceRequests)('%s %s', (method, url, verb, apiGroup, apiVersion, namespace, resource, subresource, name) => {
    const info = parseRequestInfo(method, url);
    expect(info.isResourceRequest).toBe(true);
    expect(info).toMatchObject({ verb, apiGroup, apiVersion, namespace, resource, subresource, name });
  });

  it.each(nonResourceRequests)('%s %s is a non-resource request', (method, url, verb) => {
    const info = parseRequestInfo(method, url);
    expect(info).toEqual({ isResourceRequest: false, path: url.split('?')[0], verb });
  });

  it('keeps the proxy path after the subresource', () => {
    const info = parseRequestInfo('GET', '/api/v1/namespaces/ns/pods/foo/proxy/a/b');
    expect(info.isResourceRequest && info.parts).toEqual(['a', 'b']);
  });
});

describe('isLongRunning', () => {
  it.each([
    ['GET', '/api/v1/pods?watch=true', true],
    ['GET', '/api/v1/watch/pods', true],
    ['GET', '/api/v1/namespaces/n/pods/p/log?follow=true', true],
    ['POST', '/api/v1/namespaces/n/pods/p/exec', true],
    ['POST', '/api/v1/namespaces/n/pods/p/attach', true],
    ['POST', '/api/v1/namespaces/n/pods/p/portforward', true],
    ['GET', '/api/v1/namespaces/n/services/s/proxy/x', true],
    ['GET', '/api/v1/pods', false],
    ['POST', '/api/v1/namespaces/n/pods', false],
    ['GET', '/version', false],
  ] as const)('%s %s → %s', (method, url, expected) => {
    expect(isLongRunning(parseRequestInfo(method, url))).toBe(expected);
  });
});

describe('describeDenial', () => {
  it("reads like kube-apiserver's Forbidden message", () => {
    expect(describeDenial('jane', parseRequestInfo('GET', '/api/v1/namespaces/dev/pods'))).toBe(
      'User "jane" cannot list resource "pods" in API group "" in the namespace "dev"',
    );
    expect(describeDenial('jane', parseRequestInfo('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions'))).toBe(
      'User "jane" cannot create resource "customresourcedefinitions" in API group "apiextensions.k8s.io" at the cluster scope',
    );
    expect(describeDenial('jane', parseRequestInfo('GET', '/api/v1/namespaces/dev/pods/p/log'))).toBe(
      'User "jane" cannot get resource "pods/log" in API group "" in the namespace "dev"',
    );
  });
});

describe('pathProblem and nameProblem: what is refused before anything is forwarded', () => {
  it.each([
    '/api/v1/namespaces/n/pods/p%3Fx/log',
    '/api/v1/namespaces/n/pods/p%2Fexec/log',
    '/api/v1/namespaces/n/pods/p%2fexec/log',
    '/api/v1/namespaces/n/pods/%2e%2e/log',
    '/api/v1/namespaces/n/pods/../log',
    '/api/v1/namespaces/./pods',
    '/api/v1/namespaces/n/pods/p%23x/log',
    '/api/v1/namespaces/n/pods/p%00/log',
    '/api/v1/namespaces/n/pods/p%5Cx',
    '/api/v1/namespaces/n/pods/p%25x',
    '/api/v1/namespaces/n/pods/p%zz',
    '/api//v1/pods',
    '/openapi/v3/../../api',
  ])('refuses %s with a 400', (url) => {
    const problem = pathProblem(url);
    expect(problem?.code).toBe(400);
    expect(problem?.reason).toBe('BadRequest');
  });

  it.each(['/api/v1/namespaces/n/pods/p/log?container=a%2Fb', '/api/v1/pods/', '/apis/rbac.authorization.k8s.io/v1/clusterroles/system:controller:x', '/version', '/'])('lets %s pass', (url) => {
    expect(pathProblem(url)).toBeUndefined();
  });

  it('refuses namespaces that are not DNS labels and pod names that are not DNS subdomains', () => {
    expect(nameProblem(parseRequestInfo('GET', '/api/v1/namespaces/Kube/pods'))?.message).toMatch(/namespace "Kube" is not a valid namespace name/);
    expect(nameProblem(parseRequestInfo('GET', `/api/v1/namespaces/${'a'.repeat(64)}/pods`))?.code).toBe(400);
    expect(nameProblem(parseRequestInfo('GET', '/api/v1/namespaces/n/pods/Web_1/log'))?.message).toMatch(/pods name "Web_1" is not valid/);
    expect(nameProblem(parseRequestInfo('GET', '/api/v1/namespaces/n/secrets/atk;x'))?.code).toBe(400);
    expect(nameProblem(parseRequestInfo('DELETE', '/api/v1/namespaces/n/services/\u202edop'))?.code).toBe(400);
    expect(nameProblem(parseRequestInfo('GET', '/api/v1/namespaces/n/services/web.a'))?.code).toBe(400);
    expect(nameProblem(parseRequestInfo('GET', '/api/v1/namespaces/n/services/https:web:443/proxy/'))).toBeUndefined();
    expect(nameProblem(parseRequestInfo('GET', '/api/v1/namespaces/n/pods/web:8080/proxy/x'))).toBeUndefined();
    expect(nameProblem(parseRequestInfo('GET', '/apis/apps/v1/namespaces/n/deployments/Web'))?.code).toBe(400);
    expect(nameProblem(parseRequestInfo('GET', '/api/v1/namespaces/n/pods/web-1.a/log'))).toBeUndefined();
    // Other kinds have other name rules (RBAC names hold ':'); the tenant API server judges those.
    expect(nameProblem(parseRequestInfo('GET', '/apis/rbac.authorization.k8s.io/v1/clusterroles/system:x'))).toBeUndefined();
  });
});
