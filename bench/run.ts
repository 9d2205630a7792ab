// Runs the benchmarks one after another (they share 2 cores); each prints its own tables of ratios
// against a baseline measured in the same run, and returns its figures, which go into bench/RESULTS.md.
// `npm run bench` runs them all and writes RESULTS.md anew (so no section of an older run stays beside
// them); `npm run bench NAME` runs one and replaces only its section, keeping the others. The file is
// written after each benchmark, so one that fails later loses nothing already measured.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../src/paths.js';
import { benchCli } from './cli.js';
import { benchGateway } from './gateway.js';
import { runFacts } from './machine.js';
import { benchNodes } from './nodes.js';
import { mergeResults, renderSection, type BenchReport } from './report.js';
import { benchSleep } from './sleep.js';
import { benchSoak } from './soak.js';
import { benchSync } from './sync.js';
import { benchTenantLevers } from './tenant-levers.js';
import { benchTenantMemory } from './tenant-memory.js';

const benches: Record<string, () => Promise<BenchReport>> = {
  gateway: benchGateway,
  sync: benchSync,
  cli: benchCli,
  nodes: benchNodes,
  'tenant-memory': benchTenantMemory,
  'tenant-levers': benchTenantLevers,
  sleep: benchSleep,
  soak: benchSoak,
};
const RESULTS = path.join(packageRoot, 'bench', 'RESULTS.md');

const wanted = process.argv[2];
if (wanted && !benches[wanted]) {
  console.error(`no benchmark "${wanted}"; there are: ${Object.keys(benches).join(', ')}`);
  process.exit(2);
}
let results = wanted && existsSync(RESULTS) ? readFileSync(RESULTS, 'utf8') : undefined;
for (const name of wanted ? [wanted] : Object.keys(benches)) {
  const report = await benches[name]!();
  results = mergeResults(results, [{ name, text: renderSection(name, report, runFacts()) }]);
  writeFileSync(RESULTS, results);
  console.log(`\n(${name}: figures written to ${path.relative(process.cwd(), RESULTS)})`);
}
