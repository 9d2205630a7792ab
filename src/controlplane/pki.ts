// @peculiar/x509 resolves its parts through tsyringe, which needs the Reflect metadata API.
import 'reflect-metadata';
import { webcrypto, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as Crypto);

// ECDSA P-256: accepted by every Kubernetes component and generated in milliseconds (RSA takes seconds).
const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const YEAR_MS = 365 * 24 * 3600 * 1000;
/** Certificates start an hour before they are made, so a peer whose clock is a little behind accepts them. */
const BACKDATE_MS = 3600_000;

/** A PEM certificate and its PEM (PKCS#8) private key. */
export interface KeyPair {
  cert: string;
  key: string;
}

export interface CertificateAuthority extends KeyPair {
  sign(req: LeafRequest): Promise<KeyPair>;
}

export interface LeafRequest {
  commonName: string;
  organizations?: string[];
  dnsNames?: string[];
  ipAddresses?: string[];
  server?: boolean;
  client?: boolean;
  years?: number;
}

const subject = (cn: string, orgs: string[] = []): string =>
  [`CN=${cn}`, ...orgs.map((o) => `O=${o}`)].join(', ');

const serial = (): string => {
  const b = randomBytes(16);
  b[0] = (b[0] ?? 0) & 0x7f; // a positive serial
  return b.toString('hex');
};

async function keyPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key ));
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

async function importKey(pem: string): Promise<CryptoKey> {
  const der = x509.PemConverter.decodeFirst(pem);
  return (await webcrypto.subtle.importKey('pkcs8', der, ALG, true, ['sign'])) as unknown as CryptoKey;
}

const generateKeys = async (): Promise<CryptoKeyPair> =>
  (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;

function authority(caCert: x509.X509Certificate, caKey: CryptoKey, pair: KeyPair): CertificateAuthority {
  return {
    ...pair,
    async sign(req) {
      const keys = await generateKeys();
      const usages: string[] = [];
      if (req.server) usages.push(x509.ExtendedKeyUsage.serverAuth);
      if (req.client) usages.push(x509.ExtendedKeyUsage.clientAuth);
      const names: x509.JsonGeneralName[] = [
        ...(req.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
        ...(req.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
      ];
      const now = Date.now();
      const cert = await x509.X509CertificateGenerator.create({
        serialNumber: serial(),
        subject: subject(req.commonName, req.organizations),
        issuer: caCert.subject,
        notBefore: new Date(now - BACKDATE_MS),
        notAfter: new Date(now + (req.years ?? 1) * YEAR_MS),
        signingKey: caKey,
        publicKey: keys.publicKey,
        signingAlgorithm: ALG,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
          new x509.ExtendedKeyUsageExtension(usages),
          ...(names.length ? [new x509.SubjectAlternativeNameExtension(names)] : []),
          await x509.AuthorityKeyIdentifierExtension.create(caCert),
        ],
      });
      return { cert: cert.toString('pem'), key: await keyPem(keys.privateKey) };
    },
  };
}

export async function createAuthority(commonName: string, years = 10): Promise<CertificateAuthority> {
  const keys = await generateKeys();
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: subject(commonName),
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + years * YEAR_MS),
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return authority(cert, keys.privateKey, { cert: cert.toString('pem'), key: await keyPem(keys.privateKey) });
}

export async function loadAuthority(pair: KeyPair): Promise<CertificateAuthority> {
  return authority(new x509.X509Certificate(pair.cert), await importKey(pair.key), pair);
}

/** A key pair for signing service-account tokens: private key and the matching public key, both PEM. */
export async function createSigningKey(): Promise<{ key: string; publicKey: string }> {
  const keys = await generateKeys();
  const spki = Buffer.from(await webcrypto.subtle.exportKey('spki', keys.publicKey ));
  return { key: await keyPem(keys.privateKey), publicKey: x509.PemConverter.encode(spki, 'PUBLIC KEY') };
}

/**
 * Writes the key before the certificate, each by rename, so a component that reloads the pair when the
 * certificate file changes (kube-apiserver) never reads half a file nor a certificate without its key.
 */
export async function writeKeyPair(dir: string, name: string, pair: KeyPair): Promise<{ cert: string; key: string }> {
  await mkdir(dir, { recursive: true });
  const files = { cert: path.join(dir, `${name}.crt`), key: path.join(dir, `${name}.key`) };
  await writeFile(`${files.key}.new`, pair.key, { mode: 0o600 });
  await rename(`${files.key}.new`, files.key);
  await writeFile(`${files.cert}.new`, pair.cert);
  await rename(`${files.cert}.new`, files.cert);
  return files;
}

export async function readKeyPair(dir: string, name: string): Promise<KeyPair | undefined> {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  if (!existsSync(cert) || !existsSync(key)) return undefined;
  return { cert: await readFile(cert, 'utf8'), key: await readFile(key, 'utf8') };
}

/** The names (`dns`) or addresses (`ip`) a certificate's subject alternative names list. */
function certificateNames(pem: string, type: 'dns' | 'ip'): string[] {
  const san = new x509.X509Certificate(pem).getExtension(x509.SubjectAlternativeNameExtension);
  return san?.names.items.filter((n) => n.type === type).map((n) => n.value) ?? [];
}

export const certificateIps = (pem: string): string[] => certificateNames(pem, 'ip');
export const certificateDnsNames = (pem: string): string[] => certificateNames(pem, 'dns');

/** When a certificate starts and stops being valid. */
export interface Validity {
  notBefore: Date;
  notAfter: Date;
}

export function certificateValidity(pem: string): Validity {
  const c = new x509.X509Certificate(pem);
  return { notBefore: c.notBefore, notAfter: c.notAfter };
}

/**
 * Whether a certificate was made before `at`. Certificate times have whole seconds, so one made in the
 * same second as `at` counts as made after it (else a rotation would be done twice).
 */
export function issuedBefore(v: Validity, at: Date): boolean {
  return v.notBefore.getTime() + BACKDATE_MS < Math.floor(at.getTime() / 1000) * 1000;
}

/**
 * Whether a leaf certificate is renewed now: once two thirds of its lifetime have passed (so a renewal
 * missed by a stopped gateway still has months to happen), or when it was issued before a rotation the
 * operator asked for (`kplex certs rotate`).
 */
export function renewalDue(v: Validity, now: Date, rotateIssuedBefore?: Date): boolean {
  if (rotateIssuedBefore && issuedBefore(v, rotateIssuedBefore)) return true;
  const life = v.notAfter.getTime() - v.notBefore.getTime();
  return now.getTime() >= v.notBefore.getTime() + (life * 2) / 3;
}

/** What ensurePki renews: every leaf due (see renewalDue), and those issued before an asked-for rotation. */
export interface Renewal {
  now?: Date;
  rotateIssuedBefore?: Date;
}

/** Makes the leaf `name` when it is missing, due for renewal, or fails `fits`; whether it did. */
export async function ensureLeaf(pkiDir: string, name: string, ca: CertificateAuthority, req: LeafRequest, renewal: Renewal = {}, fits: (pem: string) => boolean = () => true): Promise<boolean> {
  const existing = await readKeyPair(pkiDir, name);
  if (existing && fits(existing.cert) && !renewalDue(certificateValidity(existing.cert), renewal.now ?? new Date(), renewal.rotateIssuedBefore)) return false;
  await writeKeyPair(pkiDir, name, await ca.sign(req));
  return true;
}
