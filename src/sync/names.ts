import { createHash } from 'node:crypto';

/**
 * A name on the host side, made by translation. Its own type, so a tenant name is never used where a
 * host name belongs (or the other way round) without going through the translator.
 */
export type HostName = string & { readonly __host: unique symbol };

/** The longest name a kind accepts: 63 for DNS labels (Services), 253 for DNS subdomains (most kinds). */
export type NameLimit = 63 | 253;

const SEPARATOR = '-x-';
/** Ends a hashed name; no plain name contains it, since components never start with '-'. */
const HASH_MARK = '-x--';
const HASH_LENGTH = 12;

export const shortHash = (...parts: string[]): string =>
  createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, HASH_LENGTH);

/**
 * Whether `<name>-x-<namespace>-x-<tenant>` reads back unambiguously: the separator then occurs exactly
 * twice. It occurs more often when a component contains it, ends with "-x" or starts with "x-".
 */
const plainIsUnambiguous = (parts: string[]): boolean =>
  parts.every((p) => !p.includes(SEPARATOR) && !p.endsWith('-x') && !p.startsWith('x-'));

/**
 * The host name of tenant object `name` in tenant namespace `namespace`: `<name>-x-<namespace>-x-<tenant>`
 * when that is unambiguous and fits `limit`; otherwise its beginning, cut to fit, then `-x--` and a hash of
 * the full triple. Injective: plain names parse back to one triple, hashed names can never be plain, and
 * different triples hash differently.
 */
export function hostName(tenant: string, namespace: string, name: string, limit: NameLimit): HostName {
  const parts = [name, namespace, tenant];
  const plain = parts.join(SEPARATOR);
  if (plain.length <= limit && plainIsUnambiguous(parts)) return plain as HostName;
  const room = limit - HASH_MARK.length - HASH_LENGTH;
  // A cut must not end in '-' or '.', and keeps the name readable from its start.
  const head = plain.slice(0, room).replace(/[-.]+$/, '');
  return `${head}${HASH_MARK}${shortHash(tenant, namespace, name)}` as HostName;
}

/** A label key on the host for a tenant's label key: prefixed and hashed, so no host selector matches it by chance. */
export const hostLabelKey = (key: string): string => `kplex.dev/l-${shortHash('label', key)}`;
