import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package's root folder, found from this file whether it runs from src/ (vitest) or dist/src/. */
export const packageRoot: string = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('kplex: cannot find its package.json');
    dir = up;
  }
  return dir;
})();

export const cacheDir = (): string => process.env.KPLEX_CACHE_DIR ?? path.join(os.homedir(), '.cache', 'kplex');

/** Where `kplex dev up` keeps its cluster unless told otherwise. */
export const defaultDevDataDir = (): string => process.env.KPLEX_DEV_DATA_DIR ?? path.join(os.homedir(), '.kplex', 'dev');

/** This kplex's version (package.json): what a snapshot file records as its maker. */
export const kplexVersion = (): string => (JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;
