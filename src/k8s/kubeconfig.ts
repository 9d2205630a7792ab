import { existsSync, mkdirSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import YAML from 'yaml';
import type { ClusterAccess } from './client.js';

interface Named<T> {
  name: string;
  [key: string]: unknown;
  value?: T;
}

export interface KubeconfigFile {
  apiVersion: 'v1';
  kind: 'Config';
  clusters: Named<unknown>[];
  users: Named<unknown>[];
  contexts: Named<unknown>[];
  'current-context'?: string;
  preferences?: Record<string, unknown>;
  [key: string]: unknown;
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');

/** A kubeconfig with one cluster, user and context, all called `name`, credentials embedded. */
export function kubeconfigFor(name: string, access: ClusterAccess, namespace?: string): KubeconfigFile {
  const user: Record<string, string> = {};
  if (access.token) user.token = access.token;
  if (access.cert) user['client-certificate-data'] = b64(access.cert);
  if (access.key) user['client-key-data'] = b64(access.key);
  const cluster: Record<string, string> = { server: access.server };
  if (access.ca) cluster['certificate-authority-data'] = b64(access.ca);
  return {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name, cluster }],
    users: [{ name, user }],
    contexts: [{ name, context: { cluster: name, user: name, ...(namespace ? { namespace } : {}) } }],
    'current-context': name,
  };
}

export const toYaml = (config: KubeconfigFile): string => YAML.stringify(config);

/** Writes a file atomically (write, then rename), private to its owner. */
export function writePrivateFile(file: string, content: string): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, content, { mode: 0o600 });
  renameSync(tmp, file);
}

/** The kubeconfig file kubectl writes to: the first entry of $KUBECONFIG, else ~/.kube/config. */
export function userKubeconfigPath(): string {
  const env = process.env.KUBECONFIG?.split(path.delimiter).find(Boolean);
  return env ?? path.join(os.homedir(), '.kube', 'config');
}

function readKubeconfig(file: string): KubeconfigFile {
  const empty: KubeconfigFile = { apiVersion: 'v1', kind: 'Config', clusters: [], users: [], contexts: [] };
  if (!existsSync(file)) return empty;
  const parsed = (YAML.parse(readFileSync(file, 'utf8')) ?? {}) as Partial<KubeconfigFile>;
  return { ...empty, ...parsed, clusters: parsed.clusters ?? [], users: parsed.users ?? [], contexts: parsed.contexts ?? [] };
}

const upsert = <T extends { name: string }>(list: T[], items: T[]): T[] => [
  ...list.filter((e) => !items.some((i) => i.name === e.name)),
  ...items,
];

/**
 * Merges the entries of `config` into the user's kubeconfig, replacing only entries of the same names;
 * other clusters, users and contexts stay as they were. Returns the context that was current before.
 */
export function mergeIntoUserKubeconfig(config: KubeconfigFile, opts: { switchContext: boolean; file?: string }): string | undefined {
  const file = opts.file ?? userKubeconfigPath();
  const current = readKubeconfig(file);
  const previous = current['current-context'];
  const merged: KubeconfigFile = {
    ...current,
    clusters: upsert(current.clusters, config.clusters),
    users: upsert(current.users, config.users),
    contexts: upsert(current.contexts, config.contexts),
  };
  if (opts.switchContext && config['current-context']) merged['current-context'] = config['current-context'];
  writePrivateFile(file, YAML.stringify(merged));
  return previous;
}

/** Removes the cluster, user and context called `name`; if it was current, `fallback` becomes current. */
export function removeFromUserKubeconfig(name: string, opts: { fallback?: string; file?: string } = {}): boolean {
  const file = opts.file ?? userKubeconfigPath();
  if (!existsSync(file)) return false;
  const current = readKubeconfig(file);
  const found = current.contexts.some((c) => c.name === name);
  const keep = <T extends { name: string }>(l: T[]): T[] => l.filter((e) => e.name !== name);
  const next: KubeconfigFile = { ...current, clusters: keep(current.clusters), users: keep(current.users), contexts: keep(current.contexts) };
  if (next['current-context'] === name) {
    if (opts.fallback && next.contexts.some((c) => c.name === opts.fallback)) next['current-context'] = opts.fallback;
    else delete next['current-context'];
  }
  writePrivateFile(file, YAML.stringify(next));
  return found;
}

export function setCurrentContext(name: string, file = userKubeconfigPath()): void {
  const current = readKubeconfig(file);
  if (!current.contexts.some((c) => c.name === name)) throw new Error(`context "${name}" is not in ${file}`);
  writePrivateFile(file, YAML.stringify({ ...current, 'current-context': name }));
}

export function currentContext(file = userKubeconfigPath()): string | undefined {
  return readKubeconfig(file)['current-context'];
}

const readMaybeFile = (data?: string, file?: string): string | undefined =>
  data ? Buffer.from(data, 'base64').toString('utf8') : file ? readFileSync(file, 'utf8') : undefined;

/**
 * Reads the access of a kubeconfig context (default: the current one) with client-node's loader, which
 * knows $KUBECONFIG, merged files and relative paths.
 */
export function accessFromKubeconfig(opts: { file?: string; context?: string } = {}): ClusterAccess & { context: string } {
  const kc = new KubeConfig();
  if (opts.file) kc.loadFromFile(opts.file);
  else kc.loadFromDefault();
  if (opts.context) kc.setCurrentContext(opts.context);
  const ctxName = kc.getCurrentContext();
  const ctx = kc.getContextObject(ctxName);
  if (!ctx) throw new Error(`no current kubeconfig context (file: ${opts.file ?? userKubeconfigPath()})`);
  const cluster = kc.getCluster(ctx.cluster);
  const user = kc.getUser(ctx.user);
  if (!cluster) throw new Error(`kubeconfig context "${ctxName}" names no cluster`);
  return {
    context: ctxName,
    server: cluster.server,
    ca: readMaybeFile(cluster.caData, cluster.caFile),
    cert: readMaybeFile(user?.certData, user?.certFile),
    key: readMaybeFile(user?.keyData, user?.keyFile),
    token: user?.token,
  };
}
