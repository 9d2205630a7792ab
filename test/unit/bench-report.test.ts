import { describe, expect, it } from 'vitest';
import { median, percentile } from '../../bench/measure.js';
import { formatNumber, mergeResults, ratioOf, renderSection, RESULTS_HEADER, secondHalf, sectionOf, slope, type BenchReport, type RunFacts } from '../../bench/report.js';

const facts: RunFacts = { date: '2026-12-01T11:00:00Z', commit: '0123456789abcdef0123', dirty: true, cores: 2, memoryGiB: 23.5, kernel: '6.18.44', node: 'v20.20.2', cpuModel: 'Some CPU' };

const report: BenchReport = {
  title: 'a bench',
  rows: [
    { figure: 'get through the gateway, p99', unit: 'ms', value: 3.3, baseline: { what: 'direct', value: 2.2 }, spread: 'min 1 / max 4', target: { text: '≤ 2 ms added', met: true } },
    { figure: 'errors | other than 429', unit: 'requests', value: 1, target: { text: '0', met: false } },
    { figure: 'against zero', unit: 'ms', value: 5, baseline: { what: 'nothing', value: 0 } },
  ],
  notes: ['scale: small'],
};

describe('percentile', () => {
  const sorted = Array.from({ length: 100 }, (_, i) => i + 1);
  it('takes the nearest rank of an ascending list', () => {
    expect(percentile(sorted, 50)).toBe(51);
    expect(percentile(sorted, 99)).toBe(100);
    expect(percentile(sorted, 0)).toBe(1);
  });
  it('stays inside the list at p100 and answers 0 for no values', () => {
    expect(percentile(sorted, 100)).toBe(100);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBe(0);
  });
  it('median averages the middle two of an even count, whatever the order', () => {
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([5, 1, 3])).toBe(3);
  });
});

describe('slope (the memory trend)', () => {
  it('is the least-squares slope of a noisy line', () => {
    const points = [0, 1, 2, 3, 4, 5].map((x) => ({ x, y: 100 + 2 * x + (x % 2 ? 0.5 : -0.5) }));
    expect(slope(points)).toBeCloseTo(2 + 3 / 35, 6);
  });
  it('is 0 for a flat series, one point, or points at one x', () => {
    expect(slope([{ x: 0, y: 5 }, { x: 1, y: 5 }, { x: 2, y: 5 }])).toBe(0);
    expect(slope([{ x: 0, y: 5 }])).toBe(0);
    expect(slope([{ x: 1, y: 5 }, { x: 1, y: 9 }])).toBe(0);
  });
  it('is negative when memory falls', () => {
    expect(slope([{ x: 0, y: 10 }, { x: 1, y: 8 }, { x: 2, y: 6 }])).toBeCloseTo(-2, 9);
  });
  it('secondHalf keeps the later half, the middle sample included', () => {
    expect(secondHalf([1, 2, 3, 4, 5])).toEqual([3, 4, 5]);
    expect(secondHalf([1, 2, 3, 4])).toEqual([3, 4]);
    expect(secondHalf([])).toEqual([]);
  });
});

describe('results file', () => {
  it('renders a section: the run, one table row per figure with its ratio and target, the notes', () => {
    const text = renderSection('soak', report, facts);
    const lines = text.split('\n');
    expect(lines[0]).toBe('<!-- bench:soak -->');
    expect(lines.at(-1)).toBe('<!-- /bench:soak -->');
    expect(text).toContain('## soak: a bench');
    expect(text).toContain('Run 2026-12-01T11:00:00Z at 0123456789ab (tree dirty); 2 cores (Some CPU), 23.5 GiB, Linux 6.18.44, Node v20.20.2.');
    expect(text).toContain('| get through the gateway, p99 | 3.30 ms | 2.20 ms (direct) | 1.50x | min 1 / max 4 | ≤ 2 ms added: met |');
    // A figure's own | does not split the table; a baseline of 0 gives no ratio rather than Infinity.
    expect(text).toContain('| errors \\| other than 429 | 1 requests |  |  |  | 0: NOT met |');
    expect(text).toContain('| against zero | 5 ms | 0 ms (nothing) |  |  |  |');
    expect(text).toContain('- scale: small');
  });

  it('says nothing of dirt on a clean tree', () => {
    expect(renderSection('soak', report, { ...facts, dirty: false })).toContain('at 0123456789ab; 2 cores');
  });

  it('starts a new file with the header and the section', () => {
    const merged = mergeResults(undefined, [{ name: 'soak', text: renderSection('soak', report, facts) }]);
    expect(merged.startsWith(`${RESULTS_HEADER}\n\n<!-- bench:soak -->`)).toBe(true);
    expect(merged.endsWith('<!-- /bench:soak -->\n')).toBe(true);
  });

  it('replaces only the named section, where it stands, and appends a new one', () => {
    const file = mergeResults(undefined, [
      { name: 'gateway', text: '<!-- bench:gateway -->\ngateway 1\n<!-- /bench:gateway -->' },
      { name: 'soak', text: '<!-- bench:soak -->\nsoak 1\n<!-- /bench:soak -->' },
      { name: 'sleep', text: '<!-- bench:sleep -->\nsleep 1\n<!-- /bench:sleep -->' },
    ]);
    const updated = mergeResults(file, [{ name: 'soak', text: '<!-- bench:soak -->\nsoak 2\n<!-- /bench:soak -->' }, { name: 'cli', text: '<!-- bench:cli -->\ncli 1\n<!-- /bench:cli -->' }]);
    expect(updated).toBe(file.replace('soak 1', 'soak 2').replace(/\n$/, '\n\n<!-- bench:cli -->\ncli 1\n<!-- /bench:cli -->\n'));
    // The same section twice is the same file.
    expect(mergeResults(updated, [{ name: 'soak', text: '<!-- bench:soak -->\nsoak 2\n<!-- /bench:soak -->' }])).toBe(updated);
  });

  it('does not take a bench whose name starts another for it', () => {
    const file = mergeResults(undefined, [{ name: 'sync', text: '<!-- bench:sync -->\nsync\n<!-- /bench:sync -->' }]);
    expect(mergeResults(file, [{ name: 'syn', text: '<!-- bench:syn -->\nsyn\n<!-- /bench:syn -->' }])).toContain('sync\n<!-- /bench:sync -->\n\n<!-- bench:syn -->');
  });

  it('finds one section again, markers included, so a run of all benches can keep it', () => {
    const file = mergeResults(undefined, [
      { name: 'gateway', text: '<!-- bench:gateway -->\ngateway 1\n<!-- /bench:gateway -->' },
      { name: 'density', text: '<!-- bench:density -->\ndensity 1\n<!-- /bench:density -->' },
    ]);
    expect(sectionOf(file, 'density')).toBe('<!-- bench:density -->\ndensity 1\n<!-- /bench:density -->');
    expect(sectionOf(file, 'dens')).toBeUndefined();
    expect(sectionOf(file, 'soak')).toBeUndefined();
    expect(mergeResults(undefined, [{ name: 'density', text: sectionOf(file, 'density')! }])).toBe(`${RESULTS_HEADER}\n\n<!-- bench:density -->\ndensity 1\n<!-- /bench:density -->\n`);
  });

  it('starts over from a file that is not a results file', () => {
    expect(mergeResults('notes of mine\n', [])).toBe(`${RESULTS_HEADER}\n`);
  });

  it('ratio and numbers: value over baseline, digits for the magnitude', () => {
    expect(ratioOf(report.rows[0]!)).toBeCloseTo(1.5, 9);
    expect(ratioOf(report.rows[1]!)).toBeUndefined();
    expect([1234.5, 12.34, 1.234, 0.01234, 0, -3.5, 1000].map(formatNumber)).toEqual(['1235', '12.3', '1.23', '0.012', '0', '-3.50', '1000']);
  });
});
