import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

interface Blob {
  file: string;
  offset: number;
  size: number;
}

interface ImageIndex {
  manifests: { digest: string; mediaType: string; annotations?: Record<string, string> }[];
}

/** The files of a tar archive: name → where its bytes are. Reads only the 512-byte headers. */
async function tarEntries(file: string): Promise<Map<string, Blob>> {
  const out = new Map<string, Blob>();
  const fh = await open(file, 'r');
  try {
    const header = Buffer.alloc(512);
    let pos = 0;
    for (;;) {
      const { bytesRead } = await fh.read(header, 0, 512, pos);
      if (bytesRead < 512 || header.every((b) => b === 0)) break;
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

async function readBlob(b: Blob): Promise<Buffer> {
  const fh = await open(b.file, 'r');
  try {
    const buf = Buffer.alloc(b.size);
    await fh.read(buf, 0, b.size, b.offset);
    return buf;
  } finally {
    await fh.close();
  }
}

/**
 * A read-only OCI distribution endpoint for the locally built images, on loopback: the node's containerd
 * uses it as the mirror of docker.io and registry.k8s.io. Kubernetes pulls `nginx` (tag latest) on every
 * pod start, as with any registry, so importing the images alone is not enough; an image that is not
 * here gets the registry's "not found", and kubelet's usual ErrImagePull.
 */
export class ImageRegistry {
  private constructor(
    private readonly server: http.Server,
    readonly url: string,
  ) {}

  static async start(imageTars: string[]): Promise<ImageRegistry> {
    const blobs = new Map<string, Blob>();
    const tags = new Map<string, { digest: string; mediaType: string }>();
    for (const tar of imageTars) {
      const entries = await tarEntries(tar);
      for (const [name, b] of entries) if (name.startsWith('blobs/sha256/') && b.size > 0) blobs.set(`sha256:${name.slice('blobs/sha256/'.length)}`, b);
      const index = JSON.parse((await readBlob(entries.get('index.json')!)).toString('utf8')) as ImageIndex;
      for (const m of index.manifests) {
        const ref = m.annotations?.['io.containerd.image.name'];
        if (ref) tags.set(ref, { digest: m.digest, mediaType: m.mediaType });
      }
    }
    const manifestTypes = new Map([...tags.values()].map((t) => [t.digest, t.mediaType]));

    const server = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://registry');
      const send = (status: number, headers: Record<string, string | number> = {}, body?: Buffer | string) => {
        res.writeHead(status, headers);
        res.end(req.method === 'HEAD' ? undefined : body);
      };
      if (url.pathname === '/v2/' || url.pathname === '/v2') return send(200, { 'content-type': 'application/json' }, '{}');
      const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(url.pathname);
      if (!m || (req.method !== 'GET' && req.method !== 'HEAD')) return send(404, { 'content-type': 'application/json' }, '{"errors":[{"code":"NAME_UNKNOWN"}]}');
      const [, repo, kind, reference] = m as unknown as [string, string, string, string];
      // containerd names the registry a mirror stands in for in `ns`.
      const registry = url.searchParams.get('ns') ?? 'docker.io';
      const digest = reference.startsWith('sha256:') ? reference : tags.get(`${registry}/${repo}:${reference}`)?.digest;
      const blob = digest ? blobs.get(digest) : undefined;
      if (!digest || !blob) return send(404, { 'content-type': 'application/json' }, `{"errors":[{"code":"${kind === 'manifests' ? 'MANIFEST_UNKNOWN' : 'BLOB_UNKNOWN'}"}]}`);
      const headers = {
        'content-type': kind === 'manifests' ? (manifestTypes.get(digest) ?? 'application/vnd.oci.image.manifest.v1+json') : 'application/octet-stream',
        'content-length': blob.size,
        'docker-content-digest': digest,
      };
      if (req.method === 'HEAD' || blob.size === 0) return send(200, headers);
      res.writeHead(200, headers);
      createReadStream(blob.file, { start: blob.offset, end: blob.offset + blob.size - 1 }).pipe(res);
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
