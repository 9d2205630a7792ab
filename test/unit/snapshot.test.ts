import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { batches } from '../../src/controlplane/etcd-kv.js';
import { tenantEtcdPrefix } from '../../src/controlplane/local.js';
import { absoluteKey, relativeKey, relativeKeyProblem } from '../../src/controlplane/store-keys.js';
import { restoredData } from '../../src/cli/snapshot.js';
import { decodeSnapshot, encodeSnapshot, SNAPSHOT_FORMAT, SNAPSHOT_VERSION, SnapshotFileError, type TenantSnapshot } from '../../src/tenants/snapshot.js';
import { parseValues } from '../../src/tenants/values.js';

const SA = { key: '-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n', publicKey: '-----BEGIN PUBLIC KEY-----\ndef\n-----END PUBLIC KEY-----\n' };

const sample = (entries = [{ key: '/pods/default/web', value: Buffer.from([0x6b, 0x38, 0x73, 0x00, 0xff, 0x01]) }]): TenantSnapshot => ({
  tenant: 'team-a',
  values: parseValues({ isolate: true }),
  kplexVersion: '0.1.0',
  provider: 'local',
  createdAt: '2026-12-01T07:00:00.000Z',
  store: { revision: 42, entries, serviceAccountKey: SA },
});

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** A file as an attacker (or a newer kplex) would write it: any envelope, any payload, with a matching checksum unless told. */
function craft(payload: unknown, envelope: Record<string, unknown> = {}): Buffer {
  const body = Buffer.from(JSON.stringify(payload));
  const head = JSON.stringify({ format: SNAPSHOT_FORMAT, version: SNAPSHOT_VERSION, checksum: sha256(body), ...envelope });
  return gzipSync(Buffer.concat([Buffer.from(`${head}\n`), body]));
}

/** The payload of a real file, to change one thing of. */
const payloadOf = (file: Buffer): Record<string, unknown> => {
  const raw = gunzipSync(file);
  return JSON.parse(raw.subarray(raw.indexOf(0x0a) + 1).toString('utf8')) as Record<string, unknown>;
};

const refusal = (file: Buffer): string => {
  try {
    decodeSnapshot(file, 'snap.kplex');
  } catch (err) {
    expect(err).toBeInstanceOf(SnapshotFileError);
    const message = (err as Error).message;
    expect(message).not.toContain('\n');
    return message;
  }
  throw new Error('the file was accepted');
};

describe('snapshot file', () => {
  it('reads back what it wrote: tenant, values, revision, service-account key and every byte of every value', () => {
    const s = sample();
    const back = decodeSnapshot(encodeSnapshot(s));
    expect(back).toEqual(s);
    expect(back.store.entries[0]!.value.equals(s.store.entries[0]!.value)).toBe(true);
  });

  it('round-trips any keys and values the rules accept', () => {
    const segment = fc.stringMatching(/^[a-z0-9:@._-]{1,20}$/).filter((s) => s !== '.' && s !== '..');
    const key = fc.array(segment, { minLength: 1, maxLength: 5 }).map((s) => `/${s.join('/')}`);
    fc.assert(fc.property(fc.uniqueArray(fc.record({ key, value: fc.uint8Array({ maxLength: 64 }) }), { selector: (e) => e.key, maxLength: 20 }), (entries) => {
      const s = sample(entries.map((e) => ({ key: e.key, value: Buffer.from(e.value) })));
      expect(decodeSnapshot(encodeSnapshot(s)).store.entries).toEqual(s.store.entries);
    }), { numRuns: 50 });
  });

  it('starts with a one-line header naming the format, its version and the checksum of the rest', () => {
    const raw = gunzipSync(encodeSnapshot(sample()));
    const head = JSON.parse(raw.subarray(0, raw.indexOf(0x0a)).toString('utf8')) as Record<string, unknown>;
    expect(head).toEqual({ format: 'kplex.dev/tenant-snapshot', version: 1, checksum: sha256(raw.subarray(raw.indexOf(0x0a) + 1)) });
  });

  it('refuses a file of another kind in one line', () => {
    expect(refusal(Buffer.from('apiVersion: v1\nkind: Config\n'))).toBe('snap.kplex is not a kplex snapshot (not gzip data)');
    expect(refusal(gzipSync(Buffer.from('{"hello":"world"}\n{}')))).toBe('snap.kplex is not a kplex snapshot (no kplex.dev/tenant-snapshot header)');
    expect(refusal(craft({}, { format: 'velero.io/backup' }))).toMatch(/not a kplex snapshot/);
  });

  it('refuses a file from a newer kplex, saying what to do', () => {
    expect(refusal(craft({ anything: 'new' }, { version: SNAPSHOT_VERSION + 1 }))).toBe(
      `snap.kplex has snapshot format version ${SNAPSHOT_VERSION + 1}, newer than this kplex reads (${SNAPSHOT_VERSION}): restore it with a newer kplex`,
    );
  });

  it('refuses a corrupt file: a changed byte, a cut-off file', () => {
    const good = encodeSnapshot(sample());
    const raw = gunzipSync(good);
    const flipped = Buffer.from(raw);
    flipped[flipped.length - 5] = flipped[flipped.length - 5]! ^ 0x01;
    expect(refusal(gzipSync(flipped))).toBe('snap.kplex is corrupt: its checksum does not match its contents');
    expect(refusal(good.subarray(0, good.length - 20))).toMatch(/^snap.kplex is corrupt: it cannot be decompressed/);
    expect(refusal(craft(payloadOf(good), { checksum: 'sha256:0000' }))).toMatch(/checksum does not match/);
  });

  it('refuses a payload that is not a snapshot, an invalid tenant name or invalid values', () => {
    const p = payloadOf(encodeSnapshot(sample()));
    expect(refusal(craft({ ...p, entries: 'all of them' }))).toMatch(/not a valid kplex snapshot: entries/);
    expect(refusal(craft({ ...p, extra: true }))).toMatch(/not a valid kplex snapshot/);
    expect(refusal(craft({ ...p, tenant: '../team-b' }))).toMatch(/not a DNS label/);
    expect(refusal(craft({ ...p, values: { isolate: 'yes' } }))).toMatch(/its values: isolate/);
    expect(refusal(craft({ ...p, entries: [{ key: '/pods/x', value: 'not base64!' }] }))).toMatch(/not base64/);
  });

  describe('attacks: a crafted file must not write outside the tenant\'s own part of the store', () => {
    const p = payloadOf(encodeSnapshot(sample()));
    it.each([
      ['a key without its leading "/" (lands in tenant "team-ab")', 'b/pods/default/x', /does not start with "\/"/],
      ['a ".." segment', '/../team-b/pods/default/x', /"\.\." segment/],
      ['a "." segment', '/pods/./default/x', /"\." or "\.\." segment/],
      ['an empty segment', '//pods/default/x', /empty segment/],
      ['a trailing "/"', '/pods/default/', /empty segment/],
      ['another tenant\'s absolute key', `${tenantEtcdPrefix('team-b')}/pods/default/x`, /names kplex's own keys/],
      ['a NUL byte', '/pods/default/x\u0000/y', /control character/],
      ['a newline', '/pods/default/x\n', /control character/],
      ['a huge key', `/${'a'.repeat(5000)}`, /longer than/],
    ])('%s', (_what, key, why) => {
      expect(refusal(craft({ ...p, entries: [{ key, value: '' }] }))).toMatch(why);
      expect(() => absoluteKey(tenantEtcdPrefix('team-a'), key)).toThrow(why);
    });
    it('a key twice (the later would silently win)', () => {
      expect(refusal(craft({ ...p, entries: [{ key: '/pods/a', value: '' }, { key: '/pods/a', value: 'eA==' }] }))).toMatch(/appears twice/);
    });
  });
});

describe('store keys', () => {
  it('are written under the restoring tenant\'s prefix, whatever the snapshot\'s tenant was', () => {
    const rel = relativeKey(tenantEtcdPrefix('team-a'), '/kplex/tenants/team-a/secrets/default/token');
    expect(rel).toBe('/secrets/default/token');
    expect(absoluteKey(tenantEtcdPrefix('copy'), rel)).toBe('/kplex/tenants/copy/secrets/default/token');
  });
  it('refuses to make a relative key of one outside the prefix, or of a tenant whose name only starts the same', () => {
    expect(() => relativeKey('/kplex/tenants/team-a', '/kplex/tenants/team-ab/pods/x')).toThrow(/not under/);
    expect(() => relativeKey('/kplex/tenants/team-a', '/registry/pods/x')).toThrow(/not under/);
  });
  it('absoluteKey refuses an unfit key itself, not only the file reader', () => {
    expect(() => absoluteKey('/kplex/tenants/a', 'b/x')).toThrow(/does not start/);
    expect(relativeKeyProblem('/apiextensions.k8s.io/customresourcedefinitions/widgets.example.com')).toBeUndefined();
  });
});

describe('etcd write batches', () => {
  const kv = (n: number, size = 1) => Array.from({ length: n }, (_, i) => ({ key: Buffer.from(`/k${i}`), value: Buffer.alloc(size) }));
  it('keep every key once, in order, within the ops and bytes of a transaction', () => {
    const all = kv(250, 10);
    const groups = batches(all, 100, 1000);
    expect(groups.flat()).toEqual(all);
    for (const g of groups) {
      expect(g.length).toBeLessThanOrEqual(100);
      expect(g.reduce((n, e) => n + e.key.length + e.value.length, 0)).toBeLessThanOrEqual(1000);
    }
  });
  it('send an entry larger than the byte budget alone', () => {
    expect(batches(kv(3, 2000), 100, 1000).map((g) => g.length)).toEqual([1, 1, 1]);
  });
});

describe('restored service-account key', () => {
  it('is the snapshot\'s under its own name, a new one under another (two tenants never accept each other\'s tokens)', async () => {
    const s = sample();
    expect((await restoredData('team-a', s)).serviceAccountKey).toEqual(SA);
    const copy = await restoredData('team-copy', s);
    expect(copy.serviceAccountKey.key).not.toBe(SA.key);
    expect(copy.serviceAccountKey.key).toMatch(/BEGIN PRIVATE KEY/);
    expect(copy.entries).toBe(s.store.entries);
  });
});
