import { readFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { certificateDnsNames, certificateIps, certificateValidity, createAuthority, loadAuthority, readKeyPair, renewalDue, writeKeyPair } from '../controlplane/pki.js';

export interface GatewayTls {
  ca: string;
  cert: string;
  key: string;
}

/**
 * A development CA and a serving certificate for the gateway (SANs: localhost, 127.0.0.1 and `names`),
 * made once in `dir` (ca.crt/key, gateway.crt/key), and made again with the same names when it is due
 * for renewal (see renewalDue). Production mounts its own files in the same names (no ca.key: kplex
 * renews nothing there, it reloads what it is given).
 */
export async function ensureGatewayCerts(dir: string, names: string[] = [], now = new Date()): Promise<GatewayTls> {
  const existing = await readKeyPair(dir, 'gateway');
  const caPair = await readKeyPair(dir, 'ca');
  if (!existing || (caPair && renewalDue(certificateValidity(existing.cert), now))) {
    let pair = caPair;
    if (!pair) {
      const created = await createAuthority('kplex-gateway-ca');
      pair = { cert: created.cert, key: created.key };
      await writeKeyPair(dir, 'ca', pair);
    }
    const ca = await loadAuthority(pair);
    const kept = existing ? [...certificateDnsNames(existing.cert), ...certificateIps(existing.cert)] : [];
    const all = [...new Set(['localhost', '127.0.0.1', ...kept, ...names])];
    await writeKeyPair(dir, 'gateway', await ca.sign({
      commonName: 'kplex-gateway',
      server: true,
      dnsNames: all.filter((n) => net.isIP(n) === 0),
      ipAddresses: all.filter((n) => net.isIP(n) !== 0),
      years: 2,
    }));
  }
  return loadGatewayCerts(dir);
}

export async function loadGatewayCerts(dir: string): Promise<GatewayTls> {
  const read = (f: string) => readFile(path.join(dir, f), 'utf8');
  return { ca: await read('ca.crt'), cert: await read('gateway.crt'), key: await read('gateway.key') };
}
