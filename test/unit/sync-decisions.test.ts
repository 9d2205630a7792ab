import { describe, expect, it } from 'vitest';
import type { KubeObject } from '../../src/k8s/client.js';
import { adoptClusterIP, allocatesClusterIP, compareClusterIPs, dryRunService, keepTwinIP, remadeWithTwinIP, withoutClusterIP } from '../../src/sync/cluster-ip.js';
import { decide, UNCLAIMED_WAIT_MS, type Facts } from '../../src/sync/decisions.js';
import { mirroredKinds, type ApplyContext, type MirroredKind } from '../../src/sync/kinds.js';
import { Translator } from '../../src/sync/translate.js';
import { parseValues } from '../../src/tenants/values.js';

const t = new Translator('demo');
const kinds = mirroredKinds(parseValues({ sync: { ingresses: { enabled: true } } }));
const kind = (name: string): MirroredKind => kinds.find((k) => k.kind === name)!;
const obj = (k: string, name: string, extra: Partial<KubeObject> & { uid?: string; deleting?: boolean } = {}): KubeObject => {
  const { uid = `uid-${name}`, deleting, ...rest } = extra;
  return { apiVersion: 'v1', kind: k, metadata: { name, namespace: 'shop', uid, ...(deleting ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}) }, ...rest };
};
/** The twin the translator makes of `origin`, as the host would have it. */
const twinOf = (k: string, origin: KubeObject, extra: Partial<KubeObject> & { deleting?: boolean } = {}): KubeObject => {
  const { deleting, ...rest } = extra;
  const twin = kind(k).toHost(t, origin);
  return { ...twin, ...rest, metadata: { ...twin.metadata, uid: `host-${origin.metadata.name}`, ...(deleting ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}) } };
};
const facts = (f: Partial<Facts>): Facts => ({ used: true, unclaimedForMs: 0, ...f });
const svc = (name: string, ip: string | undefined, extra: { uid?: string; type?: string } = {}): KubeObject =>
  obj('Service', name, { uid: extra.uid, spec: { ports: [{ port: 80 }], ...(ip ? { clusterIP: ip, clusterIPs: [ip] } : {}), ...(extra.type ? { type: extra.type } : {}) } });

describe('decide: given a tenant object and its twin, what to do', () => {
  const cm = obj('ConfigMap', 'settings');
  const pod = obj('Pod', 'web');

  it('deletes a twin whose origin is gone, and leaves nothing alone', () => {
    expect(decide(kind('ConfigMap'), facts({ twin: twinOf('ConfigMap', cm) }))).toEqual({ act: 'delete', why: 'orphan' });
    expect(decide(kind('ConfigMap'), facts({}))).toEqual({ act: 'leave', carryBack: false });
  });

  it('waits for an unclaimed twin (made first, no origin uid yet) before deleting it, by its own clock', () => {
    const unclaimed = twinOf('Service', svc('web', undefined, { uid: '' }));
    expect(decide(kind('Service'), facts({ twin: unclaimed }))).toEqual({ act: 'wait', ms: UNCLAIMED_WAIT_MS });
    expect(decide(kind('Service'), facts({ twin: unclaimed, unclaimedForMs: 10_000 }))).toEqual({ act: 'wait', ms: UNCLAIMED_WAIT_MS - 10_000 });
    expect(decide(kind('Service'), facts({ twin: unclaimed, unclaimedForMs: UNCLAIMED_WAIT_MS }))).toEqual({ act: 'delete', why: 'orphan' });
    // Once its tenant Service is stored, the twin is the origin's: written again, with its uid.
    expect(decide(kind('Service'), facts({ origin: svc('web', undefined), twin: unclaimed }))).toEqual({ act: 'update' });
  });

  it('creates a missing twin and updates an existing one', () => {
    expect(decide(kind('ServiceAccount'), facts({ origin: obj('ServiceAccount', 'default') }))).toEqual({ act: 'create' });
    const sa = obj('ServiceAccount', 'default');
    expect(decide(kind('ServiceAccount'), facts({ origin: sa, twin: twinOf('ServiceAccount', sa) }))).toEqual({ act: 'update' });
  });

  it('leaves what is never mirrored', () => {
    expect(decide(kind('Service'), facts({ origin: obj('Service', 'kubernetes', { metadata: { name: 'kubernetes', namespace: 'default' } }) }))).toEqual({ act: 'leave', carryBack: false });
  });

  it('mirrors a ConfigMap only while it is used, and removes its twin once it is not', () => {
    expect(decide(kind('ConfigMap'), facts({ origin: cm, used: false }))).toEqual({ act: 'leave', carryBack: false });
    expect(decide(kind('ConfigMap'), facts({ origin: cm, twin: twinOf('ConfigMap', cm), used: false }))).toEqual({ act: 'delete', why: 'unused' });
    expect(decide(kind('ConfigMap'), facts({ origin: cm, used: true }))).toEqual({ act: 'create' });
  });

  it('leaves a pod twin as it is and carries its status back; replaces the twin of an earlier pod of that name', () => {
    expect(decide(kind('Pod'), facts({ origin: pod, twin: twinOf('Pod', pod) }))).toEqual({ act: 'leave', carryBack: true });
    const earlier = twinOf('Pod', obj('Pod', 'web', { uid: 'old' }));
    expect(decide(kind('Pod'), facts({ origin: pod, twin: earlier }))).toEqual({ act: 'delete', why: 'earlier origin' });
  });

  it('deletes a deleting pod twin first, then finalizes the tenant pod once the twin is gone', () => {
    const deleting = obj('Pod', 'web', { deleting: true });
    expect(decide(kind('Pod'), facts({ origin: deleting, twin: twinOf('Pod', deleting) }))).toEqual({ act: 'delete', why: 'origin deleted' });
    expect(decide(kind('Pod'), facts({ origin: deleting, twin: twinOf('Pod', deleting, { deleting: true }) }))).toEqual({ act: 'leave', carryBack: false });
    expect(decide(kind('Pod'), facts({ origin: deleting }))).toEqual({ act: 'finalize' });
    // Other kinds are finalized by the tenant's own controllers (a PVC's protection): kept mirrored meanwhile.
    const pvc = obj('PersistentVolumeClaim', 'data', { deleting: true });
    expect(decide(kind('PersistentVolumeClaim'), facts({ origin: pvc, twin: twinOf('PersistentVolumeClaim', pvc) }))).toEqual({ act: 'update' });
  });

  it('replaces the twin of an earlier Service with another ClusterIP, and updates one that agrees', () => {
    const now = svc('web', '10.96.0.20');
    expect(decide(kind('Service'), facts({ origin: now, twin: twinOf('Service', svc('web', '10.96.0.10', { uid: 'old' })) }))).toEqual({ act: 'delete', why: 'earlier origin' });
    expect(decide(kind('Service'), facts({ origin: now, twin: twinOf('Service', svc('web', '10.96.0.20', { uid: 'old' })) }))).toEqual({ act: 'update' });
    // The host chose another IP for this very Service: the twin is kept, the tenant takes its IP.
    expect(decide(kind('Service'), facts({ origin: now, twin: twinOf('Service', svc('web', '10.96.0.30')) }))).toEqual({ act: 'update' });
  });
});

describe('one ClusterIP on both sides', () => {
  it('compares a tenant Service with its twin', () => {
    const cases: [string | undefined, string | undefined, boolean, string][] = [
      ['10.96.0.5', '10.96.0.5', true, 'agree'],
      ['10.96.0.5', '10.96.0.5', false, 'agree'],
      [undefined, '10.96.0.5', true, 'agree'],
      ['10.96.0.5', undefined, true, 'agree'],
      ['10.96.0.5', '10.96.0.9', true, 'tenant takes the twin IP'],
      ['10.96.0.5', '10.96.0.9', false, 'replace the twin'],
      ['None', '10.96.0.9', true, 'replace the twin'],
      ['10.96.0.5', 'None', true, 'replace the twin'],
    ];
    for (const [mine, theirs, sameUid, expected] of cases) {
      const origin = svc('web', mine);
      const twin = twinOf('Service', svc('web', theirs, { uid: sameUid ? 'uid-web' : 'other' }));
      expect(compareClusterIPs(origin, twin), `${mine} vs ${theirs}, same origin: ${sameUid}`).toBe(expected);
    }
  });

  it('writes the twin with its own IP when it keeps one, and otherwise with the tenant\'s', () => {
    const origin = svc('web', '10.96.0.5');
    const hostChose = twinOf('Service', svc('web', '10.96.0.9'));
    expect((keepTwinIP(origin, hostChose).spec as { clusterIPs: string[] }).clusterIPs).toEqual(['10.96.0.9']);
    expect(keepTwinIP(origin, undefined)).toBe(origin);
    expect(keepTwinIP(origin, twinOf('Service', svc('web', '10.96.0.9', { uid: 'old' })))).toBe(origin);
  });

  it('lets the host choose when it will not give the IP asked for, and only then', () => {
    const twin = t.service(svc('web', '10.96.0.5'));
    expect(withoutClusterIP(twin)?.spec).toEqual({ ports: [{ port: 80 }] });
    expect(withoutClusterIP(t.service(svc('web', undefined)))).toBeUndefined();
    expect(withoutClusterIP(t.service(svc('db', 'None')))).toBeUndefined();
  });

  it('makes a new Service on the host first unless it has no IP to agree on, and stores the host\'s IP', () => {
    expect(allocatesClusterIP(svc('web', undefined))).toBe(true);
    expect(allocatesClusterIP(svc('db', 'None'))).toBe(false);
    expect(allocatesClusterIP(svc('ext', undefined, { type: 'ExternalName' }))).toBe(false);
    const sent = svc('web', undefined);
    expect((adoptClusterIP(sent, twinOf('Service', svc('web', '10.96.3.4'))).spec as { clusterIP: string }).clusterIP).toBe('10.96.3.4');
    expect(adoptClusterIP(sent, twinOf('Service', svc('web', undefined)))).toBe(sent);
  });

  it('makes the tenant Service again with the twin\'s IP, as a new object', () => {
    const origin = { ...svc('web', '10.96.0.5'), metadata: { name: 'web', namespace: 'shop', uid: 'u', resourceVersion: '7', creationTimestamp: 'x', managedFields: [], labels: { app: 'web' } } };
    const again = remadeWithTwinIP(origin, twinOf('Service', svc('web', '10.96.0.9')));
    expect(again.metadata).toEqual({ name: 'web', namespace: 'shop', labels: { app: 'web' } });
    expect(again.spec).toMatchObject({ clusterIP: '10.96.0.9', clusterIPs: ['10.96.0.9'] });
  });

  it('asks a dry run about a twin without its IP (a dry run\'s is a placeholder), keeping headless ones headless', () => {
    expect((dryRunService(t.service(svc('web', '10.96.0.0'))).spec as { clusterIP?: string }).clusterIP).toBeUndefined();
    expect((dryRunService(t.service(svc('db', 'None'))).spec as { clusterIP?: string }).clusterIP).toBe('None');
  });
});

describe('what a tenant object takes over from its twin', () => {
  it('binds a pod to its twin\'s node and takes its status', () => {
    const pod = obj('Pod', 'web', { spec: { containers: [{ name: 'c' }] }, status: { phase: 'Pending' } });
    const twin = twinOf('Pod', pod, { spec: { nodeName: 'node-1' }, status: { phase: 'Running', podIP: '10.244.0.5' } });
    expect(kind('Pod').fromHost!(pod, twin)).toEqual([
      { change: 'bind', node: 'node-1' },
      { change: 'status', status: { phase: 'Running', podIP: '10.244.0.5' } },
    ]);
    const bound = { ...pod, spec: { nodeName: 'node-1' }, status: { phase: 'Running', podIP: '10.244.0.5' } };
    expect(kind('Pod').fromHost!(bound, twin)).toEqual([]);
  });

  it('takes a claim\'s status and a load balancer\'s, and a ClusterIP the host chose', () => {
    const pvc = obj('PersistentVolumeClaim', 'data', { status: { phase: 'Pending' } });
    expect(kind('PersistentVolumeClaim').fromHost!(pvc, twinOf('PersistentVolumeClaim', pvc, { status: { phase: 'Bound' } }))).toEqual([{ change: 'status', status: { phase: 'Bound' } }]);
    const lb = svc('web', '10.96.0.5');
    const withIngress = twinOf('Service', lb, { status: { loadBalancer: { ingress: [{ ip: '192.0.2.1' }] } } });
    expect(kind('Service').fromHost!(lb, withIngress)).toEqual([{ change: 'status', status: { loadBalancer: { ingress: [{ ip: '192.0.2.1' }] } } }]);
    const changes = kind('Service').fromHost!(lb, twinOf('Service', svc('web', '10.96.0.9')));
    expect(changes.map((c) => c.change)).toEqual(['remake']);
  });
});

describe('checks before a twin is written', () => {
  const context = (everywhere: KubeObject[], reachable?: ApplyContext['reachable']): ApplyContext => ({
    t,
    everywhere: async () => everywhere,
    reachable: reachable ?? (async () => { throw new Error('not asked'); }),
    issueToken: async () => { throw new Error('not asked'); },
    namespaces: async () => { throw new Error('not asked'); },
    hostHasPriorityClass: async () => { throw new Error('not asked'); },
  });
  const ingress = (ns: string, name: string, host: string, created = '2026-01-01T00:00:00Z'): KubeObject => ({
    apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name, namespace: ns, creationTimestamp: created }, spec: { rules: [{ host }] },
  });

  it('refuses an Ingress for a host name another host namespace serves, in the tenant\'s names', async () => {
    const mine = ingress('shop', 'site', 'shop.example.com');
    const prepared = await kind('Ingress').beforeApply!(mine, context([ingress('kplex-other', 'x', 'shop.example.com')]));
    expect('refused' in prepared && prepared.refused.message).toContain('ingresses.networking.k8s.io "site" is forbidden: host "shop.example.com" is already served');
    expect(await kind('Ingress').beforeApply!(mine, context([ingress('kplex-other', 'x', 'other.example.com')]))).toEqual({ origin: mine });
  });

  it('keeps only reachable Endpoints addresses and says which went', async () => {
    const ep = obj('Endpoints', 'db', { subsets: [{ addresses: [{ ip: '192.0.2.10' }] }] });
    const kept = { ...ep, subsets: [] };
    const prepared = await kind('Endpoints').beforeApply!(ep, context([], async () => ({ endpoints: kept, dropped: ['192.0.2.10'] })));
    expect(prepared).toEqual({ origin: kept, notice: expect.stringContaining(': 192.0.2.10') });
    expect(await kind('Endpoints').beforeApply!(ep, context([], async () => ({ endpoints: ep, dropped: [] })))).toEqual({ origin: ep, notice: undefined });
  });
});
