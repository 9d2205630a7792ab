// What a benchmark returns besides its printed tables: its figures as data, each against its baseline
// from the same run, so that `npm run bench` can write them all into bench/RESULTS.md. Pure: the
// machine facts are gathered by bench/machine.ts and passed in.

export interface BenchRow {
  /** What was measured, and how: "GET through the gateway, 32 clients, p99". */
  figure: string;
  unit: string;
  value: number;
  /** What the value is compared with, measured in the same run; absent when the figure has none. */
  baseline?: { what: string; value: number };
  /** Run-to-run (or tenant-to-tenant) spread of the value, as its bench can say it: "min 1.2 / max 1.9 over 3 runs". */
  spread?: string;
  /** The target, in words ("≤ 1.2x", "0 errors"), and whether this run met it. */
  target?: { text: string; met: boolean };
}

export interface BenchReport {
  title: string;
  rows: BenchRow[];
  /** What a reader needs besides the rows: the scale it ran at, what it had to leave out and why. */
  notes: string[];
}

/** A benchmark's flags are wrong: said in one line before anything runs, not as a stack trace. */
export class FlagError extends Error {}

export interface RunFacts {
  date: string;
  commit: string;
  dirty: boolean;
  cores: number;
  memoryGiB: number;
  kernel: string;
  node: string;
  cpuModel: string;
}

/** value / baseline, or undefined where there is no baseline or it is 0. */
export const ratioOf = (row: BenchRow): number | undefined => (row.baseline && row.baseline.value !== 0 ? row.value / row.baseline.value : undefined);

/** Counts as they are; other numbers with digits that suit the magnitude: 0.012, 1.23, 12.3, 1235. */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v) || Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toPrecision(2);
}

/** A table cell: Markdown's own separator is escaped so a figure's words cannot break the table. */
const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

const BEGIN = (name: string): string => `<!-- bench:${name} -->`;
const END = (name: string): string => `<!-- /bench:${name} -->`;

/** Bench `name`'s section (its name in bench/run.ts): its title, the run it came from, its table and notes, between markers that name it. */
export function renderSection(name: string, report: BenchReport, facts: RunFacts): string {
  const lines = [
    BEGIN(name),
    `## ${name}: ${report.title}`,
    '',
    `Run ${facts.date} at ${facts.commit.slice(0, 12)}${facts.dirty ? ' (tree dirty)' : ''}; ${facts.cores} cores (${facts.cpuModel}), ${facts.memoryGiB.toFixed(1)} GiB, Linux ${facts.kernel}, Node ${facts.node}.`,
    '',
    '| figure | value | baseline (same run) | ratio | spread | target |',
    '|---|---|---|---|---|---|',
  ];
  for (const row of report.rows) {
    const ratio = ratioOf(row);
    const baseline = row.baseline ? `${formatNumber(row.baseline.value)} ${row.unit} (${row.baseline.what})` : '';
    const target = row.target ? `${row.target.text}: ${row.target.met ? 'met' : 'NOT met'}` : '';
    lines.push(`| ${[row.figure, `${formatNumber(row.value)} ${row.unit}`, baseline, ratio === undefined ? '' : `${ratio.toFixed(2)}x`, row.spread ?? '', target].map(cell).join(' | ')} |`);
  }
  if (report.notes.length) lines.push('', ...report.notes.map((n) => `- ${n}`));
  lines.push(END(name));
  return lines.join('\n');
}

export const RESULTS_HEADER = [
  '# Benchmark results',
  '',
  'Written by `npm run bench` (bench/run.ts); do not edit by hand. Each section is one benchmark of one run',
  'and says when, at which commit and on what machine it ran: `npm run bench NAME` replaces only that',
  "benchmark's section, so sections may come from different runs. Every ratio is against a baseline",
  'measured in the same run, on the same machine.',
].join('\n');

/**
 * The results file with `sections` (already rendered) put in: a section whose bench is in the file
 * already replaces it where it stands, a new one goes at the end, the others are kept as they were.
 * Without a file (or with one that lacks the header) the file starts with the header.
 */
export function mergeResults(existing: string | undefined, sections: { name: string; text: string }[]): string {
  let text = existing?.startsWith(RESULTS_HEADER) ? existing.trimEnd() : RESULTS_HEADER;
  for (const s of sections) {
    const begin = text.indexOf(BEGIN(s.name));
    const end = text.indexOf(END(s.name));
    if (begin >= 0 && end > begin) text = text.slice(0, begin) + s.text + text.slice(end + END(s.name).length);
    else text = `${text}\n\n${s.text}`;
  }
  return `${text}\n`;
}

/** Bench `name`'s section in a results file, markers included, when the file has one. */
export function sectionOf(text: string, name: string): string | undefined {
  const begin = text.indexOf(BEGIN(name));
  const end = text.indexOf(END(name));
  return begin >= 0 && end > begin ? text.slice(begin, end + END(name).length) : undefined;
}

/**
 * Slope of the least-squares line through (x, y) points, in y units per x unit; 0 with fewer than two
 * distinct x. The soak bench takes it over the second half of its memory samples: growth there, once
 * start-up allocations are done, is what a leak looks like.
 */
export function slope(points: { x: number; y: number }[]): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  const sxx = points.reduce((s, p) => s + (p.x - mx) ** 2, 0);
  if (sxx === 0) return 0;
  return points.reduce((s, p) => s + (p.x - mx) * (p.y - my), 0) / sxx;
}

/** The later half of a series (the middle sample included when the count is odd). */
export const secondHalf = <T>(xs: T[]): T[] => xs.slice(Math.floor(xs.length / 2));
