import { setTimeout as sleep } from 'node:timers/promises';
import { core, type KubeClient, type KubeObject } from '../k8s/client.js';
import { StatusError } from '../k8s/status.js';
import { SYSTEM_NAMESPACE } from './names.js';
import { FIELD_MANAGER, tenantCRD, tenantsRef } from './resources.js';
import { newSigningKey, type SigningKey } from './tokens.js';

export const SIGNING_KEYS_SECRET = 'kplex-signing-keys';
export const GATEWAY_CONFIGMAP = 'kplex-gateway';

interface Secret extends KubeObject {
  data?: Record<string, string>;
}
interface ConfigMap extends KubeObject {
  data?: Record<string, string>;
}

/** Installs what kplex keeps in a host cluster: its namespace and the Tenant CRD (idempotent). */
export async function ensureSystem(host: KubeClient): Promise<void> {
  await host.apply(core('namespaces', undefined, SYSTEM_NAMESPACE), { apiVersion: 'v1', kind: 'Namespace', metadata: { name: SYSTEM_NAMESPACE } }, FIELD_MANAGER);
  await host.apply({ group: 'apiextensions.k8s.io', version: 'v1', resource: 'customresourcedefinitions', name: tenantCRD.metadata.name }, tenantCRD, FIELD_MANAGER);
  // The CRD serves only once it is Established.
  for (let i = 0; i < 100; i++) {
    try {
      await host.list(tenantsRef(), { limit: 1 });
      return;
    } catch (err) {
      if (!(err instanceof StatusError && err.code === 404)) throw err;
      await sleep(100);
    }
  }
  throw new Error('the Tenant CRD did not become available');
}

export const parseSigningKeys = (s: Secret | undefined): SigningKey[] =>
  s?.data?.['keys.json'] ? (JSON.parse(Buffer.from(s.data['keys.json'], 'base64').toString('utf8')) as SigningKey[]) : [];

/**
 * The token signing keys, from Secret kplex-system/kplex-signing-keys; the first caller creates it. Every
 * gateway replica and the CLI read the same keys, so a token works on any replica.
 */
export async function loadSigningKeys(host: KubeClient): Promise<SigningKey[]> {
  const ref = core('secrets', SYSTEM_NAMESPACE, SIGNING_KEYS_SECRET);
  const existing = parseSigningKeys(await host.find<Secret>(ref));
  if (existing.length) return existing;
  const keys = [await newSigningKey()];
  try {
    await host.create(ref, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: SIGNING_KEYS_SECRET, namespace: SYSTEM_NAMESPACE },
      type: 'Opaque',
      data: { 'keys.json': Buffer.from(JSON.stringify(keys)).toString('base64') },
    });
    return keys;
  } catch (err) {
    // Another replica created them first: use theirs.
    if (err instanceof StatusError && err.code === 409) return parseSigningKeys(await host.get<Secret>(ref));
    throw err;
  }
}

/** Adds a new signing key; older keys keep verifying until removed. */
export async function rotateSigningKeys(host: KubeClient, keep = 2): Promise<SigningKey[]> {
  const ref = core('secrets', SYSTEM_NAMESPACE, SIGNING_KEYS_SECRET);
  const current = await loadSigningKeys(host);
  const keys = [await newSigningKey(), ...current.sort((a, b) => b.createdAt.localeCompare(a.createdAt))].slice(0, keep + 1);
  await host.patch(ref, { data: { 'keys.json': Buffer.from(JSON.stringify(keys)).toString('base64') } });
  return keys;
}

export interface GatewayInfo {
  /** The URL kubectl uses, e.g. https://kplex.example.com or https://127.0.0.1:8443. */
  endpoint: string;
  /** The CA that signed the gateway's serving certificate (PEM). */
  ca: string;
}

export async function publishGatewayInfo(host: KubeClient, info: GatewayInfo): Promise<void> {
  await host.apply(
    core('configmaps', SYSTEM_NAMESPACE, GATEWAY_CONFIGMAP),
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: GATEWAY_CONFIGMAP, namespace: SYSTEM_NAMESPACE }, data: { endpoint: info.endpoint, 'ca.crt': info.ca } },
    FIELD_MANAGER,
  );
}

export async function readGatewayInfo(host: KubeClient): Promise<GatewayInfo> {
  const cm = await host.find<ConfigMap>(core('configmaps', SYSTEM_NAMESPACE, GATEWAY_CONFIGMAP));
  if (!cm?.data?.endpoint || !cm.data['ca.crt']) {
    throw new Error('no kplex gateway has published its endpoint on this host cluster; start one with "kplex gateway --advertise-url URL" (kplex dev up starts one)');
  }
  return { endpoint: cm.data.endpoint, ca: cm.data['ca.crt'] };
}
