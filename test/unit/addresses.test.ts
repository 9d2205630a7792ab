import { BlockList } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { allowedExternalIPs, endpointAddressFilter, formatIP, inCIDR, parseCIDR, parseIP, reachableEndpoints, type EndpointFacts } from '../../src/sync/addresses.js';
import { hostNetworkFacts } from '../../src/sync/host-networks.js';
import { Translator } from '../../src/sync/translate.js';
import { parseValues } from '../../src/tenants/values.js';

const v4 = fc.integer({ min: 0, max: 2 ** 32 - 1 }).map((n) => ({ family: 4 as const, value: BigInt(n) }));
// Groups that are often zero, so runs of zeros (and "::") come up.
const v6 = fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })), { minLength: 8, maxLength: 8 })
  .map((gs) => ({ family: 6 as const, value: gs.reduce((n, g) => (n << 16n) | BigInt(g), 0n) }))
  .filter((ip) => ip.value >> 32n !== 0xffffn);

describe('parseIP and formatIP', () => {
  it('reads the forms the API server accepts, IPv4-mapped IPv6 as IPv4 and leading zeros as decimal', () => {
    expect(parseIP('10.244.0.5')).toEqual({ family: 4, value: 0x0af40005n });
    expect(parseIP('010.244.000.005')).toEqual(parseIP('10.244.0.5'));
    expect(parseIP('::ffff:10.244.0.5')).toEqual(parseIP('10.244.0.5'));
    expect(parseIP('::FFFF:0af4:0005')).toEqual(parseIP('10.244.0.5'));
    expect(parseIP('fd00::1')).toEqual({ family: 6, value: (0xfd00n << 112n) | 1n });
    expect(parseIP('::')).toEqual({ family: 6, value: 0n });
    for (const bad of ['', '1.2.3', '1.2.3.256', '1.2.3.4/32', 'fe80::1%eth0', '1::2::3', ':1', '1:2:3:4:5:6:7:8:9', 'db.example.com', '1:2:3:4:5:6:7::8']) {
      expect(parseIP(bad), bad).toBeUndefined();
    }
  });

  it('writes IPv6 as RFC 5952 does (what the API server writes), and reads it back', () => {
    fc.assert(fc.property(fc.oneof(v4, v6), (ip) => {
      const text = formatIP(ip);
      expect(parseIP(text)).toEqual(ip);
      if (ip.family === 6) expect(`[${text}]`).toBe(new URL(`http://[${text}]/`).hostname);
    }), { numRuns: 2000 });
  });
});

describe('parseCIDR and inCIDR', () => {
  it('agree with node:net BlockList', () => {
    const cidr = (gen: fc.Arbitrary<{ family: 4 | 6; value: bigint }>, max: number) => fc.tuple(gen, fc.integer({ min: 0, max }));
    fc.assert(fc.property(fc.oneof(fc.tuple(cidr(v4, 32), v4), fc.tuple(cidr(v6, 128), v6)), ([[base, bits], ip]) => {
      const text = `${formatIP(base)}/${bits}`;
      const parsed = parseCIDR(text)!;
      const type = ip.family === 4 ? 'ipv4' : 'ipv6';
      const list = new BlockList();
      list.addSubnet(formatIP(base), bits, type);
      expect(inCIDR(ip, parsed)).toBe(list.check(formatIP(ip), type));
      expect(inCIDR(base, parsed)).toBe(true);
    }), { numRuns: 2000 });
  });

  it('refuses what is not a CIDR, and reads an IPv4-mapped prefix as its IPv4 prefix', () => {
    for (const bad of ['10.0.0.0', '10.0.0.0/33', '::/129', '10.0.0.0/-1', '10.0.0.0/8/8', 'x/8']) expect(parseCIDR(bad), bad).toBeUndefined();
    expect(parseCIDR('::ffff:10.0.0.0/104')).toEqual(parseCIDR('10.0.0.0/8'));
    expect(parseCIDR('10.1.2.3/8')).toEqual({ family: 4, bits: 8, value: 0x0a000000n });
  });
});

describe('allowedExternalIPs', () => {
  it('keeps none by default, only those inside the allowed CIDRs otherwise, never loopback or link-local', () => {
    expect(allowedExternalIPs(['203.0.113.7', '10.96.0.1'], [])).toEqual([]);
    expect(allowedExternalIPs(['203.0.113.7', '198.51.100.1', '::ffff:203.0.113.8', 'nonsense'], ['203.0.113.0/24'])).toEqual(['203.0.113.7', '::ffff:203.0.113.8']);
    expect(allowedExternalIPs(['127.0.0.1', '169.254.169.254', '::1', '10.0.0.1'], ['0.0.0.0/0', '::/0'])).toEqual(['10.0.0.1']);
    expect(allowedExternalIPs(undefined, ['0.0.0.0/0'])).toEqual([]);
  });

  it('is what the host Service keeps, with the tenant values deciding', () => {
    const svc = { metadata: { name: 'web', namespace: 'shop' }, spec: { ports: [{ port: 80 }], externalIPs: ['203.0.113.7', '8.8.8.8'] } };
    const t = new Translator('demo');
    expect(t.service(svc).spec).not.toHaveProperty('externalIPs');
    expect((t.service(svc, ['203.0.113.0/24']).spec as { externalIPs: string[] }).externalIPs).toEqual(['203.0.113.7']);
    expect(svc.spec.externalIPs).toEqual(['203.0.113.7', '8.8.8.8']);
    // The tenant API server defaults externalTrafficPolicy for a Service with external IPs; without them
    // a ClusterIP Service may not carry it, but a NodePort one keeps it.
    const defaulted = { ...svc, spec: { ...svc.spec, externalTrafficPolicy: 'Cluster' } };
    expect(t.service(defaulted).spec).not.toHaveProperty('externalTrafficPolicy');
    expect(t.service(defaulted, ['203.0.113.0/24']).spec).toHaveProperty('externalTrafficPolicy', 'Cluster');
    expect(t.service({ ...defaulted, spec: { ...defaulted.spec, type: 'NodePort' } }).spec).toHaveProperty('externalTrafficPolicy', 'Cluster');
  });

  it('takes its CIDRs from sync.services.externalIPs.allowedCIDRs, validated', () => {
    expect(parseValues({}).sync.services.externalIPs.allowedCIDRs).toEqual([]);
    expect(parseValues({ sync: { services: { externalIPs: { allowedCIDRs: ['203.0.113.0/24', 'fd00::/64'] } } } }).sync.services.externalIPs.allowedCIDRs).toEqual(['203.0.113.0/24', 'fd00::/64']);
    expect(() => parseValues({ sync: { services: { externalIPs: { allowedCIDRs: ['203.0.113.7'] } } } })).toThrow(/sync\.services\.externalIPs\.allowedCIDRs\.0: not a CIDR/);
    expect(() => parseValues({ sync: { services: { externalIps: {} } } })).toThrow(/Unrecognized key/);
  });
});

describe('Endpoints addresses', () => {
  const facts: EndpointFacts = {
    podCIDRs: ['10.244.0.0/24', '10.244.1.0/24'],
    serviceCIDRs: ['10.96.0.0/16', 'fd00:96::/112'],
    nodeIPs: ['192.168.1.10'],
    tenantPodIPs: ['10.244.0.7'],
    otherPodIPs: ['172.16.5.5'],
  };

  it("drops another workload's pods, host Services, nodes, loopback and link-local; keeps the tenant's pods and the outside", () => {
    const ok = endpointAddressFilter(facts);
    const decide = (ips: string[]) => ips.filter(ok);
    expect(decide(['10.244.0.7', '010.244.000.007', '::ffff:10.244.0.7'])).toHaveLength(3);
    expect(decide(['10.244.0.8', '10.244.1.3', '::ffff:10.244.1.3', '10.96.0.10', 'fd00:96::a', '192.168.1.10', '172.16.5.5'])).toEqual([]);
    expect(decide(['127.0.0.1', '127.9.9.9', '::1', '169.254.169.254', 'fe80::1', '0.0.0.0', '::', 'not-an-ip'])).toEqual([]);
    expect(decide(['192.0.2.10', '10.245.0.1', '2001:db8::5'])).toEqual(['192.0.2.10', '10.245.0.1', '2001:db8::5']);
    // Loopback and link-local go whatever the facts, even the tenant's own pod list.
    expect(endpointAddressFilter({ podCIDRs: [], serviceCIDRs: [], nodeIPs: [], tenantPodIPs: ['127.0.0.1'], otherPodIPs: [] })('127.0.0.1')).toBe(false);
  });

  it('keeps an address only if it is the tenant pod or outside every host network (property)', () => {
    const cidrs = [...facts.podCIDRs, ...facts.serviceCIDRs].map((c) => parseCIDR(c)!);
    fc.assert(fc.property(fc.oneof(v4, v6, v4.map((ip) => ({ ...ip, value: 0x0af40000n | (ip.value & 0x1ffn) }))), (ip) => {
      const text = formatIP(ip);
      if (!endpointAddressFilter(facts)(text)) return;
      const own = facts.tenantPodIPs.includes(text);
      expect(own || !cidrs.some((c) => inCIDR(ip, c))).toBe(true);
      expect(facts.otherPodIPs.includes(text) || facts.nodeIPs.includes(text)).toBe(false);
      expect(inCIDR(ip, parseCIDR('127.0.0.0/8')!) || inCIDR(ip, parseCIDR('169.254.0.0/16')!) || inCIDR(ip, parseCIDR('fe80::/10')!)).toBe(false);
    }), { numRuns: 3000 });
  });

  it('filters ready and not-ready addresses and drops subsets left empty', () => {
    const ep = {
      metadata: { name: 'db', namespace: 'shop' },
      subsets: [
        { addresses: [{ ip: '10.244.1.3' }, { ip: '192.0.2.10' }], notReadyAddresses: [{ ip: '10.96.0.1' }], ports: [{ port: 5432 }] },
        { addresses: [{ ip: '10.244.1.4' }], ports: [{ port: 80 }] },
        { notReadyAddresses: [{ ip: '10.244.0.7' }], ports: [{ port: 81 }] },
      ],
    };
    const { endpoints, dropped } = reachableEndpoints(ep, facts);
    expect(endpoints.subsets).toEqual([
      { addresses: [{ ip: '192.0.2.10' }], notReadyAddresses: [], ports: [{ port: 5432 }] },
      { addresses: [], notReadyAddresses: [{ ip: '10.244.0.7' }], ports: [{ port: 81 }] },
    ]);
    expect(dropped).toEqual(['10.244.1.3', '10.96.0.1', '10.244.1.4']);
    expect(endpoints.metadata).toBe(ep.metadata);
  });
});

describe('hostNetworkFacts', () => {
  it("reads nodes' pod ranges and addresses and the ServiceCIDR objects", () => {
    const nodes = [
      { metadata: { name: 'a' }, spec: { podCIDR: '10.244.0.0/24', podCIDRs: ['10.244.0.0/24', 'fd00:244::/64'] }, status: { addresses: [{ type: 'InternalIP', address: '192.168.1.10' }, { type: 'Hostname', address: 'a' }] } },
      { metadata: { name: 'b' }, spec: { podCIDR: '10.244.1.0/24' }, status: {} },
      { metadata: { name: 'kwok' }, spec: {} },
    ];
    const cidrs = [{ metadata: { name: 'kubernetes' }, spec: { cidrs: ['10.96.0.0/16'] } }];
    expect(hostNetworkFacts(nodes, cidrs)).toEqual({
      podCIDRs: ['10.244.0.0/24', 'fd00:244::/64', '10.244.1.0/24'],
      serviceCIDRs: ['10.96.0.0/16'],
      nodeIPs: ['192.168.1.10'],
    });
  });
});
