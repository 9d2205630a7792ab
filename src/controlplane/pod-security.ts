// Pod Security Standards for a tenant, stated once and applied on both sides: the host namespace's
// pod-security labels, and the tenant API server's own PodSecurity admission defaults. When the two
// agree, a pod the host would refuse is refused by the tenant when it is written, with Kubernetes'
// own message field by field, instead of being stored in the tenant and failing later on the host.

export const POD_SECURITY_LEVELS = ['privileged', 'baseline', 'restricted'] as const;
export type PodSecurityLevel = (typeof POD_SECURITY_LEVELS)[number];

export interface PodSecurity {
  /** Pods that violate this level are refused. */
  enforce: PodSecurityLevel;
  /** Pods that violate this level are accepted with a warning for the client. */
  warn: PodSecurityLevel;
}

/** What Kubernetes does with no configuration: everything allowed, nothing to warn about. */
export const UNRESTRICTED: PodSecurity = { enforce: 'privileged', warn: 'privileged' };

/**
 * A standard to enforce, warning about "restricted" below it, so that users see what the strictest level
 * would refuse. "privileged" is Kubernetes' default: nothing enforced, nothing to warn about.
 */
export const podSecurityFor = (level: PodSecurityLevel): PodSecurity => (level === 'privileged' ? UNRESTRICTED : { enforce: level, warn: 'restricted' });

const isUnrestricted = (p: PodSecurity): boolean => p.enforce === 'privileged' && p.warn === 'privileged';

/** The host namespace's labels (https://kubernetes.io/docs/concepts/security/pod-security-admission/). */
export function podSecurityLabels(p: PodSecurity): Record<string, string> {
  if (isUnrestricted(p)) return {};
  return { 'pod-security.kubernetes.io/enforce': p.enforce, 'pod-security.kubernetes.io/warn': p.warn };
}

/**
 * The tenant API server's AdmissionConfiguration (--admission-control-config-file) with the same levels
 * as cluster-wide defaults, or undefined when there is nothing to enforce. No namespace is exempt: the
 * host namespace holds the pods of every tenant namespace, kube-system included.
 */
export function admissionConfiguration(p: PodSecurity): Record<string, unknown> | undefined {
  if (isUnrestricted(p)) return undefined;
  return {
    apiVersion: 'apiserver.config.k8s.io/v1',
    kind: 'AdmissionConfiguration',
    plugins: [
      {
        name: 'PodSecurity',
        configuration: {
          apiVersion: 'pod-security.admission.config.k8s.io/v1',
          kind: 'PodSecurityConfiguration',
          defaults: { enforce: p.enforce, 'enforce-version': 'latest', warn: p.warn, 'warn-version': 'latest', audit: 'privileged', 'audit-version': 'latest' },
          exemptions: { usernames: [], runtimeClasses: [], namespaces: [] },
        },
      },
    ],
  };
}
