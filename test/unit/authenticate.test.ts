import { SignJWT, generateKeyPair, importJWK } from 'jose';
import { describe, expect, it } from 'vitest';
import { bearerToken, TokenVerifier } from '../../src/gateway/authenticate.js';
import { reservedIdentity } from '../../src/tenants/roles.js';
import { StatusError } from '../../src/k8s/status.js';
import { newSigningKey, parseDuration, publicKeySet, signToken } from '../../src/tenants/tokens.js';

const request = { tenant: 'team-a', tenantUid: 'uid-1', user: 'jane', groups: ['devs'], role: 'edit' as const, ttlSeconds: 600 };
/** The tenants that exist now, by name: what the gateway's TenantDirectory answers. */
const tenants = new Map([['team-a', 'uid-1'], ['team-b', 'uid-2']]);
const lookup = (name: string): string | undefined => tenants.get(name);

/** The StatusError `verify` fails with: thrown at once for a cached token, or as a rejection. */
async function rejection(verify: () => Promise<unknown>): Promise<StatusError> {
  try {
    await verify();
  } catch (err) {
    return err as StatusError;
  }
  throw new Error('expected a rejection');
}

describe('TokenVerifier', () => {
  it('accepts its own tokens and returns the user', async () => {
    const key = await newSigningKey();
    const verifier = new TokenVerifier(publicKeySet([key]), lookup);
    const user = await verifier.verify(await signToken([key], request), 'team-a');
    expect(user).toEqual({ tenant: 'team-a', name: 'jane', groups: ['devs'], role: 'edit' });
  });

  it('accepts tokens of every key in the set (rotation), signing with the newest', async () => {
    const old = { ...(await newSigningKey()), createdAt: '2020-01-01T00:00:00Z' };
    const current = await newSigningKey();
    const verifier = new TokenVerifier(publicKeySet([old, current]), lookup);
    expect((await verifier.verify(await signToken([old], request), 'team-a')).name).toBe('jane');
    const token = await signToken([old, current], request);
    expect(JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()).kid).toBe(current.kid);
  });

  it('refuses, with 401 Status errors: another tenant, wrong key, expired, not yet valid, alg none, wrong audience', async () => {
    const key = await newSigningKey();
    const other = await newSigningKey();
    const verifier = new TokenVerifier(publicKeySet([key]), lookup);
    const { createdAt: _c, ...jwk } = key;
    const signingKey = await importJWK(jwk, 'ES256');
    const base = () => new SignJWT({ tenant: 'team-a', tenant_uid: 'uid-1', role: 'admin', groups: [] }).setProtectedHeader({ alg: 'ES256', kid: key.kid }).setIssuer('kplex').setSubject('u');
    const now = Math.floor(Date.now() / 1000);
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const cases: [string, string, RegExp][] = [
      ['team-b', await signToken([key], request), /another tenant/],
      ['team-a', await signToken([{ ...other, kid: key.kid }], request), /signature/],
      ['team-a', await signToken([other], request), /unknown key/],
      ['team-a', await base().setAudience('kplex-gateway').setExpirationTime(now - 60).sign(signingKey), /expired/],
      ['team-a', await base().setAudience('kplex-gateway').setNotBefore(now + 600).setExpirationTime(now + 900).sign(signingKey), /nbf/],
      ['team-a', await base().setAudience('someone-else').setExpirationTime(now + 60).sign(signingKey), /aud/],
      ['team-a', `${b64({ alg: 'none' })}.${b64({ tenant: 'team-a', tenant_uid: 'uid-1', sub: 'u', role: 'admin', iss: 'kplex', aud: 'kplex-gateway', exp: now + 60 })}.`, /algorithm/],
      ['team-a', 'not-a-jwt', /not valid/],
    ];
    for (const [tenant, token, reason] of cases) {
      const err = await rejection(async () => verifier.verify(token, tenant));
      expect(err).toBeInstanceOf(StatusError);
      expect(err.code).toBe(401);
      expect(err.toStatus()).toMatchObject({ kind: 'Status', reason: 'Unauthorized', code: 401 });
      expect(err.message).toMatch(reason);
    }
  });

  it('refuses a token of another algorithm even with a known kid', async () => {
    const key = await newSigningKey();
    const verifier = new TokenVerifier(publicKeySet([key]), lookup);
    const { privateKey } = await generateKeyPair('ES384');
    const token = await new SignJWT({ tenant: 'team-a', tenant_uid: 'uid-1', role: 'admin' }).setProtectedHeader({ alg: 'ES384', kid: key.kid }).setSubject('u').setExpirationTime('1h').sign(privateKey);
    expect((await rejection(async () => verifier.verify(token, 'team-a'))).code).toBe(401);
  });
});

describe('tokens are bound to the tenant they were issued for', () => {
  it('refuses a token of a tenant deleted and created again under the same name, also once it was cached', async () => {
    const key = await newSigningKey();
    const current = new Map([['team-a', 'uid-1']]);
    const verifier = new TokenVerifier(publicKeySet([key]), (name) => current.get(name));
    const old = await signToken([key], request);
    expect((await verifier.verify(old, 'team-a')).name).toBe('jane');

    current.set('team-a', 'uid-9');
    const err = await rejection(async () => verifier.verify(old, 'team-a'));
    expect(err.code).toBe(401);
    expect(err.toStatus()).toMatchObject({ kind: 'Status', reason: 'Unauthorized', code: 401 });
    expect(err.message).toBe('Unauthorized: the token was issued for an earlier tenant named "team-a"; get a new one with: kplex connect team-a');
    expect((await verifier.verify(await signToken([key], { ...request, tenantUid: 'uid-9' }), 'team-a')).name).toBe('jane');

    current.delete('team-a');
    expect((await rejection(async () => verifier.verify(old, 'team-a'))).message).toMatch(/no longer exists/);
  });

  it('refuses a token of a re-created tenant that was never cached', async () => {
    const key = await newSigningKey();
    const verifier = new TokenVerifier(publicKeySet([key]), lookup);
    const err = await rejection(async () => verifier.verify(await signToken([key], { ...request, tenantUid: 'uid-0' }), 'team-a'));
    expect(err.code).toBe(401);
    expect(err.message).toMatch(/earlier tenant named "team-a"/);
  });

  it('refuses a token without a tenant uid', async () => {
    const key = await newSigningKey();
    const verifier = new TokenVerifier(publicKeySet([key]), lookup);
    const { createdAt: _c, ...jwk } = key;
    const token = await new SignJWT({ tenant: 'team-a', role: 'admin', groups: [] })
      .setProtectedHeader({ alg: 'ES256', kid: key.kid }).setIssuer('kplex').setAudience('kplex-gateway').setSubject('u').setExpirationTime('1h')
      .sign(await importJWK(jwk, 'ES256'));
    const err = await rejection(async () => verifier.verify(token, 'team-a'));
    expect(err.code).toBe(401);
    expect(err.message).toMatch(/names no tenant uid/);
  });
});

describe('reserved identities', () => {
  it.each([
    ['system:admin', [], /user name "system:admin" is reserved/],
    ['system:serviceaccount:kube-system:default', [], /user name .* is reserved/],
    ['jane', ['devs', 'system:masters'], /group "system:masters" is reserved/],
    ['jane', ['kplex:admin'], /group "kplex:admin" is reserved/],
    ['', [], /user name is empty/],
  ] as const)('refuses user %j with groups %j', async (user, groups, reason) => {
    expect(reservedIdentity(user, [...groups])).toMatch(reason);
    const key = await newSigningKey();
    const verifier = new TokenVerifier(publicKeySet([key]), lookup);
    const err = await rejection(async () => verifier.verify(await signToken([key], { ...request, user, groups: [...groups] }), 'team-a'));
    expect(err.code).toBe(401);
    expect(err.message).toMatch(reason);
  });

  it('accepts ordinary names, also ones that only contain "system:" or "kplex:"', () => {
    expect(reservedIdentity('jane', ['devs', 'my-system:x', 'team:kplex:y'])).toBeUndefined();
  });
});

describe('bearerToken and durations', () => {
  it('reads a bearer token and refuses anything else', () => {
    expect(bearerToken('Bearer abc.def.ghi')).toBe('abc.def.ghi');
    expect(() => bearerToken(undefined)).toThrow(/no bearer token/);
    expect(() => bearerToken('Basic dTpw')).toThrow(/not a bearer token/);
  });

  it('parses durations', () => {
    expect(parseDuration('90s')).toBe(90);
    expect(parseDuration('24h')).toBe(86400);
    expect(parseDuration('7d')).toBe(604800);
    expect(() => parseDuration('1y')).toThrow(/not a duration/);
    expect(() => parseDuration('0s')).toThrow(/positive/);
  });
});
