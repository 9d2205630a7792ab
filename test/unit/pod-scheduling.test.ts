import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { KubeObject } from '../../src/k8s/client.js';
import { mirroredKinds, type ApplyContext } from '../../src/sync/kinds.js';
import { hostLabelKey } from '../../src/sync/names.js';
import { needsNamespaces, priorityClassOnHost, resolveNamespaceSelectors, selects, type LabelSelector } from '../../src/sync/pod-scheduling.js';
import { Translator } from '../../src/sync/translate.js';
import { parseValues } from '../../src/tenants/values.js';

type Json = Record<string, any>;
const t = new Translator('demo');
const app = hostLabelKey('app');

const pod = (spec: Json, ns = 'shop', labels: Record<string, string> = { app: 'web' }, name = 'web-1'): KubeObject => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns, uid: 'u', labels }, spec: { containers: [{ name: 'c', image: 'nginx' }], ...spec },
});
const antiAffinity = (term: Json): Json => ({ affinity: { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ topologyKey: 'kubernetes.io/hostname', ...term }] } } });
const hostTerm = (p: KubeObject): Json => (t.pod(p).spec as Json).affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0];

describe('pod scheduling constraints on the host (examples)', () => {
  it("writes a required anti-affinity over the tenant namespace's twins, on the same node label", () => {
    expect(hostTerm(pod(antiAffinity({ labelSelector: { matchLabels: { app: 'web' } } })))).toEqual({
      topologyKey: 'kubernetes.io/hostname',
      labelSelector: { matchLabels: { [app]: 'web', 'kplex.dev/tenant': 'demo', 'kplex.dev/namespace': 'shop' } },
    });
  });

  it('scopes a term to the namespaces it names, or to every namespace of the tenant for {}', () => {
    const listed = hostTerm(pod(antiAffinity({ labelSelector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['web'] }] }, namespaces: ['b', 'a'] })));
    expect(listed.labelSelector).toEqual({
      matchLabels: { 'kplex.dev/tenant': 'demo' },
      matchExpressions: [{ key: app, operator: 'In', values: ['web'] }, { key: 'kplex.dev/namespace', operator: 'In', values: ['a', 'b'] }],
    });
    expect(listed).not.toHaveProperty('namespaces');
    const all = hostTerm(pod(antiAffinity({ labelSelector: {}, namespaceSelector: {} })));
    expect(all).toEqual({ topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: { 'kplex.dev/tenant': 'demo' }, matchExpressions: [{ key: 'kplex.dev/namespace', operator: 'Exists' }] } });
    // By name, with namespaces listed too: the union.
    const named = hostTerm(pod(antiAffinity({ labelSelector: {}, namespaces: ['a'], namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'c' } } })));
    expect(named.labelSelector.matchExpressions).toEqual([{ key: 'kplex.dev/namespace', operator: 'In', values: ['a', 'c'] }]);
  });

  it('resolves a namespace selector over labels against the tenant namespaces, and selects none unresolved', () => {
    const p = pod(antiAffinity({ labelSelector: {}, namespaceSelector: { matchLabels: { env: 'prod' } } }));
    expect(needsNamespaces(p)).toBe(true);
    // Not resolved (never on the write path): no namespace, rather than a guess.
    expect(hostTerm(p).labelSelector.matchExpressions).toEqual([{ key: 'kplex.dev/namespace', operator: 'In', values: [''] }]);
    const namespaces = [
      { metadata: { name: 'shop', labels: { env: 'prod', 'kubernetes.io/metadata.name': 'shop' } } },
      { metadata: { name: 'lab', labels: { env: 'dev', 'kubernetes.io/metadata.name': 'lab' } } },
      { metadata: { name: 'bank', labels: { env: 'prod', 'kubernetes.io/metadata.name': 'bank' } } },
    ];
    const resolved = resolveNamespaceSelectors(p, namespaces);
    expect(needsNamespaces(resolved)).toBe(false);
    expect(hostTerm(resolved).labelSelector.matchExpressions).toEqual([{ key: 'kplex.dev/namespace', operator: 'In', values: ['bank', 'shop'] }]);
    expect(hostTerm(resolveNamespaceSelectors(p, namespaces.slice(1, 2))).labelSelector.matchExpressions).toEqual([{ key: 'kplex.dev/namespace', operator: 'In', values: [''] }]);
    // The tenant pod itself is left as it was.
    expect((p.spec as Json).affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].namespaceSelector).toEqual({ matchLabels: { env: 'prod' } });
  });

  it('keeps a term without a selector selecting nothing', () => {
    expect(hostTerm(pod(antiAffinity({ namespaceSelector: {}, matchLabelKeys: ['app'] })))).toEqual({ topologyKey: 'kubernetes.io/hostname' });
  });

  it('merges matchLabelKeys and mismatchLabelKeys once, as the API server does, and leaves the fields to no one', () => {
    const labels = { app: 'web', 'pod-template-hash': 'abc' };
    const term = { labelSelector: { matchLabels: { app: 'web' } }, matchLabelKeys: ['pod-template-hash'], mismatchLabelKeys: ['team'] };
    const fresh = hostTerm(pod(antiAffinity(term), 'shop', labels));
    const merged = { key: hostLabelKey('pod-template-hash'), operator: 'In', values: ['abc'] };
    expect(fresh.labelSelector.matchExpressions).toEqual([merged]);
    expect(fresh).not.toHaveProperty('matchLabelKeys');
    expect(fresh).not.toHaveProperty('mismatchLabelKeys');
    // As the tenant's API server stored it, merged already: not twice.
    const stored = { ...term, labelSelector: { ...term.labelSelector, matchExpressions: [{ key: 'pod-template-hash', operator: 'In', values: ['abc'] }] } };
    expect(hostTerm(pod(antiAffinity(stored), 'shop', labels)).labelSelector.matchExpressions).toEqual([merged]);
  });

  it('scopes topology spread constraints to the pod namespace and keeps their other fields', () => {
    const spec = t.pod(pod({
      topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'zone', whenUnsatisfiable: 'DoNotSchedule', minDomains: 3, labelSelector: { matchLabels: { app: 'web' } }, matchLabelKeys: ['pod-template-hash'], somethingNew: 1 }],
    }, 'shop', { app: 'web', 'pod-template-hash': 'abc' })).spec as Json;
    expect(spec.topologySpreadConstraints).toEqual([{
      maxSkew: 1, topologyKey: 'zone', whenUnsatisfiable: 'DoNotSchedule', minDomains: 3,
      labelSelector: { matchLabels: { [app]: 'web', 'kplex.dev/tenant': 'demo', 'kplex.dev/namespace': 'shop' }, matchExpressions: [{ key: hostLabelKey('pod-template-hash'), operator: 'In', values: ['abc'] }] },
    }]);
  });

  it('keeps what selects nodes: nodeSelector, node affinity, tolerations', () => {
    const nodeAffinity = { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] }] } };
    const tolerations = [{ key: 'kwok.x-k8s.io/node', operator: 'Exists', effect: 'NoSchedule' }];
    const spec = t.pod(pod({ nodeSelector: { 'kubernetes.io/os': 'linux' }, affinity: { nodeAffinity }, tolerations })).spec as Json;
    expect(spec.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux' });
    expect(spec.affinity).toEqual({ nodeAffinity });
    expect(spec.tolerations).toEqual(tolerations);
  });

  it('gives a StatefulSet pod its own name as hostname and the translated headless Service as subdomain', () => {
    const spec = t.pod(pod({ hostname: 'db-0', subdomain: 'db' }, 'shop', {}, 'db-0')).spec as Json;
    expect(spec.hostname).toBe('db-0');
    expect(spec.subdomain).toBe(t.name('shop', 'db', 'Service'));
    expect((t.pod(pod({}, 'shop', {}, 'web-1')).spec as Json).hostname).toBe('web-1');
    // A name that is no DNS label cannot be a hostname: the host names the pod after its twin.
    expect(t.pod(pod({}, 'shop', {}, 'a.b')).spec).not.toHaveProperty('hostname');
    expect((t.pod(pod({}, 'shop', {}, `${'a'.repeat(62)}-b`)).spec as Json).hostname).toBe('a'.repeat(62));
  });

  it('honours a priority class only when the host has it, and never a system- one', () => {
    expect(priorityClassOnHost('high', true)).toEqual({ keep: true });
    expect(priorityClassOnHost('high', false)).toEqual({ keep: false, why: expect.stringContaining('the host cluster has no PriorityClass of that name') });
    expect(priorityClassOnHost('system-node-critical', true)).toEqual({ keep: false, why: expect.stringContaining('system- priority classes are the host cluster') });
    expect(t.pod(pod({ priorityClassName: 'system-cluster-critical' })).spec).not.toHaveProperty('priorityClassName');
  });

  it("prepares a pod on the write path: namespaces resolved, a priority class the host lacks left out with a notice", async () => {
    const kind = mirroredKinds(parseValues({})).find((k) => k.kind === 'Pod')!;
    const asked: string[] = [];
    const context: ApplyContext = {
      t,
      everywhere: async () => [],
      reachable: async () => { throw new Error('not asked'); },
      issueToken: async () => { throw new Error('not asked'); },
      namespaces: async () => {
        asked.push('namespaces');
        return [{ metadata: { name: 'shop', labels: { env: 'prod' } } }];
      },
      hostHasPriorityClass: async (name) => {
        asked.push(name);
        return name === 'high';
      },
    };
    const p = pod({ ...antiAffinity({ labelSelector: {}, namespaceSelector: { matchLabels: { env: 'prod' } } }), priorityClassName: 'low' });
    const prepared = await kind.beforeApply!(p, context);
    expect(asked).toEqual(['namespaces', 'low']);
    if ('refused' in prepared) throw new Error('refused');
    expect(prepared.notice).toContain('priorityClassName "low" left out on the host');
    expect(prepared.origin.spec).not.toHaveProperty('priorityClassName');
    expect(hostTerm(prepared.origin).labelSelector.matchLabels['kplex.dev/namespace']).toBe('shop');
    asked.length = 0;
    const plain = pod({ priorityClassName: 'high' });
    expect(await kind.beforeApply!(plain, context)).toEqual({ origin: plain });
    expect(asked).toEqual(['high']);
  });
});

describe('label selectors', () => {
  it("select by Kubernetes' rules; null selects nothing, {} everything", () => {
    const labels = { app: 'web', tier: 'front' };
    expect(selects(null, labels)).toBe(false);
    expect(selects({}, labels)).toBe(true);
    expect(selects({ matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['back'] }, { key: 'x', operator: 'DoesNotExist' }] }, labels)).toBe(true);
    expect(selects({ matchExpressions: [{ key: 'x', operator: 'NotIn', values: ['a'] }] }, labels)).toBe(true);
    expect(selects({ matchExpressions: [{ key: 'app', operator: 'Exists' }, { key: 'tier', operator: 'In', values: ['back'] }] }, labels)).toBe(false);
    expect(selects({ matchExpressions: [{ key: 'app', operator: 'Gt', values: ['1'] }] }, labels)).toBe(false);
  });
});

// Property: a tenant pod's terms, once on the host, select exactly the twins of the pods they select in
// the tenant (same labels, namespaces by Kubernetes' rules), and never a twin of another tenant, whatever
// the keys: tenant label keys that read like kplex's own scoping labels included.

const NAMESPACES = ['shop', 'lab', 'bank'];
const KEYS = ['app', 'tier', 'pod-template-hash', 'kplex.dev/tenant', 'kplex.dev/namespace', 'app.kubernetes.io/managed-by', 'kubernetes.io/metadata.name'];
const VALUES = ['web', 'db', 'demo', 'other', 'shop', 'kplex'];
const key = fc.constantFrom(...KEYS);
const value = fc.constantFrom(...VALUES);
const labels = fc.dictionary(key, value, { maxKeys: 4 });
const requirement = fc.oneof(
  fc.record({ key, operator: fc.constantFrom('In', 'NotIn'), values: fc.uniqueArray(value, { minLength: 1, maxLength: 3 }) }),
  fc.record({ key, operator: fc.constantFrom('Exists', 'DoesNotExist') }),
);
const selector: fc.Arbitrary<LabelSelector> = fc.record({ matchLabels: fc.dictionary(key, value, { maxKeys: 2 }), matchExpressions: fc.array(requirement, { maxLength: 3 }) }, { requiredKeys: [] });
const nsLabels = fc.dictionary(fc.constantFrom('env', 'team'), fc.constantFrom('prod', 'dev', 'a'), { maxKeys: 2 });
const namespaceSelector = fc.oneof(
  fc.constant({}),
  fc.record({ matchLabels: fc.dictionary(fc.constantFrom('env', 'team'), fc.constantFrom('prod', 'dev', 'a'), { maxKeys: 2 }) }),
  fc.record({ matchExpressions: fc.array(fc.record({ key: fc.constantFrom('env', 'team'), operator: fc.constantFrom('In', 'NotIn'), values: fc.constant(['prod']) }), { minLength: 1, maxLength: 2 }) }),
  fc.uniqueArray(fc.constantFrom(...NAMESPACES, 'gone'), { maxLength: 2 }).map((names) => ({ matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: names.length ? names : ['gone'] }] })),
);
const term = fc.record({
  labelSelector: fc.option(selector, { nil: undefined }),
  namespaces: fc.option(fc.uniqueArray(fc.constantFrom(...NAMESPACES, 'gone'), { maxLength: 2 }), { nil: undefined }),
  namespaceSelector: fc.option(namespaceSelector, { nil: undefined }),
  matchLabelKeys: fc.uniqueArray(fc.constantFrom('app', 'pod-template-hash'), { maxLength: 1 }),
  mismatchLabelKeys: fc.uniqueArray(fc.constantFrom('tier'), { maxLength: 1 }),
}, { requiredKeys: [] }).map((x) => ({ topologyKey: 'kubernetes.io/hostname', ...x }));
const candidate = fc.record({ tenant: fc.constantFrom('demo', 'other'), namespace: fc.constantFrom(...NAMESPACES), labels });

/** What the term selects in the tenant, written from the API reference apart from the code under test. */
function selectsInTenant(term: Json, own: { namespace: string; labels: Record<string, string> }, namespaces: Record<string, Record<string, string>>, q: { namespace: string; labels: Record<string, string> }): boolean {
  if (!term.labelSelector) return false;
  const sel: LabelSelector = { matchLabels: term.labelSelector.matchLabels, matchExpressions: [...(term.labelSelector.matchExpressions ?? [])] };
  for (const k of term.matchLabelKeys ?? []) if (k in own.labels) sel.matchExpressions!.push({ key: k, operator: 'In', values: [own.labels[k]!] });
  for (const k of term.mismatchLabelKeys ?? []) if (k in own.labels) sel.matchExpressions!.push({ key: k, operator: 'NotIn', values: [own.labels[k]!] });
  const listed: string[] = term.namespaces ?? [];
  const inScope = term.namespaceSelector
    ? listed.includes(q.namespace) || selects(term.namespaceSelector, { ...namespaces[q.namespace], 'kubernetes.io/metadata.name': q.namespace })
    : (listed.length ? listed : [own.namespace]).includes(q.namespace);
  return inScope && selects(sel, q.labels);
}

describe('pod scheduling constraints on the host (properties)', () => {
  it("select exactly the tenant's own twins the tenant term selects, and no other tenant's", () => {
    fc.assert(fc.property(
      term, fc.constantFrom(...NAMESPACES), labels, fc.tuple(nsLabels, nsLabels, nsLabels), fc.array(candidate, { minLength: 1, maxLength: 6 }), fc.boolean(),
      (tm, ns, own, nsl, others, anti) => {
        const namespaces = Object.fromEntries(NAMESPACES.map((n, i) => [n, nsl[i]!]));
        const kind = anti ? 'podAntiAffinity' : 'podAffinity';
        const p = pod({ affinity: { [kind]: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 10, podAffinityTerm: tm }] } } }, ns, own);
        const namespaceObjects = NAMESPACES.map((n) => ({ metadata: { name: n, labels: { ...namespaces[n], 'kubernetes.io/metadata.name': n } } }));
        const host = t.pod(resolveNamespaceSelectors(p, namespaceObjects)).spec as Json;
        const hostTerm = host.affinity[kind].preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm;
        expect(Object.keys(hostTerm).every((k) => k === 'topologyKey' || k === 'labelSelector')).toBe(true);
        for (const q of others) {
          const twinLabels = new Translator(q.tenant).labels(q.namespace, q.labels);
          const onHost = selects(hostTerm.labelSelector, twinLabels);
          if (q.tenant !== 'demo') expect(onHost).toBe(false);
          else expect(onHost).toBe(selectsInTenant(tm, { namespace: ns, labels: own }, namespaces, q));
          // Nor a host pod that is not a twin (the tenant's control plane, in the cluster provider), whatever its other labels.
          const { 'kplex.dev/namespace': _ns, ...notTwin } = q.labels;
          expect(selects(hostTerm.labelSelector, { ...notTwin, 'kplex.dev/tenant': 'demo' })).toBe(false);
        }
      },
    ), { numRuns: 1000 });
  });

  it('count, for topology spread, exactly the twins of the pod namespace the tenant constraint counts', () => {
    fc.assert(fc.property(
      fc.option(selector, { nil: undefined }), fc.uniqueArray(fc.constantFrom('app', 'pod-template-hash'), { maxLength: 2 }), fc.constantFrom(...NAMESPACES), labels, fc.array(candidate, { minLength: 1, maxLength: 6 }),
      (sel, matchLabelKeys, ns, own, others) => {
        const c = { maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'DoNotSchedule', ...(sel ? { labelSelector: sel } : {}), matchLabelKeys };
        const hostSel = (t.pod(pod({ topologySpreadConstraints: [c] }, ns, own)).spec as Json).topologySpreadConstraints[0].labelSelector;
        for (const q of others) {
          const onHost = selects(hostSel, new Translator(q.tenant).labels(q.namespace, q.labels));
          const inTenant = q.tenant === 'demo' && selectsInTenant({ labelSelector: sel, matchLabelKeys }, { namespace: ns, labels: own }, {}, q);
          expect(onHost).toBe(inTenant);
        }
      },
    ), { numRuns: 500 });
  });
});
