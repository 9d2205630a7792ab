import { describe, expect, it } from 'vitest';
import { judgedBeforeStored } from '../../src/gateway/admit.js';
import { mirroredKinds, type MirroredKind } from '../../src/sync/kinds.js';
import { parseValues } from '../../src/tenants/values.js';

const kinds = mirroredKinds(parseValues({ sync: { ingresses: { enabled: true } } }));
const kind = (name: string): MirroredKind => kinds.find((k) => k.kind === name)!;

describe('which writes through the gateway are judged before they are stored', () => {
  it('asks the host about an isolated tenant\'s new pods and Services, and checks Ingress host names for everyone', () => {
    const cases: [string, string, boolean, string, boolean][] = [
      ['Pod', 'create', true, '/api/v1/namespaces/a/pods', true],
      ['Pod', 'create', false, '/api/v1/namespaces/a/pods', false],
      ['Pod', 'create', true, '/api/v1/namespaces/a/pods?dryRun=All', false],
      ['Pod', 'patch', true, '/api/v1/namespaces/a/pods/p', false],
      ['Service', 'create', true, '/api/v1/namespaces/a/services', true],
      ['Service', 'update', true, '/api/v1/namespaces/a/services/s', false],
      ['Ingress', 'create', false, '/apis/networking.k8s.io/v1/namespaces/a/ingresses', true],
      ['Ingress', 'patch', false, '/apis/networking.k8s.io/v1/namespaces/a/ingresses/i', true],
      ['Ingress', 'delete', false, '/apis/networking.k8s.io/v1/namespaces/a/ingresses/i', false],
      ['ConfigMap', 'create', true, '/api/v1/namespaces/a/configmaps', false],
    ];
    for (const [k, verb, isolated, path, expected] of cases) expect(judgedBeforeStored(kind(k), verb, isolated, path), `${k} ${verb} isolated=${isolated} ${path}`).toBe(expected);
  });
});
