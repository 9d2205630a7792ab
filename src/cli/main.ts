import { Command, CommanderError } from 'commander';
import { registerDev } from './dev.js';
import { registerGateway } from './gateway.js';
import { registerTenants } from './tenants.js';

export async function main(argv: string[]): Promise<number> {
  const program = new Command('kplex')
    .description('Kubernetes virtual clusters: a control plane per tenant behind one TLS gateway, workloads on a shared host')
    .version('0.1.0')
    .exitOverride()
    .showHelpAfterError(false);
  registerTenants(program);
  registerGateway(program);
  registerDev(program);
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    const e = err as Error & { exitCode?: number };
    console.error(`kplex: ${e.message}`);
    return typeof e.exitCode === 'number' ? e.exitCode : 1;
  }
}
