import { accessSync, constants, existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { cacheDir } from '../paths.js';

/** The Kubernetes release kplex builds and tests against (see scripts/k8s-binaries.sh). */
export const K8S_VERSION = 'v1.35.4';

export const PROGRAMS = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok', 'kubectl'] as const;
export type Program = (typeof PROGRAMS)[number];

export interface Binaries {
  paths: Record<Program, string>;
  /** kwok's stage files: how simulated nodes and pods change state. */
  kwokStages: string[];
}

export class MissingBinaryError extends Error {
  constructor(readonly program: string, looked: string[]) {
    super(`${program} not found (looked in ${looked.join(', ')}); build it with: npm run binaries`);
    this.name = 'MissingBinaryError';
  }
}

const isExecutable = (file: string): boolean => {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

/** Folders searched, in order: $KPLEX_BIN_DIR, the build cache, then PATH. */
export function searchDirs(): string[] {
  const dirs = [
    process.env.KPLEX_BIN_DIR,
    path.join(cacheDir(), 'bin', K8S_VERSION),
    ...(process.env.PATH ?? '').split(path.delimiter),
  ];
  return dirs.filter((d): d is string => !!d);
}

export function findBinaries(dirs = searchDirs()): Binaries {
  const paths = {} as Record<Program, string>;
  for (const program of PROGRAMS) {
    const dir = dirs.find((d) => isExecutable(path.join(d, program)));
    if (!dir) throw new MissingBinaryError(program, dirs.slice(0, 2));
    paths[program] = path.join(dir, program);
  }
  const stagesDir = path.join(path.dirname(paths.kwok), 'kwok-stages');
  if (!existsSync(stagesDir)) throw new MissingBinaryError('kwok stages (kwok-stages/)', [path.dirname(paths.kwok)]);
  const kwokStages = readdirSync(stagesDir)
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => path.join(stagesDir, f));
  return { paths, kwokStages };
}
