// A tenant pod's ServiceAccount tokens on the host: issued by the tenant's API server (TokenRequest,
// bound to the tenant pod, so they die with the pod or its ServiceAccount), kept in the pod's token
// Secret, renewed before they expire and removed with the pod. Decisions are pod-access.ts's.
import type { KubeObject } from '../k8s/client.js';
import { tokenProjections, type IssuedToken } from './pod-access.js';

type Json = Record<string, unknown>;

/** What is asked of the tenant's API server for one token. */
export interface TokenRequestSpec {
  audiences?: string[];
  expirationSeconds: number;
  boundObjectRef: { apiVersion: 'v1'; kind: 'Pod'; name: string; uid: string };
}

/** Issues a token of a tenant ServiceAccount (the tenant's `serviceaccounts/token` subresource); resolves to the token. */
export type IssueToken = (namespace: string, serviceAccount: string, spec: TokenRequestSpec) => Promise<string>;

export const tokenRequest = (spec: TokenRequestSpec): KubeObject => ({
  apiVersion: 'authentication.k8s.io/v1',
  kind: 'TokenRequest',
  metadata: {},
  spec: spec as unknown as Json,
});

/** The token a TokenRequest answer carries. */
export function tokenOf(answer: unknown): string {
  const token = (answer as { status?: { token?: unknown } } | undefined)?.status?.token;
  if (typeof token !== 'string' || !token) throw new Error('the tenant API server answered a TokenRequest without a token');
  return token;
}

/** The tokens a tenant pod's projections ask for, issued now by the tenant; none when it projects none. */
export async function issuePodTokens(pod: KubeObject, issue: IssueToken): Promise<IssuedToken[]> {
  const spec = (pod.spec ?? {}) as Json;
  const account = (typeof spec.serviceAccountName === 'string' && spec.serviceAccountName) || 'default';
  const boundObjectRef = { apiVersion: 'v1' as const, kind: 'Pod' as const, name: pod.metadata.name!, uid: pod.metadata.uid ?? '' };
  return Promise.all(tokenProjections(spec).map(async (p) => ({
    key: p.key,
    expirationSeconds: p.expirationSeconds,
    token: await issue(pod.metadata.namespace ?? '', account, {
      ...(p.audience ? { audiences: [p.audience] } : {}),
      expirationSeconds: p.expirationSeconds,
      boundObjectRef,
    }),
  })));
}
