import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { createAuthority, loadAuthority, readKeyPair, writeKeyPair } from '../controlplane/pki.js';

export interface GatewayTls {
  ca: string;
  cert: string;
  key: string;
}

/**
 * A development CA and a serving certificate for the gateway (SANs: localhost, 127.0.0.1 and `names`),
 * made once in `dir` (ca.crt/key, gateway.crt/key). Production mounts its own files in the same names.
 */
export async function ensureGatewayCerts(dir: string, names: string[] = []): Promise<GatewayTls> {
  if (!existsSync(path.join(dir, 'gateway.crt'))) {
    let caPair = await readKeyPair(dir, 'ca');
    if (!caPair) {
      const created = await createAuthority('kplex-gateway-ca');
      caPair = { cert: created.cert, key: created.key };
      await writeKeyPair(dir, 'ca', caPair);
    }
    const ca = await loadAuthority(caPair);
    const all = ['localhost', '127.0.0.1', ...names];
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
