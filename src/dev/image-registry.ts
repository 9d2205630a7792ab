import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { command } from './command.js';
import { isDigest, isRegistryHost, isRepository, isTag, readEntry, tarEntries, type ImageIndex, type TarEntry } from './image-archive.js';

/** What a distribution API path asks for; undefined for anything else. */
export interface RegistryRequest {
  kind: 'manifests' | 'blobs';
  /** The image as containerd names it: `docker.io/library/busybox:latest`, or `…@sha256:…` by digest. */
  ref: string;
  digest?: string;
}

/**
 * Reads `/v2/<repository>/(manifests|blobs)/<tag or digest>` with containerd's `ns` (the registry the
 * mirror stands in for). Every part must be what the distribution spec allows: a digest names a file of
 * containerd's content store, so nothing else may reach a path.
 */
export function parseRegistryRequest(pathname: string, ns: string | null): RegistryRequest | undefined {
  const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(pathname);
  const registry = ns ?? 'docker.io';
  if (!m || !isRepository(m[1]!) || !isRegistryHost(registry)) return undefined;
  const [, repository, kind, reference] = m as unknown as [string, string, 'manifests' | 'blobs', string];
  if (isDigest(reference)) return { kind, ref: `${registry}/${repository}@${reference}`, digest: reference };
  if (kind === 'manifests' && isTag(reference)) return { kind, ref: `${registry}/${repository}:${reference}` };
  return undefined;
}

/**
 * The HTTP reason phrase of a manifest the node does not have. containerd quotes a mirror's non-404
 * status in its pull error, which kubelet puts in the pod's Failed event: the one place a user looks.
 */
export const notLoadedReason = (ref: string): string =>
  `kplex: ${ref} is not on this node and the embedded cluster has no registry access; load it with: kplex dev image load FILE.tar`;

/** Where the node's containerd keeps what it has: its socket, and its content store's blob folder. */
export interface NodeImageStore {
  containerdSocket: string;
  contentDir: string;
}

/** An image containerd has under `ref`: its manifest's digest and media type, from `ctr images ls`. */
async function containerdImage(store: NodeImageStore, ref: string): Promise<{ digest: string; mediaType: string } | undefined> {
  const r = await command('ctr', ['--address', store.containerdSocket, '-n', 'k8s.io', 'images', 'ls'], 10_000);
  if (r.code !== 0) throw new Error(`ctr images ls failed (${r.code}): ${r.stderr.trim()}`);
  for (const line of r.stdout.split('\n').slice(1)) {
    const [name, mediaType, digest] = line.split(/\s+/);
    if (name === ref && mediaType && digest && isDigest(digest)) return { digest, mediaType };
  }
  return undefined;
}

/**
 * A read-only OCI distribution endpoint on loopback, the node's containerd's mirror of every registry: it
 * serves the locally built images, and the images `kplex dev image load` put into containerd. Kubernetes
 * pulls `nginx` (tag latest) on every pod start, as with any registry, so importing images alone is not
 * enough. An image that is in neither gets kubelet's usual ErrImagePull, with a message saying how to load
 * it (notLoadedReason).
 */
export class ImageRegistry {
  private constructor(
    private readonly server: http.Server,
    readonly url: string,
  ) {}

  static async start(imageTars: string[], node: NodeImageStore): Promise<ImageRegistry> {
    const blobs = new Map<string, TarEntry>();
    const tags = new Map<string, { digest: string; mediaType: string }>();
    for (const tar of imageTars) {
      const entries = await tarEntries(tar);
      for (const [name, b] of entries) if (name.startsWith('blobs/sha256/') && b.size > 0) blobs.set(`sha256:${name.slice('blobs/sha256/'.length)}`, b);
      const index = JSON.parse((await readEntry(entries.get('index.json')!)).toString('utf8')) as ImageIndex;
      for (const m of index.manifests ?? []) {
        const ref = m.annotations?.['io.containerd.image.name'];
        if (ref) tags.set(ref, { digest: m.digest, mediaType: m.mediaType });
      }
    }
    const manifestTypes = new Map([...tags.values()].map((t) => [t.digest, t.mediaType]));

    /** A blob of the built images, else of containerd's content store (what `kplex dev image load` added). */
    const findBlob = async (digest: string): Promise<TarEntry | undefined> => {
      const built = blobs.get(digest);
      if (built) return built;
      const file = path.join(node.contentDir, digest.slice('sha256:'.length));
      // A digest the store lacks is a blob the node does not have: the caller answers "unknown".
      const s = await stat(file).catch(() => undefined);
      return s?.isFile() ? { file, offset: 0, size: s.size } : undefined;
    };
    const manifestType = async (digest: string, blob: TarEntry): Promise<string> => {
      const known = manifestTypes.get(digest);
      if (known) return known;
      const manifest = JSON.parse((await readEntry(blob)).toString('utf8')) as { mediaType?: string };
      return manifest.mediaType ?? 'application/vnd.oci.image.manifest.v1+json';
    };

    const answer = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
      const url = new URL(req.url ?? '/', 'http://registry');
      const json = { 'content-type': 'application/json' };
      const send = (status: number, headers: Record<string, string | number> = {}, body?: Buffer | string, reason?: string) => {
        if (reason) res.writeHead(status, reason, headers);
        else res.writeHead(status, headers);
        res.end(req.method === 'HEAD' ? undefined : body);
      };
      if (url.pathname === '/v2/' || url.pathname === '/v2') return send(200, json, '{}');
      // containerd names the registry a mirror stands in for in `ns`.
      const r = parseRegistryRequest(url.pathname, url.searchParams.get('ns'));
      if (!r || (req.method !== 'GET' && req.method !== 'HEAD')) return send(404, json, '{"errors":[{"code":"NAME_UNKNOWN"}]}');
      let digest = r.digest ?? tags.get(r.ref)?.digest;
      let mediaType = digest ? manifestTypes.get(digest) : undefined;
      if (!digest) {
        const loaded = await containerdImage(node, r.ref);
        digest = loaded?.digest;
        mediaType = loaded?.mediaType;
      }
      const blob = digest ? await findBlob(digest) : undefined;
      if (!digest || !blob) {
        if (r.kind === 'blobs') return send(404, json, '{"errors":[{"code":"BLOB_UNKNOWN"}]}');
        // Not 404: containerd drops a 404's text and says only "not found".
        const reason = notLoadedReason(r.ref);
        return send(502, json, JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: reason }] }), reason);
      }
      const headers = {
        'content-type': r.kind === 'manifests' ? (mediaType ?? (await manifestType(digest, blob))) : 'application/octet-stream',
        'content-length': blob.size,
        'docker-content-digest': digest,
      };
      if (req.method === 'HEAD' || blob.size === 0) return send(200, headers);
      res.writeHead(200, headers);
      const body = createReadStream(blob.file, { start: blob.offset, end: blob.offset + blob.size - 1 });
      // A blob removed while it is read (its image deleted meanwhile) cuts the answer short; containerd retries.
      body.once('error', (err) => res.destroy(err));
      body.pipe(res);
    };
    const server = http.createServer((req, res) => {
      answer(req, res).catch((err: Error) => {
        // As the reason phrase too, so that containerd's pull error, and kubelet's event, quote it.
        const reason = `kplex: the node's registry mirror failed: ${err.message}`.replace(/[^\x20-\x7e]+/g, ' ').slice(0, 300);
        if (!res.headersSent) res.writeHead(500, reason, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ errors: [{ code: 'UNKNOWN', message: err.message }] }));
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    return new ImageRegistry(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
