import { describe, expect, it } from 'vitest';
import { createdAsApplied } from '../../src/sync/managed-fields.js';

describe('createdAsApplied', () => {
  const created = { manager: 'kplex-syncer', operation: 'Update', apiVersion: 'v1', fieldsType: 'FieldsV1', fieldsV1: { 'f:spec': {} } };

  it("turns the writer's fields from a create into applied ones, testing the entry it changes", () => {
    const other = { manager: 'kube-controller-manager', operation: 'Update', subresource: 'status' };
    expect(createdAsApplied([other, created], 'kplex-syncer')).toEqual([
      { op: 'test', path: '/metadata/managedFields/1/manager', value: 'kplex-syncer' },
      { op: 'test', path: '/metadata/managedFields/1/operation', value: 'Update' },
      { op: 'replace', path: '/metadata/managedFields/1/operation', value: 'Apply' },
    ]);
  });

  it('leaves twins that have nothing to turn: applied already, written by others, or only a subresource', () => {
    expect(createdAsApplied([], 'kplex-syncer')).toBeUndefined();
    expect(createdAsApplied([{ ...created, operation: 'Apply' }], 'kplex-syncer')).toBeUndefined();
    // Both entries: the host keeps them apart; turning one would give the manager two applied sets.
    expect(createdAsApplied([created, { ...created, operation: 'Apply' }], 'kplex-syncer')).toBeUndefined();
    expect(createdAsApplied([{ ...created, manager: 'kubectl-edit' }], 'kplex-syncer')).toBeUndefined();
    expect(createdAsApplied([{ ...created, subresource: 'status' }], 'kplex-syncer')).toBeUndefined();
  });
});
