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

/** A real node's programs, built by the same script; a cluster without them runs simulated nodes only. */
export const NODE_PROGRAMS = ['kubelet', 'kube-proxy', 'coredns', 'crictl', 'kube-router', 'local-path-provisioner', 'metrics-server'] as const;
export type NodeProgram = (typeof NODE_PROGRAMS)[number];

/** The images a real node imports (scripts/node-images.sh builds them beside the binaries). */
export const NODE_IMAGES = ['pause', 'nginx', 'busybox', 'kubectl'] as const;

/**
 * The images of a tenant control plane run as pods (provider `cluster`), under their upstream names:
 * the node's registry mirror serves them, so a node pulls them only when such a tenant is made there.
 */
export const CONTROL_PLANE_IMAGES = ['kube-apiserver', 'kube-controller-manager', 'etcd', 'coredns'] as const;

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

/**
 * The real node's programs and image tars beside the other binaries, or what is missing (a reason for
 * running simulated nodes only).
 */
export function findNodeBinaries(b: Binaries): { paths: Record<NodeProgram, string>; images: string[]; served: string[] } | { missing: string } {
  const dir = path.dirname(b.paths.kubectl);
  const paths = {} as Record<NodeProgram, string>;
  for (const program of NODE_PROGRAMS) {
    paths[program] = path.join(dir, program);
    if (!isExecutable(paths[program])) return { missing: `${program} is not built in ${dir} (npm run binaries builds it)` };
  }
  const images = NODE_IMAGES.map((i) => path.join(dir, 'images', `${i}.tar`));
  const absent = images.find((f) => !existsSync(f));
  if (absent) return { missing: `image ${absent} is not built (npm run setup builds it)` };
  // Without them the node runs; only a tenant of provider `cluster` cannot start there (its pods say why).
  const served = CONTROL_PLANE_IMAGES.map((i) => path.join(dir, 'images', `${i}.tar`)).filter((f) => existsSync(f));
  return { paths, images, served };
}
