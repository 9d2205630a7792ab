import { Agent, request } from 'undici';
import type { ClusterAccess } from '../k8s/client.js';

/** True when GET `url` answers 200; `access` gives the TLS trust and client credential. */
export async function probe(url: string, access?: Pick<ClusterAccess, 'ca' | 'cert' | 'key'>): Promise<boolean> {
  const dispatcher = new Agent({
    connect: access?.ca ? { ca: access.ca, cert: access.cert, key: access.key } : { rejectUnauthorized: false },
  });
  try {
    const res = await request(url, { dispatcher, headersTimeout: 2000, bodyTimeout: 2000 });
    await res.body.dump();
    return res.statusCode === 200;
  } catch {
    return false;
  } finally {
    await dispatcher.close();
  }
}
