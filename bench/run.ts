// Runs the benchmarks one after another (they share 2 cores); each prints its own table of ratios
// against a baseline measured in the same run. `npm run bench [gateway|sync|cli|nodes|tenant-memory|tenant-levers|sleep]`.
import { benchCli } from './cli.js';
import { benchGateway } from './gateway.js';
import { benchNodes } from './nodes.js';
import { benchSleep } from './sleep.js';
import { benchSync } from './sync.js';
import { benchTenantLevers } from './tenant-levers.js';
import { benchTenantMemory } from './tenant-memory.js';

const benches: Record<string, () => Promise<void>> = { gateway: benchGateway, sync: benchSync, cli: benchCli, nodes: benchNodes, 'tenant-memory': benchTenantMemory, 'tenant-levers': benchTenantLevers, sleep: benchSleep };
const wanted = process.argv[2];
const names = wanted ? [wanted] : Object.keys(benches);
for (const name of names) {
  const bench = benches[name];
  if (!bench) {
    console.error(`no benchmark "${name}"; there are: ${Object.keys(benches).join(', ')}`);
    process.exit(2);
  }
  await bench();
}
