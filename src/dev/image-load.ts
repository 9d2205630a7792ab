import { existsSync, statSync } from 'node:fs';
import { command, mustRun } from './command.js';
import { NotAnArchiveError, readImageArchive } from './image-archive.js';
import { nodePaths } from './node-config.js';
import { runningState } from './state.js';

/** Why an image could not be loaded, in one line; `exitCode` 3 when no dev cluster runs (as `dev status`). */
export class ImageLoadError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/**
 * The name ctr gives the images it imports before they get theirs: one that no pod can ask for (`.invalid`
 * is reserved), removed once the archive's own names are set.
 */
const IMPORT_PREFIX = 'kplex.invalid/import';

/**
 * Imports the images of an archive (an OCI image layout or a `docker save` tar) into the real node's
 * containerd under the names in the archive, where kubelet finds them and the node's registry mirror
 * serves them (a pod with tag `latest` pulls on every start). Returns the names, as the node knows them.
 */
export async function loadImage(dataDir: string, file: string): Promise<string[]> {
  if (!existsSync(file)) throw new ImageLoadError(`${file}: no such file`);
  if (!statSync(file).isFile()) throw new ImageLoadError(`${file} is not a file`);
  let archive;
  try {
    archive = await readImageArchive(file);
  } catch (err) {
    if (err instanceof NotAnArchiveError) throw new ImageLoadError(err.message);
    throw err;
  }
  if (archive.images.length === 0) {
    throw new ImageLoadError(`${file} names no image: export it with its name (docker save NAME:TAG, ctr images export FILE NAME, skopeo copy … oci-archive:FILE:NAME)`);
  }

  const state = runningState(dataDir);
  if (!state) throw new ImageLoadError(`no kplex dev cluster is running from ${dataDir}; start one with: kplex dev up`, 3);
  const socket = nodePaths(dataDir).containerdSocket;
  const ctr = (args: string[], timeoutMs?: number) => mustRun('ctr', ['--address', socket, '-n', 'k8s.io', ...args], timeoutMs);
  if (!state.components.some((c) => c.name === 'containerd') || (await command('ctr', ['--address', socket, 'version'], 5_000)).code !== 0) {
    throw new ImageLoadError(`the kplex dev cluster in ${dataDir} has no real node (its pods run on simulated nodes, which run no images); see why in: kplex dev up`);
  }

  // ctr names OCI images only by containerd's annotation, or by a ref name under --base-name: import them
  // by digest too and name them here; a docker archive's RepoTags ctr names itself.
  await ctr(['images', 'import', '--digests', '--base-name', IMPORT_PREFIX, file], 600_000);
  for (const image of archive.images) if (image.digest) await ctr(['images', 'tag', '--force', `${IMPORT_PREFIX}@${image.digest}`, image.name]);
  const listed = (await ctr(['images', 'ls', '-q'])).split('\n').filter(Boolean);
  const temporary = listed.filter((n) => n.startsWith(IMPORT_PREFIX));
  if (temporary.length > 0) await ctr(['images', 'rm', ...temporary]);
  const missing = archive.images.filter((i) => !listed.includes(i.name));
  if (missing.length > 0) throw new ImageLoadError(`ctr imported ${file} but no image ${missing.map((i) => i.name).join(', ')}: is it for linux/amd64?`);
  return archive.images.map((i) => i.name);
}
