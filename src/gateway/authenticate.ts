import { createLocalJWKSet, errors as joseErrors, jwtVerify, type JSONWebKeySet } from 'jose';
import { unauthorized, StatusError } from '../k8s/status.js';

export const ROLES = ['admin', 'edit', 'view'] as const;
export type Role = (typeof ROLES)[number];

/** Who a request comes from, as the token says. */
export interface UserInfo {
  tenant: string;
  name: string;
  groups: string[];
  role: Role;
}

/** The audience and issuer every kplex token carries; a JWT minted for anything else is refused. */
export const TOKEN_ISSUER = 'kplex';
export const TOKEN_AUDIENCE = 'kplex-gateway';
export const TOKEN_ALGORITHM = 'ES256';

export function bearerToken(authorization: string | undefined): string {
  if (!authorization) throw unauthorized('no bearer token');
  const m = authorization.match(/^Bearer\s+(\S+)\s*$/i);
  if (!m) throw unauthorized('the Authorization header is not a bearer token');
  return m[1]!;
}

/**
 * Verifies the gateway's JWTs against a set of public keys (several, so keys can rotate), in process:
 * no network round trip per request.
 */
export class TokenVerifier {
  private keySet: ReturnType<typeof createLocalJWKSet>;
  /**
   * Tokens already verified, until they expire: a signature check costs more than the rest of the
   * gateway's work on a request, and clients send the same token again and again.
   */
  private readonly verified = new Map<string, { user: UserInfo; expiresAt: number }>();

  constructor(keys: JSONWebKeySet, private readonly cacheSize = 10_000) {
    this.keySet = createLocalJWKSet(keys);
  }

  /** Replaces the accepted keys; tokens of a removed key stop working at once. */
  setKeys(keys: JSONWebKeySet): void {
    this.keySet = createLocalJWKSet(keys);
    this.verified.clear();
  }

  /** The user of `token`, which must be valid for `tenant`; anything else is a 401 StatusError. */
  async verify(token: string, tenant: string): Promise<UserInfo> {
    const hit = this.verified.get(token);
    if (hit && hit.expiresAt > Date.now()) {
      if (hit.user.tenant !== tenant) throw unauthorized(`the token is for another tenant than "${tenant}"`);
      return hit.user;
    }
    return this.verifyUncached(token, tenant);
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
    const role = claims.role as Role;
    if (!ROLES.includes(role)) throw unauthorized('the token carries no valid role');
    const groups = Array.isArray(claims.groups) ? claims.groups.filter((g): g is string => typeof g === 'string') : [];
    const user: UserInfo = { tenant, name: String(claims.sub), groups, role };
    if (this.verified.size >= this.cacheSize) this.verified.clear();
    this.verified.set(token, { user, expiresAt: Number(claims.exp) * 1000 });
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
