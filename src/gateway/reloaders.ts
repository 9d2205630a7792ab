import type { Logger } from 'pino';
import { core, type KubeClient, type KubeObject } from '../k8s/client.js';
import { Informer } from '../k8s/informer.js';
import { hostNamespace, SYSTEM_NAMESPACE } from '../tenants/names.js';
import { LABELS } from '../tenants/resources.js';
import { parseSigningKeys, SIGNING_KEYS_SECRET } from '../tenants/system.js';
import { publicKeySet } from '../tenants/tokens.js';
import type { TokenVerifier } from './authenticate.js';
import type { Authorizer } from './authorize.js';

interface WithData extends KubeObject {
  data?: Record<string, string>;
}

/** Keeps the verifier's keys equal to the signing-keys Secret: a rotated key is accepted at once. */
export function watchSigningKeys(host: KubeClient, verifier: TokenVerifier, log: Logger): Informer<WithData> {
  return new Informer<WithData>(host, core('secrets', SYSTEM_NAMESPACE), {
    onUpsert: (s) => verifier.setKeys(publicKeySet(parseSigningKeys(s))),
    onDelete: () => verifier.setKeys({ keys: [] }),
  }, { fieldSelector: `metadata.name=${SIGNING_KEYS_SECRET}` }, (err) => log.warn({ err: err.message }, 'signing-key watch failed'));
}

/**
 * Per-tenant policy lines live in ConfigMaps labelled kplex.dev/policy=true in the tenant's host
 * namespace (key policy.csv); they are reloaded on change, without a restart. Invalid lines are refused
 * and logged; the tenant keeps its previous policy.
 */
export function watchTenantPolicies(host: KubeClient, authorizer: Authorizer, log: Logger): Informer<WithData> {
  const apply = (cm: WithData, csv: string): void => {
    const tenant = cm.metadata.labels?.[LABELS.tenant];
    // Only the tenant's host namespace speaks for it: a labelled ConfigMap elsewhere grants nothing.
    if (!tenant || cm.metadata.namespace !== hostNamespace(tenant)) return;
    authorizer.setTenantPolicy(tenant, csv).then(
      () => log.info({ tenant }, 'tenant policy loaded'),
      (err: Error) => log.error({ tenant, err: err.message }, 'tenant policy refused'),
    );
  };
  return new Informer<WithData>(host, core('configmaps'), {
    onUpsert: (cm) => apply(cm, cm.data?.['policy.csv'] ?? ''),
    onDelete: (cm) => apply(cm, ''),
  }, { labelSelector: `${LABELS.policy}=true` }, (err) => log.warn({ err: err.message }, 'policy watch failed'));
}
