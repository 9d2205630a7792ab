// The least a TLS reverse proxy in Node can do for a tenant: terminate TLS, forward with its own
// credential through an undici pool, stream the answer back. No token, no policy, no impersonation.
// The gateway benchmark runs it beside the gateway, so that one run says how much of the gateway's
// overhead is any Node proxy hop on this machine and how much is kplex's own.
// Run as a child process (its CPU is then its own in /proc): `node reference-proxy.js <data dir>`, with
// a JSON `ReferenceProxyConfig` on stdin; it prints its port once it listens.
import https from 'node:https';
import { Pool } from 'undici';

export interface ReferenceProxyConfig {
  /** The tenant API server, its CA, and the client certificate the gateway uses for it. */
  server: string;
  ca: string;
  cert: string;
  key: string;
  /** The serving certificate (the gateway's own). */
  servingCert: string;
  servingKey: string;
  /** Path prefix to strip, as the gateway's `/tenants/NAME`. */
  prefix: string;
}

const DROPPED = new Set(['host', 'connection', 'keep-alive', 'transfer-encoding', 'authorization']);

async function readStdin(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin) text += chunk;
  return text;
}

const config = JSON.parse(await readStdin()) as ReferenceProxyConfig;
const pool = new Pool(config.server, { connect: { ca: config.ca, cert: config.cert, key: config.key } });
const server = https.createServer({ cert: config.servingCert, key: config.servingKey }, (req, res) => {
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !DROPPED.has(k)) headers[k] = v;
  pool
    .stream({ path: req.url!.slice(config.prefix.length), method: req.method as 'GET', headers }, ({ statusCode, headers: upstream }) => {
      for (const k of DROPPED) delete upstream[k];
      res.writeHead(statusCode, upstream as Record<string, string>);
      return res;
    })
    .catch(() => res.destroy());
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  console.log(typeof address === 'object' && address ? address.port : '');
});
// Its owner, the benchmark, ends it with SIGTERM.
process.on('SIGTERM', () => {
  server.close();
  void pool.close();
  server.closeAllConnections();
});
