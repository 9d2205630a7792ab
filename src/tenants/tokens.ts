import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, importJWK, SignJWT, type JSONWebKeySet, type JWK } from 'jose';
import type { Role } from './roles.js';

/** The audience and issuer every kplex token carries; a JWT minted for anything else is refused. */
export const TOKEN_ISSUER = 'kplex';
export const TOKEN_AUDIENCE = 'kplex-gateway';
export const TOKEN_ALGORITHM = 'ES256';

/** A private signing key with its id and age; the newest one signs, all of them verify. */
export interface SigningKey extends JWK {
  kid: string;
  createdAt: string;
}

export async function newSigningKey(): Promise<SigningKey> {
  const { privateKey } = await generateKeyPair(TOKEN_ALGORITHM, { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid: randomUUID(), alg: TOKEN_ALGORITHM, use: 'sig', createdAt: new Date().toISOString() };
}

/** The public half of each key: what the gateway verifies with. */
export function publicKeySet(keys: SigningKey[]): JSONWebKeySet {
  return { keys: keys.map(({ kid, kty, crv, x, y }) => ({ kid, kty, crv, x, y, alg: TOKEN_ALGORITHM, use: 'sig' })) };
}

export interface TokenRequest {
  tenant: string;
  /** The Tenant object's metadata.uid: the token is worthless for a later tenant of the same name. */
  tenantUid: string;
  user: string;
  groups: string[];
  role: Role;
  ttlSeconds: number;
}

export async function signToken(keys: SigningKey[], req: TokenRequest): Promise<string> {
  const newest = [...keys].sort((a, b) => b.createdAt.localeCompare(a.createdAt))[0];
  if (!newest) throw new Error('no signing key');
  const { createdAt: _createdAt, ...jwk } = newest;
  const key = await importJWK(jwk, TOKEN_ALGORITHM);
  return new SignJWT({ tenant: req.tenant, tenant_uid: req.tenantUid, groups: req.groups, role: req.role })
    .setProtectedHeader({ alg: TOKEN_ALGORITHM, kid: newest.kid, typ: 'JWT' })
    .setIssuer(TOKEN_ISSUER)
    .setAudience(TOKEN_AUDIENCE)
    .setSubject(req.user)
    .setIssuedAt()
    .setNotBefore('0s')
    .setExpirationTime(`${req.ttlSeconds}s`)
    .setJti(randomUUID())
    .sign(key);
}

/** Parses a duration like 90s, 30m, 24h, 7d. */
export function parseDuration(text: string): number {
  const m = text.match(/^(\d+)(s|m|h|d)$/);
  if (!m) throw new Error(`"${text}" is not a duration like 30m, 24h or 7d`);
  const n = Number(m[1]);
  const seconds = n * { s: 1, m: 60, h: 3600, d: 86400 }[m[2] as 's' | 'm' | 'h' | 'd'];
  if (seconds <= 0) throw new Error(`the duration "${text}" must be positive`);
  return seconds;
}
