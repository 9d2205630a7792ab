import { existsSync, mkdirSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
// KubeConfig's own entry parsers, without the KubeConfig class: importing that loads client-node's whole
// generated API (about 1.5 s for every CLI command), and its loading of several files is not kubectl's
// (names defined twice throw, the last file's current-context wins), which is what kubectl users have.
import { newClusters, newContexts, newUsers } from '@kubernetes/client-node/dist/config_types.js';
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

/** The files kubectl reads, in its order: those of $KUBECONFIG (each once), else ~/.kube/config. */
export function kubeconfigFiles(): string[] {
  const env = process.env.KUBECONFIG?.split(path.delimiter).filter(Boolean) ?? [];
  return env.length ? [...new Set(env)] : [path.join(os.homedir(), '.kube', 'config')];
}

/** Where kubectl creates what is new: the only file, else the first that exists, else the last. */
export function defaultKubeconfigFile(files: string[]): string {
  return (files.length > 1 && files.find((f) => existsSync(f))) || files[files.length - 1]!;
}

const SECTIONS = ['clusters', 'users', 'contexts'] as const;
type Section = (typeof SECTIONS)[number];
type RawEntry = Record<string, unknown> & { name: string };

/** The merged view of several kubeconfig files, each entry with the file that defines it. */
export interface MergedKubeconfig {
  files: string[];
  currentContext?: string;
  /** The file whose current-context is the merged one. */
  currentContextFile?: string;
  clusters: Map<string, { file: string; raw: RawEntry }>;
  users: Map<string, { file: string; raw: RawEntry }>;
  contexts: Map<string, { file: string; raw: RawEntry }>;
}

function readObject(file: string): Record<string, unknown> | undefined {
  if (!existsSync(file)) return undefined;
  let parsed: unknown;
  try {
    parsed = YAML.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`kubeconfig ${file}: ${(err as Error).message}`);
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error(`kubeconfig ${file} is not a YAML mapping`);
  return parsed as Record<string, unknown>;
}

/**
 * Reads kubeconfig files (default: kubectl's) and merges them by kubectl's rules: missing files are
 * skipped, and the first file to define a name or a current-context wins.
 */
export function loadKubeconfig(files: string[] = kubeconfigFiles()): MergedKubeconfig {
  const merged: MergedKubeconfig = { files, clusters: new Map(), users: new Map(), contexts: new Map() };
  for (const file of files) {
    const config = readObject(file);
    if (!config) continue;
    const current = config['current-context'];
    if (merged.currentContext === undefined && typeof current === 'string' && current) {
      merged.currentContext = current;
      merged.currentContextFile = file;
    }
    for (const section of SECTIONS) {
      const list = config[section];
      if (!Array.isArray(list)) continue;
      for (const raw of list as unknown[]) {
        const name = (raw as { name?: unknown } | null)?.name;
        if (typeof name === 'string' && name && !merged[section].has(name)) merged[section].set(name, { file, raw: raw as RawEntry });
      }
    }
  }
  return merged;
}

/** The current context of the user's kubeconfig, as kubectl sees it. */
export function currentContext(files?: string[]): string | undefined {
  return loadKubeconfig(files).currentContext;
}

/** Edits one kubeconfig file, keeping everything kplex does not change as it was (comments too). */
function editFile(file: string, edits: ((doc: YAML.Document) => void)[]): void {
  const doc: YAML.Document = YAML.parseDocument(existsSync(file) ? readFileSync(file, 'utf8') : '');
  if (doc.errors.length) throw new Error(`kubeconfig ${file}: ${doc.errors[0]!.message}`);
  if (doc.contents === null) doc.contents = doc.createNode({ apiVersion: 'v1', kind: 'Config' });
  for (const edit of edits) edit(doc);
  // Sequences unindented, as kubectl writes them, so that a file kubectl wrote keeps its layout.
  writePrivateFile(file, doc.toString({ indentSeq: false }));
}

const sameName = (name: string) => (item: unknown): boolean => YAML.isMap(item) && String(item.get('name')) === name;

/** Replaces the entry of the same name whole (as kubectl does), or appends it. */
function upsert(doc: YAML.Document, section: Section, entry: Named<unknown>): void {
  const list = doc.get(section);
  if (!YAML.isSeq(list)) {
    doc.set(section, doc.createNode([entry]));
    return;
  }
  list.flow = false;
  const i = list.items.findIndex(sameName(entry.name));
  if (i >= 0) list.items[i] = doc.createNode(entry);
  else list.items.push(doc.createNode(entry));
}

function remove(doc: YAML.Document, section: Section, name: string): void {
  const list = doc.get(section);
  if (YAML.isSeq(list)) list.items = list.items.filter((item) => !sameName(name)(item));
}

/** Edits grouped by file, so that each file is read and written once. */
class Edits {
  private readonly byFile = new Map<string, ((doc: YAML.Document) => void)[]>();

  at(file: string, edit: (doc: YAML.Document) => void): void {
    const list = this.byFile.get(file);
    if (list) list.push(edit);
    else this.byFile.set(file, [edit]);
  }

  write(): void {
    for (const [file, edits] of this.byFile) editFile(file, edits);
  }
}

/**
 * Merges the entries of `config` into the user's kubeconfig the way kubectl writes a change to several
 * files: an entry replaces the one of the same name in the file that defines it, a new entry and a
 * current-context go to kubectl's default file (see defaultKubeconfigFile). Everything else stays as it
 * was. Returns the context that was current before.
 */
export function mergeIntoUserKubeconfig(config: KubeconfigFile, opts: { switchContext: boolean; files?: string[] }): string | undefined {
  const files = opts.files ?? kubeconfigFiles();
  const merged = loadKubeconfig(files);
  const target = defaultKubeconfigFile(files);
  const edits = new Edits();
  for (const section of SECTIONS) {
    for (const entry of config[section]) edits.at(merged[section].get(entry.name)?.file ?? target, (doc) => upsert(doc, section, entry));
  }
  const next = config['current-context'];
  if (opts.switchContext && next && next !== merged.currentContext) edits.at(target, (doc) => doc.set('current-context', next));
  edits.write();
  return merged.currentContext;
}

/**
 * Removes the cluster, user and context called `name` from the files that define them; if it was the
 * current context, `fallback` becomes current (or none is). Returns whether there was such a context.
 */
export function removeFromUserKubeconfig(name: string, opts: { fallback?: string; files?: string[] } = {}): boolean {
  const files = opts.files ?? kubeconfigFiles();
  const merged = loadKubeconfig(files);
  const edits = new Edits();
  for (const section of SECTIONS) {
    const defined = merged[section].get(name);
    if (defined) edits.at(defined.file, (doc) => remove(doc, section, name));
  }
  if (merged.currentContext === name) {
    const fallback = opts.fallback;
    if (fallback && fallback !== name && merged.contexts.has(fallback)) edits.at(defaultKubeconfigFile(files), (doc) => doc.set('current-context', fallback));
    else edits.at(merged.currentContextFile!, (doc) => doc.delete('current-context'));
  }
  edits.write();
  return merged.contexts.has(name);
}

/** Makes `name` the current context, written where kubectl writes it. */
export function setCurrentContext(name: string, files: string[] = kubeconfigFiles()): void {
  const merged = loadKubeconfig(files);
  if (!merged.contexts.has(name)) throw new Error(`context "${name}" is not in ${files.join(path.delimiter)}`);
  if (merged.currentContext === name) return;
  editFile(defaultKubeconfigFile(files), [(doc) => doc.set('current-context', name)]);
}

const readMaybeFile = (data?: string, file?: string): string | undefined =>
  data ? Buffer.from(data, 'base64').toString('utf8') : file ? readFileSync(file, 'utf8') : undefined;

/** Parses one entry with client-node's parser, its file paths taken relative to the file that defines it. */
function parseEntry<T>(section: Section, defined: { file: string; raw: RawEntry }, parse: (list: unknown[]) => T[]): T {
  const dir = path.dirname(defined.file);
  const inner = section.slice(0, -1);
  const body = { ...(defined.raw[inner] as Record<string, unknown> | undefined) };
  for (const key of ['certificate-authority', 'client-certificate', 'client-key', 'token-file']) {
    if (typeof body[key] === 'string' && body[key]) body[key] = path.resolve(dir, body[key] as string);
  }
  try {
    return parse([{ ...defined.raw, [inner]: body }])[0]!;
  } catch (err) {
    throw new Error(`kubeconfig ${defined.file}: ${inner} "${defined.raw.name}": ${(err as Error).message}`);
  }
}

const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** A pod's own access to its cluster, used (as kubectl does) when there is no kubeconfig file. */
function inClusterAccess(): (ClusterAccess & { context: string }) | undefined {
  const host = process.env.KUBERNETES_SERVICE_HOST;
  const tokenFile = path.join(SERVICE_ACCOUNT_DIR, 'token');
  if (!host || !existsSync(tokenFile)) return undefined;
  const server = `https://${host.includes(':') ? `[${host}]` : host}:${process.env.KUBERNETES_SERVICE_PORT ?? '443'}`;
  return { context: 'in-cluster', server, ca: readFileSync(path.join(SERVICE_ACCOUNT_DIR, 'ca.crt'), 'utf8'), token: readFileSync(tokenFile, 'utf8').trim(), tokenFile };
}

/**
 * The access of a kubeconfig context (default: the current one), from `file` alone or from kubectl's
 * files merged the way kubectl merges them; the one reader of kubeconfigs, so that kplex and kubectl
 * agree on which context and credentials are meant.
 */
export function accessFromKubeconfig(opts: { file?: string; context?: string } = {}): ClusterAccess & { context: string } {
  const files = opts.file ? [opts.file] : kubeconfigFiles();
  const merged = loadKubeconfig(files);
  const ctxName = opts.context ?? merged.currentContext;
  if (!ctxName) {
    const pod = opts.file || files.some((f) => existsSync(f)) ? undefined : inClusterAccess();
    if (pod) return pod;
    throw new Error(`no current kubeconfig context (files: ${files.join(path.delimiter)})`);
  }
  const ctxEntry = merged.contexts.get(ctxName);
  if (!ctxEntry) throw new Error(`kubeconfig context "${ctxName}" is not in ${files.join(path.delimiter)}`);
  const ctx = parseEntry('contexts', ctxEntry, newContexts);
  const clusterEntry = merged.clusters.get(ctx.cluster);
  if (!clusterEntry) throw new Error(`kubeconfig context "${ctxName}" names cluster "${ctx.cluster}", which is not defined`);
  const cluster = parseEntry('clusters', clusterEntry, newClusters);
  const userEntry = ctx.user ? merged.users.get(ctx.user) : undefined;
  if (ctx.user && !userEntry) throw new Error(`kubeconfig context "${ctxName}" names user "${ctx.user}", which is not defined`);
  const user = userEntry ? parseEntry('users', userEntry, newUsers) : undefined;
  return {
    context: ctxName,
    server: cluster.server,
    ca: readMaybeFile(cluster.caData, cluster.caFile),
    cert: readMaybeFile(user?.certData, user?.certFile),
    key: readMaybeFile(user?.keyData, user?.keyFile),
    token: user?.token,
  };
}
