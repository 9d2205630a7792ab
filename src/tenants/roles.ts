// The roles a kplex token can carry, and what they become inside a tenant: one contract for the CLI
// that mints tokens, the gateway that checks them and the tenant controller that binds the roles.

export const ROLES = ['admin', 'edit', 'view'] as const;
export type Role = (typeof ROLES)[number];

/** The group a token's role becomes inside the tenant, bound there to Kubernetes' cluster role of the same meaning. */
export const roleGroup = (role: Role): string => `kplex:${role}`;

/**
 * Why a user name and groups must not be put in a token, or undefined when they may. They become
 * impersonation headers at the tenant API server, where `system:` names are Kubernetes' own (group
 * `system:masters` is cluster-admin) and `kplex:` groups are what token roles become.
 */
export function reservedIdentity(user: string, groups: string[]): string | undefined {
  if (!user) return 'the user name is empty';
  if (user.startsWith('system:')) return `the user name "${user}" is reserved: names starting with "system:" are Kubernetes' own`;
  const group = groups.find((g) => g.startsWith('system:') || g.startsWith('kplex:'));
  if (group !== undefined) return `the group "${group}" is reserved: groups starting with "system:" or "kplex:" are Kubernetes' and kplex's own`;
  return undefined;
}
