import { Agent, request } from 'undici';
import { percentile } from './measure.js';

export interface LoadResult {
  requests: number;
  errors: number;
  seconds: number;
  throughput: number;
  p50ms: number;
  p99ms: number;
  /** Each successful request's latency in ms, ascending. */
  latencies: number[];
}

/**
 * Sends GETs to `url` from `concurrency` clients for `seconds` (bounded in time and count), and reports
 * throughput and latency percentiles. Loopback only.
 */
export async function load(url: string, o: { dispatcher: Agent; headers?: Record<string, string>; concurrency: number; seconds: number; maxRequests?: number }): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  const deadline = performance.now() + o.seconds * 1000;
  const max = o.maxRequests ?? 200_000;
  const begin = performance.now();
  const client = async (): Promise<void> => {
    while (performance.now() < deadline && latencies.length + errors < max) {
      const t0 = performance.now();
      try {
        const res = await request(url, { dispatcher: o.dispatcher, headers: o.headers });
        await res.body.dump({ limit: Infinity });
        if (res.statusCode !== 200) errors++;
        else latencies.push(performance.now() - t0);
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, client));
  const seconds = (performance.now() - begin) / 1000;
  return summarize(latencies, errors, seconds);
}

function summarize(latencies: number[], errors: number, seconds: number): LoadResult {
  latencies.sort((a, b) => a - b);
  return { requests: latencies.length, errors, seconds, throughput: latencies.length / seconds, p50ms: percentile(latencies, 50), p99ms: percentile(latencies, 99), latencies };
}

/** Several runs of the same load as one: rounds interleaved with a baseline's cancel out drift of the machine. */
export function combine(runs: LoadResult[]): LoadResult {
  return summarize(runs.flatMap((r) => r.latencies), runs.reduce((n, r) => n + r.errors, 0), runs.reduce((n, r) => n + r.seconds, 0));
}
