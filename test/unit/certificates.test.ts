import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { certificatesIn, ensurePki } from '../../src/controlplane/control-plane.js';
import { certificateDnsNames, certificateIps, certificateValidity, createAuthority, ensureLeaf, issuedBefore, renewalDue } from '../../src/controlplane/pki.js';
import { ensureGatewayCerts } from '../../src/gateway/certs.js';

const DAY = 86_400_000;
const validity = (from: number, to: number) => ({ notBefore: new Date(from), notAfter: new Date(to) });

describe('when a certificate is renewed', () => {
  const start = Date.UTC(2026, 0, 1);
  const year = validity(start, start + 365 * DAY);

  it('once two thirds of its lifetime have passed, not before', () => {
    expect(renewalDue(year, new Date(start + 243 * DAY))).toBe(false);
    expect(renewalDue(year, new Date(start + 244 * DAY))).toBe(true);
    expect(renewalDue(year, new Date(start + 400 * DAY))).toBe(true);
  });

  it('at once when it was made before an asked-for rotation (certificates start an hour before they are made)', () => {
    const madeAt = start + 3_600_000;
    expect(renewalDue(year, new Date(start + DAY), new Date(madeAt + 1000))).toBe(true);
    expect(renewalDue(year, new Date(start + DAY), new Date(madeAt - 1000))).toBe(false);
  });

  it('a certificate made in the same second as the rotation request counts as made after it', () => {
    const madeAt = start + 3_600_000;
    expect(issuedBefore(year, new Date(madeAt + 999))).toBe(false);
    expect(issuedBefore(year, new Date(madeAt + 1000))).toBe(true);
  });
});

describe('renewing certificates in a PKI folder', () => {
  const dirs: string[] = [];
  const tmp = async (): Promise<string> => {
    const d = await mkdtemp(path.join(os.tmpdir(), 'kplex-pki-'));
    dirs.push(d);
    return d;
  };
  afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

  it('ensurePki makes the leaves once, renews only what a rotation asks for, and never the CAs', async () => {
    const dir = await tmp();
    const first = await ensurePki(dir, 't1');
    expect(first.renewed.sort()).toEqual(['admin', 'apiserver', 'front-proxy-client']);
    expect((await ensurePki(dir, 't1')).renewed).toEqual([]);
    const before = await certificatesIn(dir);
    const caBefore = await readFile(path.join(dir, 'ca.crt'), 'utf8');
    // A rotation asked for a second after the leaves were made (their times have whole seconds).
    const again = await ensurePki(dir, 't1', [], { rotateIssuedBefore: new Date(Date.now() + 1000) });
    expect(again.renewed.sort()).toEqual(['admin', 'apiserver', 'front-proxy-client']);
    expect(again.admin.cert).not.toEqual(first.admin.cert);
    expect(await readFile(path.join(dir, 'ca.crt'), 'utf8')).toEqual(caBefore);
    const after = await certificatesIn(dir);
    expect(after.map((c) => c.name)).toEqual(before.map((c) => c.name));
    expect(after.find((c) => c.name === 'ca')).toEqual(before.find((c) => c.name === 'ca'));
  });

  it('a serving certificate lacking an address it must name is made again', async () => {
    const dir = await tmp();
    await ensurePki(dir, 't2');
    expect((await ensurePki(dir, 't2', ['10.96.7.7'])).renewed).toEqual(['apiserver']);
  });

  it('ensureLeaf renews a leaf that is due, and leaves one that is not', async () => {
    const dir = await tmp();
    const ca = await createAuthority('test-ca');
    expect(await ensureLeaf(dir, 'x', ca, { commonName: 'x', client: true })).toBe(true);
    expect(await ensureLeaf(dir, 'x', ca, { commonName: 'x', client: true })).toBe(false);
    const inTenMonths = new Date(Date.now() + 300 * DAY);
    expect(await ensureLeaf(dir, 'x', ca, { commonName: 'x', client: true }, { now: inTenMonths })).toBe(true);
  });

  it("the gateway's development certificate keeps its names when it is made again", async () => {
    const dir = await tmp();
    const first = await ensureGatewayCerts(dir, ['gw.example.test', '10.1.2.3']);
    const v = certificateValidity(first.cert);
    expect(v.notAfter.getTime() - v.notBefore.getTime()).toBeGreaterThan(700 * DAY);
    expect((await ensureGatewayCerts(dir)).cert).toEqual(first.cert);
    const renewed = await ensureGatewayCerts(dir, [], new Date(Date.now() + 500 * DAY));
    expect(renewed.cert).not.toEqual(first.cert);
    expect(renewed.ca).toEqual(first.ca);
    expect(certificateDnsNames(renewed.cert).sort()).toEqual(['gw.example.test', 'localhost']);
    expect(certificateIps(renewed.cert).sort()).toEqual(['10.1.2.3', '127.0.0.1']);
  });
});
