// The few etcd v3 calls kplex makes itself, through etcd's JSON gateway (bytes are base64, 64-bit
// numbers strings): deleting, reading and writing the keys under a prefix.
import { request } from 'undici';

export interface KeyValue {
  key: Buffer;
  value: Buffer;
  /** Whether the key is attached to a lease (etcd deletes it when the lease expires). */
  leased?: boolean;
}

const b64 = (b: Buffer | string): string => Buffer.from(b).toString('base64');

/** The end of the range of keys that start with `prefix`: the prefix with its last byte one higher. */
function rangeEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix);
  end[end.length - 1] = (end[end.length - 1] ?? 0) + 1;
  return end;
}

export class EtcdError extends Error {}

async function call<T>(etcdServers: string, path: string, body: unknown, what: string): Promise<T> {
  const res = await request(`${etcdServers.split(',')[0]}${path}`, {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'content-type': 'application/json' },
  });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new EtcdError(`etcd refused to ${what}: ${text}`);
  return JSON.parse(text) as T;
}

/** Deletes every key under `prefix` (the v3 DeleteRange call). */
export async function deletePrefix(etcdServers: string, prefix: string): Promise<void> {
  await call(etcdServers, '/v3/kv/deleterange', { key: b64(prefix), range_end: b64(rangeEnd(prefix)) }, `delete ${prefix}`);
}

type RangeResponse = { header: { revision: string }; kvs?: { key: string; value?: string; lease?: string }[]; more?: boolean };

/** Keys read per request: a page, so that no answer is too large for etcd to send. */
const PAGE = 500;

/**
 * Every key under `prefix` at one store revision (the first page's): later pages ask for that revision,
 * so what was written between the pages is not seen, and the whole is one consistent state. A
 * compaction past that revision between pages fails it (the caller may try again).
 */
export async function readPrefix(etcdServers: string, prefix: string): Promise<{ revision: number; kvs: KeyValue[] }> {
  const end = b64(rangeEnd(prefix));
  const kvs: KeyValue[] = [];
  let from = Buffer.from(prefix);
  let revision: string | undefined;
  for (;;) {
    const page = await call<RangeResponse>(etcdServers, '/v3/kv/range', { key: b64(from), range_end: end, limit: PAGE, ...(revision ? { revision } : {}) }, `read ${prefix}`);
    revision ??= page.header.revision;
    for (const kv of page.kvs ?? []) kvs.push({ key: Buffer.from(kv.key, 'base64'), value: Buffer.from(kv.value ?? '', 'base64'), leased: !!kv.lease && kv.lease !== '0' });
    if (!page.more || !page.kvs?.length) return { revision: Number(revision), kvs };
    // The next page starts right after the last key read.
    from = Buffer.concat([kvs[kvs.length - 1]!.key, Buffer.from([0])]);
  }
}

/** etcd's default limits on one transaction (--max-txn-ops 128, --max-request-bytes 1.5 MiB), with room to spare. */
const TXN_OPS = 100;
const TXN_BYTES = 512 * 1024;

/** Splits puts into transactions etcd accepts; an entry larger than the byte budget goes alone. */
export function batches(kvs: KeyValue[], maxOps = TXN_OPS, maxBytes = TXN_BYTES): KeyValue[][] {
  const out: KeyValue[][] = [];
  let current: KeyValue[] = [];
  let bytes = 0;
  for (const kv of kvs) {
    const size = kv.key.length + kv.value.length;
    if (current.length && (current.length >= maxOps || bytes + size > maxBytes)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(kv);
    bytes += size;
  }
  if (current.length) out.push(current);
  return out;
}

/**
 * Writes `kvs` (all under `prefix`) when nothing is under `prefix` yet: the first transaction compares
 * that atomically; the rest follow it. Returns false, having written nothing, when `prefix` held keys.
 * A failure part way leaves what was written: the caller deletes the prefix again.
 */
export async function putAllIfEmpty(etcdServers: string, prefix: string, kvs: KeyValue[]): Promise<boolean> {
  // Without a key to write, the first transaction still checks that the prefix is empty.
  const groups = kvs.length ? batches(kvs) : [[]];
  for (const [i, group] of groups.entries()) {
    const compare = i === 0 ? [{ key: b64(prefix), range_end: b64(rangeEnd(prefix)), target: 'CREATE', result: 'EQUAL', create_revision: '0' }] : [];
    const res = await call<{ succeeded?: boolean }>(etcdServers, '/v3/kv/txn', {
      compare,
      success: group.map((kv) => ({ request_put: { key: b64(kv.key), value: b64(kv.value) } })),
    }, `write under ${prefix}`);
    // The JSON gateway leaves out a false `succeeded`.
    if (res.succeeded !== true) {
      if (i === 0) return false;
      throw new EtcdError(`etcd did not apply a write under ${prefix}`);
    }
  }
  return true;
}
