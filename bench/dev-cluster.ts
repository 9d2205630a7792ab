import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { findBinaries } from '../src/controlplane/binaries.js';
import { KubeClient } from '../src/k8s/client.js';
import { accessFromKubeconfig } from '../src/k8s/kubeconfig.js';
import { packageRoot } from '../src/paths.js';

const run = promisify(execFile);

/**
 * A throw-away embedded cluster for a benchmark, with its own kubeconfig and data folder: `nodes`
 * simulated nodes, and `realNodes` real ones (a real node needs the e2e lock: one per machine).
 */
export async function devCluster(name: string, nodes = 3, realNodes = 0) {
  const dir = mkdtempSync(path.join(os.tmpdir(), `kplex-${name}-`));
  const env = { ...process.env, KUBECONFIG: path.join(dir, 'kubeconfig'), KPLEX_UNSAFE_NO_FSYNC: '1' };
  const cli = path.join(packageRoot, 'bin', 'kplex.js');
  const kplexOut = async (args: string[]): Promise<string> => (await run(process.execPath, [cli, ...args], { env, maxBuffer: 64 << 20 })).stdout;
  const kplex = async (args: string[]): Promise<void> => void (await kplexOut(args));
  const dataDir = path.join(dir, 'data');
  await kplex(['dev', 'up', '--detach', '--nodes', String(realNodes), '--simulated-nodes', String(nodes), '--gateway-port', '0', '--data-dir', dataDir]);
  const host = new KubeClient(accessFromKubeconfig({ file: env.KUBECONFIG, context: 'kplex-host' }));
  return {
    dir,
    dataDir,
    env,
    host,
    kplex,
    kplexOut,
    down: async () => {
      await host.close();
      await kplex(['dev', 'down', '--data-dir', dataDir]);
    },
  };
}

/** The machine's kubectl (what users have), or the one built beside the server when there is none. */
export function kubectlPath(): string {
  const onPath = spawnSync('sh', ['-c', 'command -v kubectl'], { encoding: 'utf8' }).stdout.trim();
  return onPath || findBinaries().paths.kubectl;
}
