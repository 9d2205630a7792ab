import type { TestProject } from 'vitest/node';
import { kplex, processesMentioning, sharedHostPaths, tmpDir } from './helpers.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The folder of the host cluster that the files of the e2e-shared project share (see helpers.ts). */
    sharedHostDir: string;
  }
}

/**
 * globalSetup of the e2e-shared project: names the folder of the shared host cluster, and stops that
 * cluster once every file has run. The first file that uses it starts it (useSharedHost): the files
 * with a real node of their own run before, and this machine runs one real node at a time.
 */
export default function setup(project: TestProject): () => Promise<void> {
  const dir = tmpDir('shared-host');
  project.provide('sharedHostDir', dir);
  return async () => {
    const { dataDir, env } = sharedHostPaths(dir);
    const down = await kplex(['dev', 'down', '--data-dir', dataDir], env, 120_000);
    if (down.code !== 0) throw new Error(`kplex dev down of the shared host cluster failed: ${down.stderr}`);
    const left = processesMentioning(dataDir);
    if (left.length) throw new Error(`the shared host cluster left processes behind:\n${left.join('\n')}`);
  };
}
