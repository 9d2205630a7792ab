// Which IP addresses a tenant may make host objects point at. Pure: the facts about the host's networks
// are inputs (host-networks.ts reads them from the host API).
import type { KubeObject } from '../k8s/client.js';

type Json = Record<string, unknown>;

/** An address as a number. IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are IPv4, as kube-proxy uses them. */
export interface IP {
  family: 4 | 6;
  value: bigint;
}

export interface CIDR extends IP {
  bits: number;
}

const width = (family: 4 | 6): number => (family === 4 ? 32 : 128);

/** Dotted IPv4; leading zeros are decimal, as Kubernetes' legacy parser (ParseIPSloppy) reads them. */
function parseIPv4(s: string): bigint | undefined {
  const parts = s.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) return undefined;
  return parts.reduce((n, p) => (n << 8n) | BigInt(Number(p)), 0n);
}

function parseIPv6(s: string): bigint | undefined {
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const groups = (half: string): number[] | undefined => {
    if (half === '') return [];
    const out: number[] = [];
    const parts = half.split(':');
    for (const [i, p] of parts.entries()) {
      if (i === parts.length - 1 && p.includes('.')) {
        const v4 = parseIPv4(p);
        if (v4 === undefined) return undefined;
        out.push(Number(v4 >> 16n), Number(v4 & 0xffffn));
      } else if (/^[0-9a-fA-F]{1,4}$/.test(p)) out.push(parseInt(p, 16));
      else return undefined;
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  return [...head, ...Array<number>(missing).fill(0), ...tail].reduce((n, g) => (n << 16n) | BigInt(g), 0n);
}

/** Parses an address; undefined for anything else (zones, CIDRs, names). */
export function parseIP(s: string): IP | undefined {
  if (typeof s !== 'string') return undefined;
  const v4 = parseIPv4(s);
  if (v4 !== undefined) return { family: 4, value: v4 };
  if (!s.includes(':')) return undefined;
  const v6 = parseIPv6(s);
  if (v6 === undefined) return undefined;
  return v6 >> 32n === 0xffffn ? { family: 4, value: v6 & 0xffffffffn } : { family: 6, value: v6 };
}

/** Parses `address/bits`; the address is masked to its prefix. */
export function parseCIDR(s: string): CIDR | undefined {
  if (typeof s !== 'string') return undefined;
  const [addr, bitsText, ...rest] = s.split('/');
  if (rest.length || bitsText === undefined || !/^\d{1,3}$/.test(bitsText)) return undefined;
  const ip = parseIP(addr!);
  if (!ip) return undefined;
  let bits = Number(bitsText);
  // An IPv4-mapped prefix (::ffff:10.0.0.0/104) is the IPv4 prefix it maps.
  if (ip.family === 4 && addr!.includes(':')) bits -= 96;
  if (bits < 0 || bits > width(ip.family)) return undefined;
  const shift = BigInt(width(ip.family) - bits);
  return { family: ip.family, bits, value: (ip.value >> shift) << shift };
}

export const inCIDR = (ip: IP, cidr: CIDR): boolean => {
  if (ip.family !== cidr.family) return false;
  const shift = BigInt(width(ip.family) - cidr.bits);
  return ip.value >> shift === cidr.value >> shift;
};

/** The canonical text of an address (RFC 5952 for IPv6), as the API server writes pod IPs. */
export function formatIP(ip: IP): string {
  if (ip.family === 4) return [24n, 16n, 8n, 0n].map((s) => String((ip.value >> s) & 0xffn)).join('.');
  const groups = Array.from({ length: 8 }, (_, i) => Number((ip.value >> BigInt(112 - 16 * i)) & 0xffffn));
  // The longest run of two or more zero groups (the first of equals) becomes "::".
  let [best, bestLen] = [-1, 1];
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = (gs: number[]): string => gs.map((g) => g.toString(16)).join(':');
  return best < 0 ? hex(groups) : `${hex(groups.slice(0, best))}::${hex(groups.slice(best + bestLen))}`;
}

const parseAll = (cidrs: readonly string[]): CIDR[] => cidrs.flatMap((c) => parseCIDR(c) ?? []);

/** Addresses that mean "this machine" wherever they are used: never a target a tenant may name. */
const NEVER = parseAll(['0.0.0.0/8', '127.0.0.0/8', '169.254.0.0/16', '::/128', '::1/128', 'fe80::/10']);

const never = (ip: IP): boolean => NEVER.some((c) => inCIDR(ip, c));

/**
 * The external IPs of a tenant Service the host Service may keep: those inside one of `allowedCIDRs`
 * (the tenant's values; none by default), never a loopback or link-local one. Unparsable entries go.
 */
export function allowedExternalIPs(externalIPs: unknown, allowedCIDRs: readonly string[]): string[] {
  const allowed = parseAll(allowedCIDRs);
  return (Array.isArray(externalIPs) ? externalIPs : []).filter((s): s is string => {
    const ip = parseIP(s as string);
    return !!ip && !never(ip) && allowed.some((c) => inCIDR(ip, c));
  });
}

/** What the host knows about its own networks (host-networks.ts reads them from the host API). */
export interface HostNetworkFacts {
  /** Node pod ranges (nodes' spec.podCIDRs). */
  podCIDRs: readonly string[];
  /** Service ranges (networking.k8s.io/v1 ServiceCIDRs). */
  serviceCIDRs: readonly string[];
  /** The nodes' own addresses (status.addresses), where kubelets and host-network pods listen. */
  nodeIPs: readonly string[];
}

/**
 * The facts for one tenant's Endpoints: the host's networks, the IPs of this tenant's own pods, and
 * which of the addresses at hand other pods of the host use (host-networks.ts asks the host: not every
 * network plugin, nor the embedded host, records pod ranges on its nodes).
 */
export interface EndpointFacts extends HostNetworkFacts {
  tenantPodIPs: readonly string[];
  otherPodIPs: readonly string[];
}

const key = (ip: IP): string => `${ip.family}/${ip.value}`;

/**
 * Decides the addresses of one tenant's Endpoints: an address another host pod uses, or one inside
 * the host's pod or Service networks or a node's own (another tenant's pod, a host Service, a kubelet)
 * unless it is one of this tenant's own pods; a loopback or link-local address is this machine. Those go. Addresses
 * outside them (an external database) stay. Returns a predicate, so the facts are parsed once.
 */
export function endpointAddressFilter(facts: EndpointFacts): (address: string) => boolean {
  const host = parseAll([...facts.podCIDRs, ...facts.serviceCIDRs]);
  const nodes = new Set(facts.nodeIPs.flatMap((s) => parseIP(s) ?? []).map(key));
  const own = new Set(facts.tenantPodIPs.flatMap((s) => parseIP(s) ?? []).map(key));
  const others = new Set(facts.otherPodIPs.flatMap((s) => parseIP(s) ?? []).map(key));
  return (address) => {
    const ip = parseIP(address);
    if (!ip || never(ip) || others.has(key(ip))) return false;
    if (own.has(key(ip))) return true;
    return !nodes.has(key(ip)) && !host.some((c) => inCIDR(ip, c));
  };
}

/**
 * A tenant's Endpoints with only the addresses `endpointAddressFilter` allows; a subset left without
 * any address goes too (the API requires one). `dropped` lists what was removed, for the log.
 */
export function reachableEndpoints(ep: KubeObject, facts: EndpointFacts): { endpoints: KubeObject; dropped: string[] } {
  const allowed = endpointAddressFilter(facts);
  const dropped: string[] = [];
  const keep = (addresses: unknown): Json[] =>
    (Array.isArray(addresses) ? (addresses as Json[]) : []).filter((a) => {
      const ok = typeof a.ip === 'string' && allowed(a.ip);
      if (!ok) dropped.push(String(a.ip));
      return ok;
    });
  const subsets = (Array.isArray(ep.subsets) ? (ep.subsets as Json[]) : [])
    .map((s) => ({ ...s, addresses: keep(s.addresses), notReadyAddresses: keep(s.notReadyAddresses) }))
    .filter((s) => s.addresses.length || s.notReadyAddresses.length);
  return { endpoints: { ...ep, subsets }, dropped };
}
