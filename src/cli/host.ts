import { existsSync, readFileSync } from 'node:fs';
import { KubeClient } from '../k8s/client.js';
import { accessFromKubeconfig, currentContext, kubeconfigFiles, writePrivateFile } from '../k8s/kubeconfig.js';

/**
 * Which host context each tenant context was connected from, kept beside the user's (first) kubeconfig
 * file, so that commands run while a tenant context is current still reach the host, and `disconnect`
 * knows where to go back to.
 */
const connectionsFile = (): string => `${kubeconfigFiles()[0]}.kplex.json`;

type Connections = Record<string, { hostContext: string }>;

export function readConnections(): Connections {
  const f = connectionsFile();
  return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as Connections) : {};
}

export function writeConnections(c: Connections): void {
  writePrivateFile(connectionsFile(), JSON.stringify(c, null, 2));
}

/** The host context: --context, else $KPLEX_CONTEXT, else the current one (or the host it was connected from). */
export function hostContextName(flag?: string): string | undefined {
  if (flag) return flag;
  if (process.env.KPLEX_CONTEXT) return process.env.KPLEX_CONTEXT;
  const current = currentContext();
  if (!current) return undefined;
  return readConnections()[current]?.hostContext ?? current;
}

export function hostClient(flag?: string): { client: KubeClient; context: string } {
  const access = accessFromKubeconfig({ context: hostContextName(flag) });
  return { client: new KubeClient(access, { connections: 4 }), context: access.context };
}

/** Runs `run` with a client of the host cluster (see hostContextName), closed afterwards. */
export async function withHost<T>(context: string | undefined, run: (host: KubeClient, hostContext: string) => Promise<T>): Promise<T> {
  const { client, context: ctx } = hostClient(context);
  try {
    return await run(client, ctx);
  } finally {
    await client.close();
  }
}
