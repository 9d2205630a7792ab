// Runs the benchmarks one after another (they share 2 cores); each prints its own tables of ratios
// against a baseline measured in the same run, and returns its figures, which go into bench/RESULTS.md.
// `npm run bench` runs them all and writes RESULTS.md anew (so no section of an older run stays beside
// them, but the sections of the benchmarks it does not run are kept); `npm run bench NAME` runs one and replaces only its section, keeping the others. The file is
// written after each benchmark, so one that fails later loses nothing already measured. A benchmark that
// takes far longer than the others (density: an hour and more at its full scale) runs only by name, with
// its flags: `node dist/bench/run.js density --awake 10 --registered 60`.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../src/paths.js';
import { benchCli } from './cli.js';
import { benchDensity } from './density.js';
import { benchGateway } from './gateway.js';
import { runFacts } from './machine.js';
import { benchNodes } from './nodes.js';
import { FlagError, mergeResults, renderSection, sectionOf, type BenchReport } from './report.js';
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
/** Run only when named, with the flags after the name. */
const byNameOnly: Record<string, (args: string[]) => Promise<BenchReport>> = {
  density: benchDensity,
};
const RESULTS = path.join(packageRoot, 'bench', 'RESULTS.md');

const [wanted, ...args] = process.argv.slice(2);
if (wanted && !benches[wanted] && !byNameOnly[wanted]) {
  console.error(`no benchmark "${wanted}"; there are: ${Object.keys(benches).join(', ')}, and by name only: ${Object.keys(byNameOnly).join(', ')}`);
  process.exit(2);
}
if (args.length && !byNameOnly[wanted!]) {
  console.error(`benchmark "${wanted}" takes no flags (its settings are BENCH_* variables); got: ${args.join(' ')}`);
  process.exit(2);
}
const existing = existsSync(RESULTS) ? readFileSync(RESULTS, 'utf8') : undefined;
// A run of them all starts the file anew except for what it does not run: an hour-long density run is
// not thrown away by the next `npm run bench`.
const kept = Object.keys(byNameOnly).flatMap((name) => {
  const text = existing && sectionOf(existing, name);
  return text ? [{ name, text }] : [];
});
let results = wanted ? existing : mergeResults(undefined, kept);
for (const name of wanted ? [wanted] : Object.keys(benches)) {
  const report = await (benches[name] ? benches[name]() : byNameOnly[name]!(args)).catch((err: Error) => {
    if (!(err instanceof FlagError)) throw err;
    console.error(err.message);
    process.exit(2);
  });
  results = mergeResults(results, [{ name, text: renderSection(name, report, runFacts()) }]);
  writeFileSync(RESULTS, results);
  console.log(`\n(${name}: figures written to ${path.relative(process.cwd(), RESULTS)})`);
}
