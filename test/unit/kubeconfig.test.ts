import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import {
  accessFromKubeconfig,
  currentContext,
  defaultKubeconfigFile,
  kubeconfigFor,
  loadKubeconfig,
  mergeIntoUserKubeconfig,
  removeFromUserKubeconfig,
  setCurrentContext,
} from '../../src/k8s/kubeconfig.js';

const tmp = (): string => mkdtempSync(path.join(os.tmpdir(), 'kplex-kubeconfig-'));

/** A kubeconfig file text with one cluster, user and context per name, and a comment kplex must keep. */
function configText(names: Record<string, string>, current?: string): string {
  const entries = Object.entries(names);
  return [
    '# kept by hand',
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    ...entries.map(([n, server]) => `- name: ${n}\n  cluster: {server: "${server}"}`),
    'users:',
    ...entries.map(([n]) => `- name: ${n}\n  user: {token: token-${n}}`),
    'contexts:',
    ...entries.map(([n]) => `- name: ${n}\n  context: {cluster: ${n}, user: ${n}}`),
    ...(current ? [`current-context: ${current}`] : []),
    'preferences: {colors: true}',
    '',
  ].join('\n');
}

const read = (file: string): Record<string, unknown> & { clusters: { name: string; cluster: { server: string } }[]; contexts: { name: string }[] } =>
  YAML.parse(readFileSync(file, 'utf8'));
const names = (file: string, section: 'clusters' | 'contexts'): string[] => (read(file)[section] ?? []).map((e) => e.name);

/** A kubectl to check that kplex and kubectl see the same thing: the machine's, else the one built beside the server. */
function findKubectl(): string | undefined {
  const onPath = spawnSync('sh', ['-c', 'command -v kubectl'], { encoding: 'utf8' }).stdout.trim();
  if (onPath) return onPath;
  const built = path.join(process.env.KPLEX_CACHE_DIR ?? path.join(os.homedir(), '.cache', 'kplex'), 'bin', 'v1.35.4', 'kubectl');
  return spawnSync(built, ['version', '--client']).status === 0 ? built : undefined;
}
const kubectlBin = findKubectl();
const kubectl = (files: string[], args: string[]): string => {
  const r = spawnSync(kubectlBin!, args, { env: { ...process.env, KUBECONFIG: files.join(path.delimiter) }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
};

describe('kubeconfig: several files, the way kubectl reads and writes them', () => {
  const savedEnv = process.env.KUBECONFIG;
  afterEach(() => {
    if (savedEnv === undefined) delete process.env.KUBECONFIG;
    else process.env.KUBECONFIG = savedEnv;
  });

  /** missing (not there) : a (alpha, shared; current alpha) : b (beta, shared, kplex-host; current beta). */
  function threeFiles(): { dir: string; missing: string; a: string; b: string; files: string[] } {
    const dir = tmp();
    const missing = path.join(dir, 'missing');
    const a = path.join(dir, 'a');
    const b = path.join(dir, 'b');
    writeFileSync(a, configText({ alpha: 'https://alpha', shared: 'https://shared-from-a' }, 'alpha'));
    writeFileSync(b, configText({ beta: 'https://beta', shared: 'https://shared-from-b', 'kplex-host': 'https://old-host' }, 'beta'));
    return { dir, missing, a, b, files: [missing, a, b] };
  }

  it('merges them: missing files are skipped, the first file to define a name or a current-context wins', () => {
    const { a, b, files } = threeFiles();
    const merged = loadKubeconfig(files);
    expect(merged.currentContext).toBe('alpha');
    expect(merged.currentContextFile).toBe(a);
    expect(merged.clusters.get('shared')?.file).toBe(a);
    expect(merged.contexts.get('beta')?.file).toBe(b);
    expect(currentContext(files)).toBe('alpha');

    process.env.KUBECONFIG = files.join(path.delimiter);
    expect(accessFromKubeconfig()).toMatchObject({ context: 'alpha', server: 'https://alpha', token: 'token-alpha' });
    // Context "shared" of b names cluster "shared", which a defines first.
    expect(accessFromKubeconfig({ context: 'shared' }).server).toBe('https://shared-from-a');
    expect(accessFromKubeconfig({ context: 'beta' })).toMatchObject({ server: 'https://beta', token: 'token-beta' });
  });

  it('creates what is new in the first file that exists, and changes an entry in the file that defines it', () => {
    const { missing, a, b, files } = threeFiles();
    expect(defaultKubeconfigFile(files)).toBe(a);

    const bBefore = readFileSync(b, 'utf8');
    const previous = mergeIntoUserKubeconfig(kubeconfigFor('kplex_demo', { server: 'https://gw/tenants/demo', token: 't' }), { switchContext: true, files });
    expect(previous).toBe('alpha');
    expect(readFileSync(b, 'utf8')).toBe(bBefore);
    expect(names(a, 'contexts')).toEqual(['alpha', 'shared', 'kplex_demo']);
    expect(read(a)['current-context']).toBe('kplex_demo');
    expect(readFileSync(a, 'utf8')).toContain('# kept by hand');
    expect(read(a).preferences).toEqual({ colors: true });

    const aBefore = readFileSync(a, 'utf8');
    mergeIntoUserKubeconfig(kubeconfigFor('kplex-host', { server: 'https://new-host', token: 'h' }), { switchContext: false, files });
    expect(readFileSync(a, 'utf8')).toBe(aBefore);
    expect(read(b).clusters.find((c) => c.name === 'kplex-host')?.cluster.server).toBe('https://new-host');
    expect(names(b, 'clusters')).toEqual(['beta', 'shared', 'kplex-host']);
    expect(read(b)['current-context']).toBe('beta');
    expect(loadKubeconfig([missing]).contexts.size).toBe(0);
  });

  it('removes entries from the files that define them, and makes the fallback current', () => {
    const { a, b, files } = threeFiles();
    mergeIntoUserKubeconfig(kubeconfigFor('kplex_demo', { server: 'https://gw/tenants/demo', token: 't' }), { switchContext: true, files });
    expect(removeFromUserKubeconfig('kplex_demo', { fallback: 'kplex-host', files })).toBe(true);
    expect(names(a, 'contexts')).toEqual(['alpha', 'shared']);
    expect(currentContext(files)).toBe('kplex-host');
    expect(read(a)['current-context']).toBe('kplex-host');

    expect(removeFromUserKubeconfig('kplex-host', { files })).toBe(true);
    expect(names(b, 'clusters')).toEqual(['beta', 'shared']);
    // No fallback: the file that set the current context no longer does, so the next file's is current.
    expect(read(a)['current-context']).toBeUndefined();
    expect(currentContext(files)).toBe('beta');
    expect(removeFromUserKubeconfig('nothing-like-it', { files })).toBe(false);
  });

  it('switches the current context in the file kubectl would, and refuses a context that is nowhere', () => {
    const { a, b, files } = threeFiles();
    setCurrentContext('beta', files);
    expect(read(a)['current-context']).toBe('beta');
    expect(read(b)['current-context']).toBe('beta');
    expect(() => setCurrentContext('nowhere', files)).toThrow(/context "nowhere" is not in/);
  });

  it('with no file yet, creates the last one, as kubectl does', () => {
    const dir = tmp();
    const files = [path.join(dir, 'x'), path.join(dir, 'y')];
    expect(defaultKubeconfigFile([files[0]!])).toBe(files[0]);
    mergeIntoUserKubeconfig(kubeconfigFor('kplex-host', { server: 'https://host', token: 'h' }), { switchContext: false, files });
    expect(names(files[1]!, 'contexts')).toEqual(['kplex-host']);
    expect(read(files[1]!)).toMatchObject({ apiVersion: 'v1', kind: 'Config' });
  });

  it('takes relative certificate paths from the file that defines the entry', () => {
    const dir = tmp();
    const sub = path.join(dir, 'certs-here');
    mkdirSync(sub);
    writeFileSync(path.join(sub, 'ca.crt'), 'THE CA');
    writeFileSync(path.join(sub, 'token'), 'file-token');
    const file = path.join(sub, 'config');
    writeFileSync(
      file,
      'clusters: [{name: c, cluster: {server: "https://c/", certificate-authority: ca.crt}}]\nusers: [{name: u, user: {token-file: token}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n',
    );
    process.env.KUBECONFIG = [path.join(dir, 'empty-first'), file].join(path.delimiter);
    expect(accessFromKubeconfig()).toMatchObject({ context: 'x', server: 'https://c', ca: 'THE CA', token: 'file-token' });
  });

  it.skipIf(!kubectlBin)('agrees with kubectl on what is current and where each entry went', () => {
    const { files } = threeFiles();
    expect(kubectl(files, ['config', 'current-context'])).toBe(currentContext(files));
    mergeIntoUserKubeconfig(kubeconfigFor('kplex_demo', { server: 'https://gw/tenants/demo', token: 't' }), { switchContext: true, files });
    mergeIntoUserKubeconfig(kubeconfigFor('kplex-host', { server: 'https://new-host', token: 'h' }), { switchContext: false, files });
    expect(kubectl(files, ['config', 'current-context'])).toBe('kplex_demo');
    expect(kubectl(files, ['config', 'view', '--context', 'kplex-host', '--minify', '-o', 'jsonpath={.clusters[0].cluster.server}'])).toBe('https://new-host');
    expect(kubectl(files, ['config', 'view', '--context', 'shared', '--minify', '-o', 'jsonpath={.clusters[0].cluster.server}'])).toBe('https://shared-from-a');

    // And the other way round: what kubectl writes, kplex reads.
    kubectl(files, ['config', 'use-context', 'beta']);
    expect(currentContext(files)).toBe('beta');
    kubectl(files, ['config', 'set-cluster', 'shared', '--server=https://shared-by-kubectl']);
    process.env.KUBECONFIG = files.join(path.delimiter);
    expect(accessFromKubeconfig({ context: 'shared' }).server).toBe('https://shared-by-kubectl');
  });
});
