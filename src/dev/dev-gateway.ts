import type { HostCluster } from './host-cluster.js';

export async function startDevGateway(_host: HostCluster, _dataDir: string, _port?: number): Promise<{ url: string; readyMs: number; stop(): Promise<void> }> {
  throw new Error('gateway not built yet');
}
