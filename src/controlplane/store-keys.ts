// The keys of a tenant's store as a snapshot holds them: relative to the tenant's part of the store, so
// a file names no provider's layout and restores under any tenant name. Pure.

/** Where the local provider keeps every tenant's part of the host's etcd (tenantEtcdPrefix). */
export const TENANTS_ETCD_ROOT = '/kplex/tenants';

/** Longer keys are no Kubernetes object's (etcd itself allows more; a snapshot file has no use for them). */
export const MAX_KEY_LENGTH = 4096;

/**
 * Why a relative key is unfit to be written under a tenant's prefix, or undefined when it is fit. A key
 * starts with "/" (else `/kplex/tenants/a` + `b/x` would land in tenant `ab`'s part), has no empty, "."
 * or ".." segment and no control character, and is not a key of kplex's own ("/kplex/..."; an API
 * server's keys start with a resource or an API group, and a CRD's group has a dot): a crafted file must
 * not name anything outside the tenant's own part, not even in a form that looks like it does.
 */
export function relativeKeyProblem(key: string): string | undefined {
  if (!key.startsWith('/')) return 'does not start with "/"';
  if (key.length > MAX_KEY_LENGTH) return `is longer than ${MAX_KEY_LENGTH} characters`;
  if ([...key].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)) return 'holds a control character';
  const segments = key.slice(1).split('/');
  if (segments.some((s) => s === '')) return 'has an empty segment';
  if (segments.some((s) => s === '.' || s === '..')) return 'has a "." or ".." segment';
  if (segments[0] === 'kplex') return "names kplex's own keys (another tenant's?), not a key relative to the tenant";
  return undefined;
}

/** The key a relative key has under `prefix` (a tenant's prefix, no trailing "/"); throws on an unfit key. */
export function absoluteKey(prefix: string, key: string): string {
  const problem = relativeKeyProblem(key);
  if (problem) throw new Error(`store key ${JSON.stringify(key)} ${problem}`);
  return prefix + key;
}

/** A key read under `prefix`, relative to it; throws for a key outside it. */
export function relativeKey(prefix: string, key: string): string {
  if (!key.startsWith(`${prefix}/`)) throw new Error(`store key ${JSON.stringify(key)} is not under ${prefix}/`);
  return key.slice(prefix.length);
}
