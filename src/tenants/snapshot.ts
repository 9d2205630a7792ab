// The snapshot file of a tenant (README "Snapshot file format"). Pure: encode, and decode with every
// check a restore needs before it writes anything.
//
// A file is gzip of two parts: one line of JSON, the envelope (what the file is, its format version,
// the SHA-256 of the rest), then the payload, JSON: the tenant, its values and its store's data at one
// revision (keys relative to the tenant's part of the store, so no provider's layout is in it).
import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { z } from 'zod';
import type { StoreSnapshot } from '../controlplane/provider.js';
import { relativeKeyProblem } from '../controlplane/store-keys.js';
import { validateTenantName } from './names.js';
import { parseValues, type TenantValues } from './values.js';

export const SNAPSHOT_FORMAT = 'kplex.dev/tenant-snapshot';
/** The format version this kplex writes, and the newest it reads. */
export const SNAPSHOT_VERSION = 1;
/** A file that inflates to more than this is refused (a small crafted file must not fill the memory). */
export const MAX_SNAPSHOT_BYTES = 1024 ** 3;

export interface TenantSnapshot {
  tenant: string;
  /** The tenant's values, as its Tenant object holds them. */
  values: TenantValues;
  /** The kplex that made it, and the provider whose store it was read from (for people; restore needs neither). */
  kplexVersion: string;
  provider: string;
  createdAt: string;
  store: StoreSnapshot;
}

/** Why a file cannot be restored: one line for the CLI. */
export class SnapshotFileError extends Error {}

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export function encodeSnapshot(s: TenantSnapshot): Buffer {
  const payload = Buffer.from(JSON.stringify({
    tenant: s.tenant,
    kplexVersion: s.kplexVersion,
    provider: s.provider,
    createdAt: s.createdAt,
    revision: s.store.revision,
    values: s.values,
    serviceAccountKey: s.store.serviceAccountKey,
    entries: s.store.entries.map((e) => ({ key: e.key, value: e.value.toString('base64') })),
  }));
  const envelope = JSON.stringify({ format: SNAPSHOT_FORMAT, version: SNAPSHOT_VERSION, checksum: sha256(payload) });
  return gzipSync(Buffer.concat([Buffer.from(`${envelope}\n`), payload]));
}

const Envelope = z.object({ format: z.string(), version: z.number().int().positive(), checksum: z.string() });

const Base64 = z.string().refine((v) => Buffer.from(v, 'base64').toString('base64') === v, 'is not base64');

const Payload = z.object({
  tenant: z.string(),
  kplexVersion: z.string(),
  provider: z.string(),
  createdAt: z.string(),
  revision: z.number().int().nonnegative(),
  values: z.unknown(),
  serviceAccountKey: z.object({ key: z.string().min(1), publicKey: z.string().min(1) }).strict(),
  entries: z.array(z.object({ key: z.string(), value: Base64 }).strict()),
}).strict();

/** Reads a snapshot file: every check a restore makes before it writes anything, each failing with one line. */
export function decodeSnapshot(file: Buffer, name = 'the file'): TenantSnapshot {
  const isGzip = file.length >= 2 && file[0] === 0x1f && file[1] === 0x8b;
  if (!isGzip) throw new SnapshotFileError(`${name} is not a kplex snapshot (not gzip data)`);
  let raw: Buffer;
  try {
    raw = gunzipSync(file, { maxOutputLength: MAX_SNAPSHOT_BYTES });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ERR_BUFFER_TOO_LARGE') throw new SnapshotFileError(`${name} inflates to more than ${MAX_SNAPSHOT_BYTES} bytes; refused`);
    throw new SnapshotFileError(`${name} is corrupt: it cannot be decompressed (${e.message})`);
  }
  const newline = raw.indexOf(0x0a);
  let envelope: z.infer<typeof Envelope> | undefined;
  try {
    envelope = Envelope.parse(JSON.parse(raw.subarray(0, newline < 0 ? raw.length : newline).toString('utf8')));
  } catch {
    // Whatever the first line is, the file is not one of ours: said below, in one line.
    envelope = undefined;
  }
  if (!envelope || envelope.format !== SNAPSHOT_FORMAT || newline < 0) throw new SnapshotFileError(`${name} is not a kplex snapshot (no ${SNAPSHOT_FORMAT} header)`);
  if (envelope.version > SNAPSHOT_VERSION) {
    throw new SnapshotFileError(`${name} has snapshot format version ${envelope.version}, newer than this kplex reads (${SNAPSHOT_VERSION}): restore it with a newer kplex`);
  }
  const payload = raw.subarray(newline + 1);
  if (sha256(payload) !== envelope.checksum) throw new SnapshotFileError(`${name} is corrupt: its checksum does not match its contents`);
  let p: z.infer<typeof Payload>;
  try {
    p = Payload.parse(JSON.parse(payload.toString('utf8')));
  } catch (err) {
    const detail = err instanceof z.ZodError ? err.issues.map((i) => `${i.path.join('.')}: ${i.message}`).slice(0, 3).join('; ') : (err as Error).message;
    throw new SnapshotFileError(`${name} is not a valid kplex snapshot: ${detail}`);
  }
  return {
    tenant: checked(() => validateTenantName(p.tenant), name),
    values: checked(() => parseValues(p.values, 'its values'), name),
    kplexVersion: p.kplexVersion,
    provider: p.provider,
    createdAt: p.createdAt,
    store: { revision: p.revision, serviceAccountKey: p.serviceAccountKey, entries: checkedEntries(p.entries, name) },
  };
}

function checked<T>(read: () => T, name: string): T {
  try {
    return read();
  } catch (err) {
    throw new SnapshotFileError(`${name} is not a valid kplex snapshot: ${(err as Error).message}`);
  }
}

/** Entries whose keys may be written under a tenant's prefix, each once. */
function checkedEntries(entries: { key: string; value: string }[], name: string): StoreSnapshot['entries'] {
  const seen = new Set<string>();
  return entries.map((e) => {
    const problem = relativeKeyProblem(e.key);
    if (problem) throw new SnapshotFileError(`${name} is refused: its store key ${JSON.stringify(e.key.slice(0, 200))} ${problem}`);
    if (seen.has(e.key)) throw new SnapshotFileError(`${name} is refused: its store key ${JSON.stringify(e.key.slice(0, 200))} appears twice`);
    seen.add(e.key);
    return { key: e.key, value: Buffer.from(e.value, 'base64') };
  });
}
