// Kubernetes' own name rules (k8s.io/apimachinery/pkg/util/validation, pkg/api/validation/path),
// so the gateway refuses what kube-apiserver would refuse before anything is forwarded.

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** A namespace name, a Service name: lower-case alphanumerics and '-', at most 63 characters. */
export const isDns1123Label = (s: string): boolean => s.length <= 63 && DNS1123_LABEL.test(s);

/** Most object names (Pods, ConfigMaps, Secrets): DNS labels joined by '.', at most 253 characters. */
export const isDns1123Subdomain = (s: string): boolean => s.length <= 253 && DNS1123_SUBDOMAIN.test(s);

/**
 * Why a decoded path segment cannot name anything, or undefined when it can. kube-apiserver refuses
 * "." and "..", "/" and "%" in names (ValidatePathSegmentName); control characters, "?", "#" and "\"
 * would change the meaning of a URL built from the name.
 */
export function pathSegmentProblem(segment: string): string | undefined {
  if (segment === '.' || segment === '..') return `may not be '${segment}'`;
  const bad = segment.match(/[/%?#\\\u0000-\u001f\u007f]/);
  if (bad) return `may not contain '${bad[0] < ' ' || bad[0] === '\u007f' ? `\\x${bad[0].charCodeAt(0).toString(16).padStart(2, '0')}` : bad[0]}'`;
  return undefined;
}
