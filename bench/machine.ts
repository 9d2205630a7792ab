// The facts RESULTS.md gives for a run: when, at which commit, on what machine.
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { packageRoot } from '../src/paths.js';
import type { RunFacts } from './report.js';

const git = (args: string[]): string => spawnSync('git', args, { cwd: packageRoot, encoding: 'utf8' }).stdout?.trim() ?? '';

export function runFacts(): RunFacts {
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    // Outside a git checkout (an installed package) there is no commit to name.
    commit: git(['rev-parse', 'HEAD']) || 'unknown',
    // The results file is written by the runs themselves: it alone does not make the tree dirty.
    dirty: git(['status', '--porcelain', '--', '.', ':!bench/RESULTS.md']) !== '',
    cores: os.cpus().length,
    memoryGiB: os.totalmem() / 2 ** 30,
    kernel: os.release(),
    node: process.version,
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
  };
}
