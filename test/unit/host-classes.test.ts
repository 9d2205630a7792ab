import { describe, expect, it } from 'vitest';
import { classAction, tenantClass } from '../../src/sync/host-classes.js';
import { PRIORITY_CLASS } from '../../src/sync/priority-classes.js';

describe('host PriorityClasses in a tenant', () => {
  const host = { apiVersion: 'scheduling.k8s.io/v1', kind: 'PriorityClass', metadata: { name: 'high', uid: 'h', resourceVersion: '9', annotations: { 'team/owner': 'platform' } }, value: 1000, description: 'for the important' };

  it('shows its value and description, marked as the host\'s, without the host\'s metadata', () => {
    expect(tenantClass(PRIORITY_CLASS, host)).toEqual({
      apiVersion: 'scheduling.k8s.io/v1',
      kind: 'PriorityClass',
      metadata: { name: 'high', labels: { 'kplex.dev/host-priority-class': 'true' }, annotations: {} },
      value: 1000,
      description: 'for the important',
    });
  });

  it('undoes a tenant\'s change: in place where the API server allows it, else by making it again', () => {
    const desired = tenantClass(PRIORITY_CLASS, host);
    expect(classAction(PRIORITY_CLASS, undefined, desired)).toBe('create');
    expect(classAction(PRIORITY_CLASS, { ...desired, metadata: { ...desired.metadata, uid: 't' } }, desired)).toBe('leave');
    expect(classAction(PRIORITY_CLASS, { ...desired, description: 'mine now' }, desired)).toBe('update');
    expect(classAction(PRIORITY_CLASS, { ...desired, globalDefault: true }, desired)).toBe('update');
    expect(classAction(PRIORITY_CLASS, { ...desired, value: 1_000_000_000 }, desired)).toBe('replace');
    // A tenant's own class of that name, without the mark: the host's replaces it.
    expect(classAction(PRIORITY_CLASS, { ...desired, metadata: { name: 'high' }, value: 5 }, desired)).toBe('replace');
  });

  it('never touches the system- classes every API server has', () => {
    expect(PRIORITY_CLASS.hidden?.('system-node-critical')).toBe(true);
    expect(PRIORITY_CLASS.hidden?.('high')).toBe(false);
  });
});
