import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { archivedImages, normalizeReference, readImageArchive, type ImageIndex } from '../../src/dev/image-archive.js';
import { notLoadedReason, parseRegistryRequest } from '../../src/dev/image-registry.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;

describe('image references', () => {
  it.each([
    ['hello', 'docker.io/library/hello:latest'],
    ['hello:1', 'docker.io/library/hello:1'],
    ['team/hello:1', 'docker.io/team/hello:1'],
    ['example.com/team/hello:1', 'example.com/team/hello:1'],
    ['localhost:5000/hello', 'localhost:5000/hello:latest'],
    ['localhost/hello:2', 'localhost/hello:2'],
    ['docker.io/library/busybox:latest', 'docker.io/library/busybox:latest'],
    ['Hello', undefined],
    ['hello:', undefined],
    ['../etc/passwd', undefined],
    ['a b', undefined],
  ])('%s is %s', (ref, want) => expect(normalizeReference(ref)).toBe(want));

  it('names the images of an OCI index by containerd annotation or a full ref name, never by a bare tag', () => {
    const index: ImageIndex = {
      manifests: [
        { digest: DIGEST, mediaType: 'm', annotations: { 'io.containerd.image.name': 'example.com/team/hello:1', 'org.opencontainers.image.ref.name': '1' } },
        { digest: `sha256:${'b'.repeat(64)}`, mediaType: 'm', annotations: { 'org.opencontainers.image.ref.name': 'hello:2' } },
        { digest: `sha256:${'c'.repeat(64)}`, mediaType: 'm', annotations: { 'org.opencontainers.image.ref.name': 'latest' } },
        { digest: `sha256:${'d'.repeat(64)}`, mediaType: 'm' },
      ],
    };
    expect(archivedImages('oci', index)).toEqual([
      { name: 'example.com/team/hello:1', digest: DIGEST },
      { name: 'docker.io/library/hello:2', digest: `sha256:${'b'.repeat(64)}` },
    ]);
  });

  it('names the images of a docker save archive by their RepoTags', () => {
    expect(archivedImages('docker', [{ RepoTags: ['hello:latest', 'example.com/hello:1'] }, { RepoTags: null }])).toEqual([
      { name: 'docker.io/library/hello:latest' },
      { name: 'example.com/hello:1' },
    ]);
  });
});

describe('reading archives', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'kplex-archive-'));
  const file = (name: string, data: string | Buffer) => {
    writeFileSync(path.join(dir, name), data);
    return path.join(dir, name);
  };

  it('reads a docker save archive and an OCI layout, and says what is wrong with anything else', async () => {
    file('manifest.json', JSON.stringify([{ Config: 'c.json', RepoTags: ['hello:1'], Layers: [] }]));
    execFileSync('tar', ['-C', dir, '-cf', path.join(dir, 'docker.tar'), 'manifest.json']);
    expect(await readImageArchive(path.join(dir, 'docker.tar'))).toEqual({ format: 'docker', images: [{ name: 'docker.io/library/hello:1' }] });

    file('index.json', JSON.stringify({ manifests: [{ digest: DIGEST, mediaType: 'm', annotations: { 'org.opencontainers.image.ref.name': 'example.com/x:1' } }] }));
    execFileSync('tar', ['-C', dir, '-cf', path.join(dir, 'oci.tar'), 'index.json', 'manifest.json']);
    expect(await readImageArchive(path.join(dir, 'oci.tar'))).toEqual({ format: 'oci', images: [{ name: 'example.com/x:1', digest: DIGEST }] });

    await expect(readImageArchive(file('text.txt', 'hello\n'.repeat(200)))).rejects.toThrow(/text\.txt is not a tar archive$/);
    await expect(readImageArchive(file('image.tar.gz', gzipSync(Buffer.alloc(4096))))).rejects.toThrow(/is gzip-compressed: gunzip it first$/);
    execFileSync('tar', ['-C', dir, '-cf', path.join(dir, 'other.tar'), 'text.txt']);
    await expect(readImageArchive(path.join(dir, 'other.tar'))).rejects.toThrow(/is not an image archive: it has neither index.json/);
  });
});

describe('the node registry mirror', () => {
  it.each([
    ['/v2/library/busybox/manifests/latest', 'docker.io', { kind: 'manifests', ref: 'docker.io/library/busybox:latest' }],
    ['/v2/team/hello/manifests/1', 'example.com', { kind: 'manifests', ref: 'example.com/team/hello:1' }],
    [`/v2/team/hello/blobs/${DIGEST}`, 'example.com', { kind: 'blobs', ref: `example.com/team/hello@${DIGEST}`, digest: DIGEST }],
    // A digest names a file of containerd's content store: nothing but 64 hex digits reaches a path.
    ['/v2/x/blobs/sha256:../../../../etc/shadow', 'docker.io', undefined],
    ['/v2/x/blobs/sha256:%2e%2e%2fkey', 'docker.io', undefined],
    [`/v2/x/blobs/sha512:${'a'.repeat(128)}`, 'docker.io', undefined],
    ['/v2/x/blobs/latest', 'docker.io', undefined],
    ['/v2/../x/manifests/1', 'docker.io', undefined],
    ['/v2/X/manifests/1', 'docker.io', undefined],
    ['/v2/x/manifests/1', 'evil.com/../../', undefined],
    ['/v2/x/manifests/.hidden', 'docker.io', undefined],
  ])('%s (ns %s)', (pathname, ns, want) => expect(parseRegistryRequest(pathname, ns)).toEqual(want));

  it("says in containerd's error how to load a missing image, in what an HTTP reason phrase may hold", () => {
    const reason = notLoadedReason('example.com/team/nope:1');
    expect(reason).toContain('kplex dev image load');
    expect(reason).toMatch(/^[\x20-\x7e]+$/);
  });
});
