// Every command starts by loading this file, so it and what it imports stay small (commander and the
// command definitions); a command's implementation is imported when that command runs.
import { Command, CommanderError } from 'commander';
import { registerDev } from './dev.js';
import { registerTenants } from './tenants.js';

/** The words of `argv` that are not options: the command and its subcommand first. */
const wordsOf = (argv: string[]): string[] => argv.slice(2).filter((a) => !a.startsWith('-'));

/** The command `argv` runs, if any (`help` names the next one). */
function commandOf(argv: string[]): string | undefined {
  const words = wordsOf(argv);
  return words[0] === 'help' ? words[1] : words[0];
}

/** Whether `argv` runs a server (the gateway, or the dev cluster's supervisor) rather than a command that exits. */
export function runsServer(argv: string[]): boolean {
  const [command, sub] = wordsOf(argv);
  return (command === 'gateway' && sub !== 'certs' && sub !== 'rotate-keys') || (command === 'dev' && sub === 'up');
}

/**
 * `kplex gateway` and its subcommands are defined in a module that imports the whole gateway, so it is
 * loaded only when one of them runs (or its help is asked for); otherwise a stand-in lists the command
 * in the help.
 */
async function registerGateway(program: Command, argv: string[]): Promise<void> {
  if (commandOf(argv) === 'gateway') (await import('./gateway.js')).registerGateway(program);
  else program.command('gateway').description('run the TLS gateway: authenticates tenant tokens, authorizes, and proxies to tenant control planes');
}

export async function main(argv: string[]): Promise<number> {
  const program = new Command('kplex')
    .description('Kubernetes virtual clusters: a control plane per tenant behind one TLS gateway, workloads on a shared host')
    .version('0.1.0')
    .exitOverride()
    .showHelpAfterError(false);
  registerTenants(program);
  await registerGateway(program, argv);
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
