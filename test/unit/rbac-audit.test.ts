import { describe, expect, it } from 'vitest';
import { granted, used, type AuditEvent } from '../e2e/rbac-audit.js';

const USER = 'system:serviceaccount:kplex-system:kplex-gateway';
const event = (verb: string, resource: string, more: Partial<AuditEvent> & { subresource?: string; apiGroup?: string } = {}): AuditEvent => ({
  stage: 'ResponseComplete',
  requestReceivedTimestamp: '2026-12-01T00:00:00Z',
  verb,
  user: { username: USER },
  objectRef: { resource, ...(more.subresource ? { subresource: more.subresource } : {}), ...(more.apiGroup ? { apiGroup: more.apiGroup } : {}) },
  ...(more.responseStatus ? { responseStatus: more.responseStatus } : {}),
  ...(more.annotations ? { annotations: more.annotations } : {}),
});

describe('the RBAC audit check of the install test', () => {
  it('expands rules into permissions and refuses wildcards', () => {
    expect([...granted([{ apiGroups: ['', 'apps'], resources: ['pods'], verbs: ['get', 'list'] }])].sort()).toEqual(['apps/pods get', 'apps/pods list', 'core/pods get', 'core/pods list']);
    expect(() => granted([{ apiGroups: ['*'], resources: ['pods'], verbs: ['get'] }])).toThrow(/wildcard/);
  });

  it('counts an apply that made the object, and a WebSocket exec, as create too; refusals apart; other users ignored', () => {
    const { allowed, forbidden } = used([
      event('patch', 'namespaces', { responseStatus: { code: 201 } }),
      event('patch', 'services', { responseStatus: { code: 200 } }),
      event('get', 'pods', { subresource: 'exec' }),
      event('get', 'pods', { subresource: 'log' }),
      event('update', 'leases', { apiGroup: 'coordination.k8s.io', annotations: { 'authorization.k8s.io/decision': 'forbid' } }),
      { ...event('delete', 'nodes'), user: { username: 'admin' } },
      { ...event('get', 'secrets'), stage: 'RequestReceived' },
    ], USER);
    expect([...allowed].sort()).toEqual(['core/namespaces create', 'core/namespaces patch', 'core/pods/exec create', 'core/pods/exec get', 'core/pods/log get', 'core/services patch']);
    expect([...forbidden]).toEqual(['coordination.k8s.io/leases update']);
  });
});
