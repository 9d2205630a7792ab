import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hostName, type NameLimit } from '../../src/sync/names.js';

// Kubernetes' own validation rules (k8s.io/apimachinery/pkg/util/validation).
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Labels drawn from a small alphabet rich in 'x' and '-', so "-x-" and its edge cases come up often. */
const label = (max: number, first = 'abx0') =>
  fc
    .tuple(fc.constantFrom(...first.split('')), fc.stringMatching(/^[-ax0]*$/, { maxLength: max - 2 }), fc.constantFrom('a', 'x', '0'))
    .map(([a, mid, z]) => (max === 1 ? a : `${a}${mid}${z}`).slice(0, max))
    .filter((s) => DNS_LABEL.test(s));
const longLabel = (max: number) => fc.oneof(label(max), fc.string({ unit: fc.constantFrom('a', 'b', 'x', '-'), minLength: 40, maxLength: max }).map((s) => `a${s}a`.slice(0, max)).filter((s) => DNS_LABEL.test(s)));
const tenant = longLabel(57);
const namespace = longLabel(63);
const subdomainName = fc.array(longLabel(63), { minLength: 1, maxLength: 4 }).map((parts) => parts.join('.')).filter((s) => s.length <= 253);
const serviceName = longLabel(63).filter((s) => DNS_1035_LABEL.test(s));

const triple = fc.tuple(tenant, namespace, subdomainName);

describe('hostName (property tests)', () => {
  it('is always a valid DNS subdomain of at most 253 characters', () => {
    fc.assert(fc.property(triple, ([t, ns, n]) => {
      const h = hostName(t, ns, n, 253);
      expect(h.length).toBeLessThanOrEqual(253);
      expect(h).toMatch(DNS_SUBDOMAIN);
    }), { numRuns: 2000 });
  });

  it('is always a valid DNS-1035 label of at most 63 characters for Service names', () => {
    fc.assert(fc.property(tenant, namespace, serviceName, (t, ns, n) => {
      const h = hostName(t, ns, n, 63);
      expect(h.length).toBeLessThanOrEqual(63);
      expect(h).toMatch(DNS_1035_LABEL);
    }), { numRuns: 2000 });
  });

  it('is injective: different triples never share a host name, also with "-x-" in names', () => {
    for (const limit of [63, 253] as NameLimit[]) {
      fc.assert(fc.property(triple, triple, (a, b) => {
        fc.pre(a.join('/') !== b.join('/'));
        expect(hostName(...a, limit)).not.toBe(hostName(...b, limit));
      }), { numRuns: 5000 });
    }
  });

  it('is injective on triples built to collide in the plain form', () => {
    // Splitting the same string at different "-x-" places gives different triples.
    const splits = fc.tuple(fc.array(fc.constantFrom('a', 'x', 'b0'), { minLength: 3, maxLength: 7 })).map(([words]) => words.join('-x-'));
    fc.assert(fc.property(splits, (joined) => {
      const pieces = joined.split('-x-');
      const seen = new Map<string, string>();
      for (let i = 1; i < pieces.length - 1; i++) {
        for (let j = i + 1; j < pieces.length; j++) {
          const n = pieces.slice(0, i).join('-x-');
          const ns = pieces.slice(i, j).join('-x-');
          const t = pieces.slice(j).join('-x-');
          if (![n, ns, t].every((p) => DNS_LABEL.test(p) && p.length <= 57)) continue;
          const h = hostName(t, ns, n, 253);
          const key = `${t}/${ns}/${n}`;
          expect(seen.get(h) ?? key).toBe(key);
          seen.set(h, key);
        }
      }
    }), { numRuns: 2000 });
  });

  it('is deterministic', () => {
    fc.assert(fc.property(triple, ([t, ns, n]) => {
      expect(hostName(t, ns, n, 63)).toBe(hostName(t, ns, n, 63));
    }));
  });

  it('keeps short, plain names readable', () => {
    expect(hostName('demo', 'demo-nginx', 'web-7d9f-abcde', 253)).toBe('web-7d9f-abcde-x-demo-nginx-x-demo');
    expect(hostName('t', 'b', 'a-x', 253)).not.toBe(hostName('t', 'x-b', 'a', 253));
  });
});
