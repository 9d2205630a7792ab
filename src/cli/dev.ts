import type { Command } from 'commander';
import { defaultDevDataDir } from '../paths.js';

/** The `dev` commands; each loads its implementation when it runs. */
export function registerDev(program: Command): void {
  const dev = program.command('dev').description('the embedded host cluster: etcd, kube-apiserver, controller manager, scheduler, a real node, kwok nodes and a gateway');

  dev
    .command('up')
    .description('start the embedded host cluster (foreground until Ctrl-C, or --detach)')
    .option('--nodes <n>', 'real nodes (kubelet, containerd, runc, CNI, kube-proxy, CoreDNS): 0 or 1; without root or containerd, none', '1')
    .option('--simulated-nodes <n>', 'kwok nodes (beside a real node they take only pods that tolerate kwok.x-k8s.io/node)', '3')
    .option('--data-dir <dir>', `where the cluster keeps its data (default ${defaultDevDataDir()})`)
    .option('-d, --detach', 'run in the background and return once ready')
    .option('--api-port <port>', 'host API server port (default: a free port)')
    .option('--gateway-port <port>', 'gateway port (default: 8443, or a free port if taken)')
    .option('--no-gateway', 'do not start the gateway')
    .option('--switch-context <bool>', 'make kplex-host the current kubectl context (false: only add it)', 'true')
    .option('--component-arg <NAME=FLAG>', 'extra flag for one component (repeatable)', (v: string, acc: string[]) => [...acc, v], [])
    .action(async (flags) => (await import('./dev-commands.js')).up(flags));

  dev
    .command('status')
    .description('show whether the embedded cluster runs, and its components')
    .option('--data-dir <dir>', 'data folder of the cluster')
    .action(async (flags) => (await import('./dev-commands.js')).status(flags));

  dev
    .command('down')
    .description('stop the embedded cluster and everything it started')
    .option('--data-dir <dir>', 'data folder of the cluster')
    .action(async (flags) => (await import('./dev-commands.js')).down(flags));

  dev
    .command('image')
    .description("images for the real node, which reaches no registry")
    .command('load')
    .description('import an image archive (docker save, ctr images export, skopeo oci-archive) into the real node, under the names in the archive')
    .argument('<file>', 'the archive: an OCI image layout or a docker save tar')
    .option('--data-dir <dir>', 'data folder of the cluster')
    .action(async (file: string, flags) => (await import('./dev-commands.js')).imageLoad(file, flags));
}
