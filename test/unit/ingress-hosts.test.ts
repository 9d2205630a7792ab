import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { KubeObject } from '../../src/k8s/client.js';
import { hostsOverlap, hostTaken, hostTakenElsewhere, ingressHosts } from '../../src/sync/ingress-hosts.js';

const ingress = (namespace: string, name: string, hosts: (string | undefined)[], opts: { tls?: string[]; created?: string } = {}): KubeObject => ({
  metadata: { namespace, name, creationTimestamp: opts.created ?? '2026-01-01T00:00:00Z' },
  spec: {
    rules: hosts.map((host) => ({ ...(host === undefined ? {} : { host }), http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { number: 80 } } } }] } })),
    ...(opts.tls ? { tls: [{ hosts: opts.tls, secretName: 'tls' }] } : {}),
  },
});

describe('ingressHosts', () => {
  it('lists rule and TLS hosts in lower case, once each; a rule without a host claims the empty name', () => {
    expect(ingressHosts(ingress('ns', 'a', ['Shop.Example.com', undefined], { tls: ['shop.example.com', 'pay.example.com'] }))).toEqual(['shop.example.com', '', 'pay.example.com']);
    expect(ingressHosts({ metadata: { name: 'x' }, spec: { defaultBackend: { service: { name: 'web' } } } })).toEqual([]);
  });
});

describe('hostsOverlap', () => {
  it('is equality, or a wildcard covering exactly one more label', () => {
    expect(hostsOverlap('a.example.com', 'a.example.com')).toBe(true);
    expect(hostsOverlap('*.example.com', 'a.example.com')).toBe(true);
    expect(hostsOverlap('a.example.com', '*.example.com')).toBe(true);
    expect(hostsOverlap('*.example.com', 'example.com')).toBe(false);
    expect(hostsOverlap('*.example.com', 'a.b.example.com')).toBe(false);
    expect(hostsOverlap('*.example.com', 'aexample.com')).toBe(false);
    expect(hostsOverlap('*.example.com', '*.b.example.com')).toBe(false);
    expect(hostsOverlap('', 'a.example.com')).toBe(false);
    expect(hostsOverlap('', '')).toBe(true);
  });

  it('is symmetric', () => {
    const name = fc.array(fc.constantFrom('a', 'b', 'example', 'com', '*'), { minLength: 1, maxLength: 4 }).map((ls) => ls.join('.'));
    fc.assert(fc.property(name, name, (a, b) => hostsOverlap(a, b) === hostsOverlap(b, a)), { numRuns: 1000 });
  });
});

describe('hostTakenElsewhere', () => {
  const mine = 'kplex-demo';
  const theirs = ingress('kplex-other', 'shop-x-web-x-other', ['shop.example.com'], { created: '2026-01-01T00:00:00Z' });

  it('refuses a name an Ingress of another host namespace serves, first come, first served', () => {
    expect(hostTakenElsewhere(ingress('web', 'shop', ['shop.example.com']), mine, [theirs])).toBe('shop.example.com');
    expect(hostTakenElsewhere(ingress('web', 'shop', ['new.example.com'], { tls: ['shop.example.com'] }), mine, [theirs])).toBe('shop.example.com');
    expect(hostTakenElsewhere(ingress('web', 'shop', ['x.example.com']), mine, [ingress('platform', 'all', ['*.example.com'])])).toBe('x.example.com');
    expect(hostTakenElsewhere(ingress('web', 'shop', ['free.example.com']), mine, [theirs])).toBeUndefined();
  });

  it("shares names among the tenant's own namespaces (one host namespace)", () => {
    expect(hostTakenElsewhere(ingress('web', 'shop', ['shop.example.com']), mine, [ingress(mine, 'shop-x-other-ns-x-demo', ['shop.example.com'])])).toBeUndefined();
  });

  it('keeps a twin that came first: the later claim is the one to go, whichever side looks', () => {
    const early = ingress(mine, 'shop-x-web-x-demo', ['shop.example.com'], { created: '2025-12-31T00:00:00Z' });
    const late = ingress(mine, 'shop-x-web-x-demo', ['shop.example.com'], { created: '2026-01-02T00:00:00Z' });
    expect(hostTakenElsewhere(ingress('web', 'shop', ['shop.example.com']), mine, [theirs, early], early)).toBeUndefined();
    expect(hostTakenElsewhere(ingress('web', 'shop', ['shop.example.com']), mine, [theirs, late], late)).toBe('shop.example.com');
    // The same second: the order of namespace/name decides, the same way on both sides.
    const same = ingress(mine, 'shop-x-web-x-demo', ['shop.example.com'], { created: '2026-01-01T00:00:00Z' });
    const forMine = hostTakenElsewhere(ingress('web', 'shop', ['shop.example.com']), mine, [theirs, same], same);
    const forTheirs = hostTakenElsewhere(ingress('web', 'shop', ['shop.example.com']), 'kplex-other', [theirs, same], theirs);
    expect([forMine, forTheirs].filter((x) => x === undefined)).toHaveLength(1);
  });

  it('treats two rules without a host as one claim', () => {
    expect(hostTakenElsewhere(ingress('web', 'site', [undefined]), mine, [ingress('kplex-other', 'site-x-a-x-other', [undefined])])).toBe('');
    expect(hostTakenElsewhere(ingress('web', 'site', [undefined]), mine, [theirs])).toBeUndefined();
  });
});

describe('hostTaken', () => {
  it('is a 403 Status naming the host name, not who holds it', () => {
    const s = hostTaken('shop', 'shop.example.com').toStatus();
    expect(s).toMatchObject({ kind: 'Status', code: 403, reason: 'Forbidden', details: { name: 'shop', group: 'networking.k8s.io', kind: 'ingresses' } });
    expect(s.message).toBe('ingresses.networking.k8s.io "shop" is forbidden: host "shop.example.com" is already served by another namespace of the host cluster (first come, first served)');
    expect(hostTaken('site', '').message).toContain('a rule without a host (every host name)');
  });
});
