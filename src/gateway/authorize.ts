import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { newEnforcer, newModelFromString, StringAdapter, type Enforcer } from 'casbin';
import { forbidden } from '../k8s/status.js';
import type { Authorized, Awake, Deps } from './context.js';
import { identityOf, type Identity } from './identity.js';
import { checkAsRequestInfo, impersonated, impersonationChecks, impersonationDenied, requestedImpersonation, type Requested } from './impersonation.js';
import { describeDenial, type RequestInfo } from './request-info.js';
import { tenantAllows } from './tenant-review.js';
import type { UserInfo } from './authenticate.js';

/**
 * "*" matches anything, "a|b" any of the listed values, "prefix*" a prefix. Kept to this small
 * language so that policies read like RBAC rules.
 */
export function patternMatch(value: string, pattern: string): boolean {
  if (pattern === '*') return true;
  return pattern.split('|').some((alt) => (alt.endsWith('*') ? value.startsWith(alt.slice(0, -1)) : value === alt));
}

const scopeMatch = (namespace: string, scope: string): boolean =>
  scope === '*' || (scope === 'namespaced' ? namespace !== '' : scope === 'cluster' ? namespace === '' : false);

export const NON_RESOURCE_GROUP = '<nonresource>';

/** The Casbin request for a parsed request: (verb, group, resource, namespace). */
export function casbinRequest(info: RequestInfo): [verb: string, group: string, resource: string, namespace: string] {
  if (!info.isResourceRequest) return [info.verb, NON_RESOURCE_GROUP, info.path, ''];
  const resource = info.subresource ? `${info.resource}/${info.subresource}` : info.resource;
  return [info.verb, info.apiGroup, resource, info.namespace];
}

/**
 * The subjects a user is judged as: its role (from the token), its name, and its groups, each under its
 * own prefix, so that a user named "role:admin" or "group:ops" is neither that role nor that group.
 */
export const subjectsOf = (user: UserInfo): string[] => [`role:${user.role}`, `user:${user.name}`, ...user.groups.map((g) => `group:${g}`)];

export class PolicyError extends Error {}

const SUBJECT = /^(user|group|role):./;
const MEMBER = /^(user|group):./;
const ROLE = /^role:./;

/**
 * Parses a tenant's own policy lines (CSV, `p` and `g` lines). Lines must name the tenant as their
 * domain, so one tenant's policy can never grant anything in another. Subjects are `user:NAME`,
 * `group:NAME` or `role:NAME`; a `g` line gives a user or group a role (roles do not nest).
 */
export function parseTenantPolicy(tenant: string, csv: string): string {
  const out: string[] = [];
  csv.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const fields = line.split(',').map((f) => f.trim());
    const where = `policy line ${i + 1} ("${line}")`;
    if (fields[0] === 'p') {
      if (fields.length !== 8) throw new PolicyError(`${where}: a p line has 7 fields: subject, tenant, verbs, groups, resources, scope, allow|deny`);
      if (fields[2] !== tenant) throw new PolicyError(`${where}: names tenant "${fields[2]}", not "${tenant}"`);
      if (!SUBJECT.test(fields[1]!)) throw new PolicyError(`${where}: the subject must be user:NAME, group:NAME or role:NAME`);
      if (fields[7] !== 'allow' && fields[7] !== 'deny') throw new PolicyError(`${where}: the effect must be allow or deny`);
    } else if (fields[0] === 'g') {
      if (fields.length !== 4) throw new PolicyError(`${where}: a g line has 3 fields: subject, role, tenant`);
      if (fields[3] !== tenant) throw new PolicyError(`${where}: names tenant "${fields[3]}", not "${tenant}"`);
      if (!MEMBER.test(fields[1]!)) throw new PolicyError(`${where}: a g line gives a role to user:NAME or group:NAME`);
      if (!ROLE.test(fields[2]!)) throw new PolicyError(`${where}: a g line gives role:NAME, not "${fields[2]}"`);
    } else {
      throw new PolicyError(`${where}: lines start with p or g`);
    }
    out.push(fields.join(', '));
  });
  return out.join('\n');
}

/**
 * Casbin RBAC with domains, in memory: one enforcer per tenant (default roles + the tenant's own lines),
 * so a decision costs no I/O. Without a model and default policy the gateway does not start (fail closed).
 */
export class Authorizer {
  private readonly enforcers = new Map<string, Enforcer>();
  /**
   * Decisions already made, per tenant and user: requests repeat, and a policy change clears its
   * tenant's. Keyed by the verified token's UserInfo (one object while the verifier caches the token),
   * so a request costs no key built from the user's subjects.
   */
  private readonly decisions = new Map<string, WeakMap<UserInfo, Map<string, boolean>>>();

  private constructor(private readonly model: string, private readonly defaults: string) {}

  static async load(policyDir: string): Promise<Authorizer> {
    const model = await readFile(path.join(policyDir, 'model.conf'), 'utf8');
    const defaults = (await readFile(path.join(policyDir, 'roles.csv'), 'utf8'))
      .split('\n')
      .filter((l) => l.trim() && !l.trim().startsWith('#'))
      .join('\n');
    if (!defaults) throw new PolicyError(`no default policy in ${policyDir}/roles.csv`);
    const authorizer = new Authorizer(model, defaults);
    await authorizer.setTenantPolicy('', '');
    return authorizer;
  }

  private async build(lines: string): Promise<Enforcer> {
    const enforcer = await newEnforcer(newModelFromString(this.model), new StringAdapter([this.defaults, lines].filter(Boolean).join('\n')));
    await enforcer.addFunction('kmatch', (a: string, b: string) => patternMatch(a, b));
    await enforcer.addFunction('scopeMatch', (a: string, b: string) => scopeMatch(a, b));
    return enforcer;
  }

  /** Replaces a tenant's own policy lines ('' for none). Invalid lines are refused, the old policy stays. */
  async setTenantPolicy(tenant: string, csv: string): Promise<void> {
    const lines = tenant ? parseTenantPolicy(tenant, csv) : '';
    this.enforcers.set(tenant, await this.build(lines));
    this.decisions.delete(tenant);
  }

  removeTenant(tenant: string): void {
    this.enforcers.delete(tenant);
    this.decisions.delete(tenant);
  }

  authorize(tenant: string, user: UserInfo, info: RequestInfo): boolean {
    const [verb, group, resource, namespace] = casbinRequest(info);
    let byUser = this.decisions.get(tenant);
    if (!byUser) this.decisions.set(tenant, (byUser = new WeakMap()));
    let cache = byUser.get(user);
    if (!cache) byUser.set(user, (cache = new Map()));
    // None of the four holds a newline (paths and names passed the request info stage's checks).
    const key = `${verb}\n${group}\n${resource}\n${namespace}`;
    const known = cache.get(key);
    if (known !== undefined) return known;
    const enforcer = this.enforcers.get(tenant) ?? this.enforcers.get('')!;
    const allowed = subjectsOf(user).some((sub) => enforcer.enforceSync(sub, tenant, verb, group, resource, namespace));
    if (cache.size >= 10_000) cache.clear();
    cache.set(key, allowed);
    return allowed;
  }
}

/**
 * The authorize stage: the gateway's policy for the token's role, then the identity the tenant will see.
 * `kubectl --as` is allowed only when the gateway's policy for the token's role and the tenant's RBAC for
 * the token's user both allow that impersonation (the checks kube-apiserver makes); then the tenant sees
 * the impersonated user. Never silently dropped. (The tenant's own RBAC judges everything it serves.)
 */
export function authorize(ctx: Awake, deps: Deps): Authorized | Promise<Authorized> {
  const info = ctx.info;
  if (!deps.authorizer.authorize(ctx.tenant, ctx.user, info)) {
    // kube-apiserver's words: `pods "web" is forbidden: User …`, or `pods is forbidden: …` without a name.
    const what = info.isResourceRequest ? `${info.resource}${info.name ? ` "${info.name}"` : ''}` : info.path || 'request';
    throw forbidden(`${what} is forbidden: ${describeDenial(ctx.user.name, info)}`, info.isResourceRequest ? { name: info.name || undefined, group: info.apiGroup, kind: info.resource } : undefined);
  }
  const own = identityOf(ctx.user);
  const asked = requestedImpersonation(ctx.req);
  return asked ? authorizeImpersonation(ctx, deps, own, asked) : { ...ctx, identity: own };
}

/** `kubectl --as`: every check kube-apiserver makes, in the gateway's policy and in the tenant's RBAC. */
async function authorizeImpersonation(ctx: Awake, deps: Deps, own: Identity, asked: Requested): Promise<Authorized> {
  await Promise.all(impersonationChecks(asked).map(async (check) => {
    if (!deps.authorizer.authorize(ctx.tenant, ctx.user, checkAsRequestInfo(check)) || !(await tenantAllows(ctx.backend, own, check))) {
      throw impersonationDenied(ctx.user.name, check);
    }
  }));
  return { ...ctx, identity: impersonated(asked) };
}
