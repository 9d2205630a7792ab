import { createLocalJWKSet, decodeJwt, errors as joseErrors, jwtVerify, type JSONWebKeySet } from 'jose';
import { unauthorized, StatusError } from '../k8s/status.js';
import { reservedIdentity, ROLES, type Role } from '../tenants/roles.js';
import { TOKEN_ALGORITHM, TOKEN_AUDIENCE, TOKEN_ISSUER } from '../tenants/tokens.js';
import type { Authenticated, Deps, Incoming } from './context.js';

/** Who a request comes from, as the token says. */
export interface UserInfo {
  tenant: string;
  name: string;
  groups: string[];
  role: Role;
}

export function bearerToken(authorization: string | undefined): string {
  if (!authorization) throw unauthorized('no bearer token');
  const m = authorization.match(/^Bearer\s+(\S+)\s*$/i);
  if (!m) throw unauthorized('the Authorization header is not a bearer token');
  return m[1]!;
}

/** The uid of the tenant named so now, or undefined when there is none. */
export type TenantUidLookup = (tenant: string) => string | undefined;

/**
 * Verifies the gateway's JWTs against a set of public keys (several, so keys can rotate), in process:
 * no network round trip per request. A token is bound to one tenant object by its uid, so a tenant
 * deleted and created again under the same name does not accept the tokens of the earlier one.
 */
export class TokenVerifier {
  private keySet: ReturnType<typeof createLocalJWKSet>;
  /**
   * Tokens already verified, until they expire: a signature check costs more than the rest of the
   * gateway's work on a request, and clients send the same token again and again.
   */
  private readonly verified = new Map<string, { user: UserInfo; tenantUid: string; expiresAt: number }>();

  constructor(keys: JSONWebKeySet, private readonly tenantUid: TenantUidLookup, private readonly cacheSize = 10_000) {
    this.keySet = createLocalJWKSet(keys);
  }

  /** Replaces the accepted keys; tokens of a removed key stop working at once. */
  setKeys(keys: JSONWebKeySet): void {
    this.keySet = createLocalJWKSet(keys);
    this.verified.clear();
  }

  /**
   * The user of `token`, which must be valid for `tenant`; anything else is a 401 StatusError. A token
   * verified before is answered at once, without a promise: that is nearly every request.
   */
  verify(token: string, tenant: string): UserInfo | Promise<UserInfo> {
    const hit = this.verified.get(token);
    if (hit && hit.expiresAt > Date.now()) {
      if (hit.user.tenant !== tenant) throw unauthorized(`the token is for another tenant than "${tenant}"`);
      // Checked on every hit: the tenant may have been re-created since the token was cached.
      this.checkTenantUid(tenant, hit.tenantUid);
      return hit.user;
    }
    return this.verifyUncached(token, tenant);
  }

  private checkTenantUid(tenant: string, tokenUid: string): void {
    const current = this.tenantUid(tenant);
    if (current === undefined) throw unauthorized(`the token was issued for a tenant named "${tenant}" that no longer exists`);
    if (current !== tokenUid) throw unauthorized(`the token was issued for an earlier tenant named "${tenant}"; get a new one with: kplex connect ${tenant}`);
  }

  private async verifyUncached(token: string, tenant: string): Promise<UserInfo> {
    let claims: Record<string, unknown>;
    try {
      const { payload } = await jwtVerify(token, this.keySet, {
        algorithms: [TOKEN_ALGORITHM],
        issuer: TOKEN_ISSUER,
        audience: TOKEN_AUDIENCE,
        requiredClaims: ['exp', 'sub', 'tenant'],
        clockTolerance: 5,
      });
      claims = payload;
    } catch (err) {
      throw unauthorized(reasonOf(err));
    }
    if (claims.tenant !== tenant) throw unauthorized(`the token is for another tenant than "${tenant}"`);
    if (typeof claims.tenant_uid !== 'string' || !claims.tenant_uid) {
      throw unauthorized(`the token names no tenant uid: it was issued for an earlier tenant named "${tenant}" or by an older kplex; get a new one with: kplex connect ${tenant}`);
    }
    this.checkTenantUid(tenant, claims.tenant_uid);
    const role = claims.role as Role;
    if (!ROLES.includes(role)) throw unauthorized('the token carries no valid role');
    const groups = Array.isArray(claims.groups) ? claims.groups.filter((g): g is string => typeof g === 'string') : [];
    const name = String(claims.sub);
    const reserved = reservedIdentity(name, groups);
    if (reserved) throw unauthorized(`the token is refused: ${reserved}`);
    const user: UserInfo = { tenant, name, groups, role };
    if (this.verified.size >= this.cacheSize) this.verified.clear();
    this.verified.set(token, { user, tenantUid: claims.tenant_uid, expiresAt: Number(claims.exp) * 1000 });
    return user;
  }
}

function reasonOf(err: unknown): string {
  if (err instanceof StatusError) return err.message;
  if (err instanceof joseErrors.JWTExpired) return 'the token has expired';
  if (err instanceof joseErrors.JWTClaimValidationFailed) return `the token's "${err.claim}" claim is not valid (${err.reason})`;
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return 'the token is not signed with an accepted algorithm';
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'the token signature is not valid';
  if (err instanceof joseErrors.JWKSNoMatchingKey) return 'the token is signed with an unknown key';
  return 'the token is not valid';
}

/**
 * The tenant a token names, read before the token is verified: only to choose the tenant it is then
 * verified for (a request without the /tenants/NAME prefix).
 */
export function tenantOfToken(token: string): string {
  let claims: Record<string, unknown>;
  try {
    claims = decodeJwt(token);
  } catch {
    throw unauthorized('the token is not a JWT');
  }
  if (typeof claims.tenant !== 'string' || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(claims.tenant)) throw unauthorized('the token names no tenant');
  return claims.tenant;
}

/** `/tenants/NAME` followed by the tenant's own URL (`/api/v1/pods?watch=1`), or nothing. */
const TENANT_PATH = /^\/tenants\/([a-z0-9](?:[-a-z0-9]*[a-z0-9])?)(?=[/?]|$)(.*)$/;

/**
 * The authenticate stage. The tenant a request is for is named by the `/tenants/NAME` prefix of the
 * kubeconfig's server URL, or, for paths kubectl sends from the server's root (`kubectl get --raw /api`),
 * it is the one tenant the token belongs to; either way the token must be valid for that tenant, so a
 * token for tenant A never reaches tenant B.
 */
export function authenticate(ctx: Incoming, deps: Deps): Authenticated | Promise<Authenticated> {
  const url = ctx.req.url ?? '/';
  const token = bearerToken(ctx.req.headers.authorization);
  const m = url.match(TENANT_PATH);
  const tenant = m ? m[1]! : tenantOfToken(token);
  const path = m ? (m[2]!.startsWith('/') ? m[2]! : `/${m[2]!}`) : url;
  const authenticated = (user: UserInfo): Authenticated => {
    ctx.trace.tenant = tenant;
    return { ...ctx, tenant, path, user };
  };
  const user = deps.verifier.verify(token, tenant);
  return user instanceof Promise ? user.then(authenticated) : authenticated(user);
}
