// What a service account was granted by a ClusterRole and what it used, as `group/resource[/subresource] verb`
// permissions, to show that a chart's RBAC is what the gateway uses and no more.

export interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
}

/** One line of a kube-apiserver audit log (level Metadata), the fields read here. */
export interface AuditEvent {
  stage: string;
  requestReceivedTimestamp: string;
  verb: string;
  user: { username: string };
  objectRef?: { apiGroup?: string; resource?: string; subresource?: string };
  responseStatus?: { code?: number };
  annotations?: Record<string, string>;
}

const permission = (group: string, resource: string, verb: string): string => `${group || 'core'}/${resource} ${verb}`;

/** Every permission the rules grant (rules with wildcards are not expanded: the chart has none, and this says so). */
export function granted(rules: PolicyRule[]): Set<string> {
  const out = new Set<string>();
  for (const r of rules) {
    for (const g of r.apiGroups ?? []) for (const res of r.resources ?? []) for (const v of r.verbs) {
      if ([g, res, v].includes('*')) throw new Error(`a wildcard in the chart's RBAC: ${JSON.stringify(r)}`);
      out.add(permission(g, res, v));
    }
  }
  return out;
}

/** Subresources whose WebSocket upgrade (a GET) kube-apiserver 1.35 also authorizes as create (AuthorizePodWebsocketUpgradeCreatePermission), unlogged. */
const UPGRADED = new Set(['exec', 'attach', 'portforward']);

/**
 * The permissions `username` used (each resource request it made, once completed), and those it was
 * refused. A server-side apply that makes the object (a PATCH answered 201) was also authorized as create.
 */
export function used(events: AuditEvent[], username: string): { allowed: Set<string>; forbidden: Set<string> } {
  const allowed = new Set<string>();
  const forbidden = new Set<string>();
  for (const e of events) {
    // Non-resource requests (discovery, /version) are allowed to every authenticated user by the host's own roles.
    if (e.user.username !== username || !e.objectRef?.resource || e.stage === 'RequestReceived') continue;
    const resource = e.objectRef.subresource ? `${e.objectRef.resource}/${e.objectRef.subresource}` : e.objectRef.resource;
    const p = permission(e.objectRef.apiGroup ?? '', resource, e.verb);
    const to = e.annotations?.['authorization.k8s.io/decision'] === 'forbid' ? forbidden : allowed;
    to.add(p);
    const create = (e.verb === 'patch' && e.responseStatus?.code === 201) || (e.verb === 'get' && UPGRADED.has(e.objectRef.subresource ?? ''));
    if (create && to === allowed) allowed.add(permission(e.objectRef.apiGroup ?? '', resource, 'create'));
  }
  return { allowed, forbidden };
}
