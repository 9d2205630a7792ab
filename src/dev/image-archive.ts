// Reading image archives (an OCI image layout or a `docker save` tar) without unpacking them: the files
// are found by their tar headers, and their bytes read where they lie.
import { open } from 'node:fs/promises';

export interface TarEntry {
  file: string;
  offset: number;
  size: number;
}

export class NotAnArchiveError extends Error {}

/** Whether a 512-byte block is a tar header: its checksum field matches its bytes (the field read as spaces). */
function isTarHeader(header: Buffer): boolean {
  const stored = parseInt(header.toString('latin1', 148, 156).replace(/\0.*$/s, '').trim(), 8);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i]!;
  return stored === sum;
}

/** The files of a tar archive: name → where its bytes are. Reads only the 512-byte headers. */
export async function tarEntries(file: string): Promise<Map<string, TarEntry>> {
  const out = new Map<string, TarEntry>();
  const fh = await open(file, 'r');
  try {
    const header = Buffer.alloc(512);
    let pos = 0;
    for (;;) {
      const { bytesRead } = await fh.read(header, 0, 512, pos);
      if (pos === 0 && bytesRead >= 2 && header[0] === 0x1f && header[1] === 0x8b) throw new NotAnArchiveError(`${file} is gzip-compressed: gunzip it first`);
      if (bytesRead < 512 || header.every((b) => b === 0)) break;
      if (!isTarHeader(header)) throw new NotAnArchiveError(`${file} is not a tar archive`);
      const name = header.toString('utf8', 0, 100).replace(/\0.*$/s, '').replace(/^\.\//, '');
      const size = parseInt(header.toString('utf8', 124, 136).replace(/\0.*$/s, '').trim() || '0', 8);
      out.set(name, { file, offset: pos + 512, size });
      pos += 512 + Math.ceil(size / 512) * 512;
    }
  } finally {
    await fh.close();
  }
  return out;
}

export async function readEntry(e: TarEntry): Promise<Buffer> {
  const fh = await open(e.file, 'r');
  try {
    const buf = Buffer.alloc(e.size);
    await fh.read(buf, 0, e.size, e.offset);
    return buf;
  } finally {
    await fh.close();
  }
}

export interface ImageIndex {
  manifests?: { digest: string; mediaType: string; annotations?: Record<string, string> }[];
}

/** One image of a `docker save` archive's manifest.json. */
export interface DockerArchiveImage {
  Config?: string;
  RepoTags?: string[] | null;
  Layers?: string[];
}

export type ArchiveFormat = 'oci' | 'docker';

/** containerd's and the OCI spec's annotations naming an image in an index. */
const CONTAINERD_NAME = 'io.containerd.image.name';
const OCI_REF_NAME = 'org.opencontainers.image.ref.name';

// The parts of an image reference, as the distribution spec writes them.
export const REGISTRY_HOST = /[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?/;
export const REPOSITORY = /[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*/;
export const TAG = /[\w][\w.-]{0,127}/;
export const DIGEST = /sha256:[a-f0-9]{64}/;
const whole = (r: RegExp) => new RegExp(`^(?:${r.source})$`);
export const isRegistryHost = (s: string) => whole(REGISTRY_HOST).test(s);
export const isRepository = (s: string) => whole(REPOSITORY).test(s);
export const isTag = (s: string) => whole(TAG).test(s);
export const isDigest = (s: string) => whole(DIGEST).test(s);

/**
 * A reference as containerd and kubelet name it: `hello` is `docker.io/library/hello:latest`,
 * `team/hello:1` is `docker.io/team/hello:1`. Undefined when `ref` is not a full image reference (an
 * OCI ref name may be a bare tag such as `1`).
 */
export function normalizeReference(ref: string): string | undefined {
  const m = new RegExp(`^(?:(${REGISTRY_HOST.source})/)?(${REPOSITORY.source})(?::(${TAG.source}))?$`).exec(ref);
  if (!m) return undefined;
  let [, registry, repository, tag] = m as unknown as [string, string | undefined, string, string | undefined];
  // As Docker reads it: a first part without a dot or port, other than localhost, is a path, not a registry.
  if (registry && !/[.:]/.test(registry) && registry !== 'localhost') {
    repository = `${registry}/${repository}`;
    registry = undefined;
  }
  registry ??= 'docker.io';
  if (registry === 'docker.io' && !repository.includes('/')) repository = `library/${repository}`;
  return `${registry}/${repository}:${tag ?? 'latest'}`;
}

/** An image an archive names: its normalized name and, in an OCI layout, its manifest's digest. */
export interface ArchivedImage {
  name: string;
  digest?: string;
}

/**
 * The images an archive names, as the node will know them: containerd's name annotation or a full OCI
 * ref name in an OCI layout, the RepoTags of a `docker save` archive. Unnamed images are left out.
 */
export function archivedImages(format: ArchiveFormat, content: ImageIndex | DockerArchiveImage[]): ArchivedImage[] {
  const named =
    format === 'oci'
      ? ((content as ImageIndex).manifests ?? []).map((m) => ({ ref: ociManifestName(m), digest: m.digest }))
      : (content as DockerArchiveImage[]).flatMap((i) => (i.RepoTags ?? []).map((ref) => ({ ref, digest: undefined })));
  const out = new Map<string, ArchivedImage>();
  for (const { ref, digest } of named) {
    const name = ref === undefined ? undefined : normalizeReference(ref);
    if (name && !out.has(name)) out.set(name, digest ? { name, digest } : { name });
  }
  return [...out.values()];
}

/**
 * The name an OCI index gives one of its manifests: containerd's annotation, else the OCI ref name when
 * it is a full reference (`example.com/team/hello:1`, `hello:1`) rather than a bare tag (`1`).
 */
export function ociManifestName(m: { annotations?: Record<string, string> }): string | undefined {
  const ref = m.annotations?.[CONTAINERD_NAME] ?? m.annotations?.[OCI_REF_NAME];
  return ref && /[/:]/.test(ref) ? ref : undefined;
}

export interface ImageArchive {
  format: ArchiveFormat;
  images: ArchivedImage[];
}

/**
 * What an image archive holds: its format and its named images. An OCI layout has `index.json`
 * (and maybe manifest.json too: Docker 25 writes both), a `docker save` archive only `manifest.json`.
 */
export async function readImageArchive(file: string): Promise<ImageArchive> {
  const entries = await tarEntries(file);
  const json = async (name: string): Promise<unknown> => {
    try {
      return JSON.parse((await readEntry(entries.get(name)!)).toString('utf8'));
    } catch (err) {
      throw new NotAnArchiveError(`${file}: ${name} is not JSON (${(err as Error).message})`);
    }
  };
  if (entries.has('index.json')) return { format: 'oci', images: archivedImages('oci', (await json('index.json')) as ImageIndex) };
  if (entries.has('manifest.json')) {
    const images = await json('manifest.json');
    if (!Array.isArray(images)) throw new NotAnArchiveError(`${file}: manifest.json is not a docker save manifest`);
    return { format: 'docker', images: archivedImages('docker', images as DockerArchiveImage[]) };
  }
  throw new NotAnArchiveError(`${file} is not an image archive: it has neither index.json (an OCI layout) nor manifest.json (docker save)`);
}
