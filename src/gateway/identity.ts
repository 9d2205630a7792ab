import type { IncomingMessage } from 'node:http';
import { roleGroup } from '../tenants/roles.js';
import type { UserInfo } from './authenticate.js';

/** Who the tenant's API server sees a request come from (its impersonation headers). */
export interface Identity {
  user: string;
  groups: string[];
  uid?: string;
  extra?: Record<string, string[]>;
}

const identities = new WeakMap<UserInfo, Identity>();

/**
 * The token's user: its name, its groups and the group its role is bound to inside the tenant. Made
 * once per verified token (the verifier hands out the same UserInfo while it caches the token).
 */
export function identityOf(user: UserInfo): Identity {
  let who = identities.get(user);
  if (!who) identities.set(user, (who = { user: user.name, groups: [...new Set([...user.groups, roleGroup(user.role), 'system:authenticated'])] }));
  return who;
}

/** Headers a client may not send through the gateway as they are: identity is the token's. */
const IDENTITY_HEADERS = /^(authorization|impersonate-.*)$/i;

/**
 * Replaces the client's credentials with `who` as Kubernetes impersonation headers; the gateway's own
 * credential (the backend's client certificate) is allowed to impersonate. Without `who` (the host)
 * the gateway acts as itself: tenant users do not exist there.
 */
export function impersonate(req: IncomingMessage, who: Identity | undefined): void {
  for (const h of Object.keys(req.headers)) if (IDENTITY_HEADERS.test(h)) delete req.headers[h];
  if (!who) return;
  req.headers['impersonate-user'] = who.user;
  req.headers['impersonate-group'] = who.groups as unknown as string;
  if (who.uid) req.headers['impersonate-uid'] = who.uid;
  for (const [key, values] of Object.entries(who.extra ?? {})) req.headers[`impersonate-extra-${encodeURIComponent(key)}`] = values as unknown as string;
}
