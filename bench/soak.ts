// Load and soak: TENANTS awake tenants, each sending a steady mix of what kubectl sends (get, list, watch,
// server-side apply, logs of a pod) through one gateway for SOAK_MIN minutes, and the same mix sent
// directly to each tenant's API server at the same time: the baseline, under the same load of the same
// machine. Logs are a pod's twin's, so their direct baseline is the host API server's log of the twin
// (what the gateway forwards to); they need a pod that runs, on the real node, and are left out (and
// the output says so) when none does. Meanwhile the gateway process's memory is sampled every SAMPLE_S
// seconds. Then WATCHES watches are opened through the gateway at once: its memory per open watch.
// Targets: no error other than 429; no memory growth (least-squares slope over the second half of the
// process's private memory and of its heap at most MAX_SLOPE MiB/min). PSS is shown too, but it moves
// whenever other processes on the machine map the same node binary, so the trend is read from private
// memory.
// `npm run bench soak` (a real node: root, and on a shared machine the e2e lock); small:
// BENCH_TENANTS=2 BENCH_SOAK_MIN=1 BENCH_WATCHES=50 BENCH_SOAK_SAMPLE_S=10. Also BENCH_SOAK_INTERVAL_MS
// (the pace) and BENCH_CREATE_CONCURRENCY.
import { setMaxListeners } from 'node:events';
import path from 'node:path';
import pLimit from 'p-limit';
import { Agent, request } from 'undici';
import YAML from 'yaml';
import { KubeClient, core, type KubeObject } from '../src/k8s/client.js';
import { accessFromKubeconfig } from '../src/k8s/kubeconfig.js';
import { readState } from '../src/dev/state.js';
import { devCluster } from './dev-cluster.js';
import { percentile, sleep } from './measure.js';
import { gatewayHeapMiB, memoryMiB } from './process-stats.js';
import { formatNumber, secondHalf, slope, type BenchReport, type BenchRow } from './report.js';

const TENANTS = Number(process.env.BENCH_TENANTS ?? 20);
const SOAK_MIN = Number(process.env.BENCH_SOAK_MIN ?? 10);
const WATCHES = Number(process.env.BENCH_WATCHES ?? 1000);
const SAMPLE_S = Number(process.env.BENCH_SOAK_SAMPLE_S ?? 30);
/** Each tenant sends one request every INTERVAL_MS on each path: steady traffic, not a saturation test. */
const INTERVAL_MS = Number(process.env.BENCH_SOAK_INTERVAL_MS ?? 500);
/** Tenants are created one after another by default: with 15 running on 2 cores, 3 at once kept one Pending past `kplex create`'s 180 s. */
const CREATE_CONCURRENCY = Number(process.env.BENCH_CREATE_CONCURRENCY ?? 1);
/** "No growth trend": what memory may grow by over the second half as GC noise. */
const MAX_SLOPE = 0.5;
const CONFIGMAPS = 20;
const HEAP_EVERY_MS = 2_000;
/** How long the gateway is left before each memory reading around the watches (and the heap's lows taken over). */
const SETTLE_MS = 15_000;
const POD = 'logger';

const KINDS = ['get', 'list', 'watch', 'apply', 'logs'] as const;
type Kind = (typeof KINDS)[number];
const PATHS = ['gateway', 'direct'] as const;
type Via = (typeof PATHS)[number];

const d = (s: string | undefined): string => Buffer.from(s ?? '', 'base64').toString('utf8');
const progress = (what: string): void => void process.stderr.write(`[bench soak ${new Date().toISOString().slice(11, 19)}] ${what}\n`);

/**
 * Where requests of one path go: a server (with the gateway's /tenants/NAME prefix, if any) and how to
 * reach it. Watches go on connections of their own, so that a watch still open does not make the next
 * request of the mix wait for, or open, a connection.
 */
interface Endpoint {
  server: string;
  dispatcher: Agent;
  watchDispatcher?: Agent;
  headers: Record<string, string>;
}

/**
 * One request of the mix. A watch counts until its first event, as `kubectl get -w` shows its first
 * line; it is then read on (not awaited) until the API server ends it, so its connection is reused.
 */
interface Op {
  kind: Kind;
  to: Endpoint;
  method: 'GET' | 'PATCH';
  path: string;
  body?: () => string;
  contentType?: string;
  untilFirstLine?: boolean;
}

interface Tally {
  latencies: Map<Kind, number[]>;
  ok: number;
  throttled: number;
  errors: number;
  /** The first few failures, as they were, for the output. */
  samples: string[];
}

const tally = (): Tally => ({ latencies: new Map(KINDS.map((k) => [k, []])), ok: 0, throttled: 0, errors: 0, samples: [] });

function fail(t: Tally, what: string): void {
  t.errors++;
  if (t.samples.length < 5) t.samples.push(what);
}

async function send(op: Op, t: Tally): Promise<void> {
  const t0 = performance.now();
  try {
    const res = await request(`${op.to.server}${op.path}`, {
      dispatcher: (op.untilFirstLine && op.to.watchDispatcher) || op.to.dispatcher,
      method: op.method,
      headers: { ...op.to.headers, ...(op.contentType ? { 'content-type': op.contentType } : {}) },
      body: op.body?.(),
      signal: AbortSignal.timeout(60_000),
    });
    if (res.statusCode === 429 || res.statusCode >= 300) {
      const text = (await res.body.text()).slice(0, 200);
      if (res.statusCode === 429) t.throttled++;
      else fail(t, `${op.kind} ${op.path}: ${res.statusCode} ${text}`);
      return;
    }
    if (op.untilFirstLine) {
      if (!(await firstLine(res.body, (err) => fail(t, `${op.kind} ${op.path}: broke after its first event: ${err.message}`)))) {
        return fail(t, `${op.kind} ${op.path}: the watch ended before its first event`);
      }
    } else {
      await res.body.dump({ limit: Infinity });
    }
    t.ok++;
    t.latencies.get(op.kind)!.push(performance.now() - t0);
  } catch (err) {
    fail(t, `${op.kind} ${op.path}: ${(err as Error).message}`);
  }
}

/** Whether `body` brings a first line before it ends; it flows on to its end either way, and a break after the first line goes to `broke`. */
function firstLine(body: NodeJS.ReadableStream, broke: (err: Error) => void): Promise<boolean> {
  return new Promise((resolve) => {
    let seen = '';
    let answered = false;
    const answer = (v: boolean): void => {
      if (!answered) resolve(v);
      answered = true;
    };
    body.on('data', (chunk: Buffer) => {
      if (answered) return;
      seen += chunk.toString();
      if (seen.includes('\n')) answer(true);
    });
    body.once('end', () => answer(false));
    body.once('error', (err: Error) => {
      if (answered) broke(err);
      answer(false);
    });
  });
}

/** One request every INTERVAL_MS, the ops in turn, until `end`; a slow request delays the next, never bunches them. */
async function steady(ops: Op[], t: Tally, startAfterMs: number, end: number): Promise<void> {
  await sleep(startAfterMs);
  for (let i = 0; performance.now() < end; i++) {
    const next = performance.now() + INTERVAL_MS;
    await send(ops[i % ops.length]!, t);
    await sleep(Math.max(0, next - performance.now()));
  }
}

interface Sample {
  minutes: number;
  pss: number;
  private: number;
  /** The lowest heap used seen over the sample's window: what survived the collections in it. */
  heap?: number;
}

/**
 * The gateway process's memory at the end of a window of `windowMs`: PSS and private memory from /proc,
 * and the heap as the lowest of readings every HEAP_EVERY_MS in the window. Heap used rises and falls by
 * tens of MiB between collections; its lows are what a leak raises.
 */
async function sampleMemory(pid: number, metricsUrl: string | undefined, since: number, windowMs = 0): Promise<Sample> {
  const end = performance.now() + windowMs;
  const heaps: number[] = [];
  for (;;) {
    const h = metricsUrl ? await gatewayHeapMiB(metricsUrl) : undefined;
    if (h !== undefined) heaps.push(h);
    const left = end - performance.now();
    if (left <= 0) break;
    await sleep(Math.min(HEAP_EVERY_MS, left));
  }
  const { pss, private: own } = memoryMiB(pid);
  return { minutes: (performance.now() - since) / 60_000, pss, private: own, heap: heaps.length ? Math.min(...heaps) : undefined };
}

interface TenantSetup {
  name: string;
  gateway: Endpoint;
  direct: Endpoint;
  /** The gateway client (setup goes where users' requests go). */
  client: KubeClient;
  /** The twin of the tenant's pod on the host, once it runs. */
  twin?: string;
}

export async function benchSoak(): Promise<BenchReport> {
  const c = await devCluster('bench-soak', 1, 1);
  const agents: Agent[] = [];
  const agent = (o: ConstructorParameters<typeof Agent>[0]): Agent => {
    const a = new Agent(o);
    agents.push(a);
    return a;
  };
  const clients: KubeClient[] = [];
  try {
    const state = readState(c.dataDir);
    if (!state?.pid) throw new Error(`no kplex dev process recorded in ${c.dataDir}`);
    const gatewayPid = state.pid;
    const metricsUrl = state.gateway?.metricsUrl;

    progress(`creating ${TENANTS} tenants, ${CREATE_CONCURRENCY} at a time`);
    const names = Array.from({ length: TENANTS }, (_, i) => `soak-${i}`);
    const limit = pLimit(CREATE_CONCURRENCY);
    await Promise.all(names.map((n) => limit(() => c.kplex(['create', n, '--connect=false', '--context', 'kplex-host']))));

    const hostAccess = accessFromKubeconfig({ file: path.join(c.dataDir, 'admin.kubeconfig') });
    const host: Endpoint = { server: hostAccess.server, dispatcher: agent({ connections: TENANTS, connect: { ca: hostAccess.ca, cert: hostAccess.cert, key: hostAccess.key } }), headers: hostAccess.token ? { authorization: `Bearer ${hostAccess.token}` } : {} };
    let gatewayCa = '';
    let gatewayAgent: Agent | undefined;
    let gatewayWatchAgent: Agent | undefined;
    const tenants: TenantSetup[] = [];
    for (const name of names) {
      const secret = await c.host.get<KubeObject & { data: Record<string, string> }>(core('secrets', `kplex-${name}`, `vc-${name}`));
      const kc = YAML.parse(await c.kplexOut(['connect', name, '--print', '--context', 'kplex-host'])) as { clusters: { cluster: Record<string, string> }[]; users: { user: { token: string } }[] };
      const server = kc.clusters[0]!.cluster.server!;
      const token = kc.users[0]!.user.token;
      gatewayCa = d(kc.clusters[0]!.cluster['certificate-authority-data']);
      gatewayAgent ??= agent({ connections: 2 * TENANTS, connect: { ca: gatewayCa } });
      gatewayWatchAgent ??= agent({ connections: 2 * TENANTS, connect: { ca: gatewayCa } });
      const direct = { server: d(secret.data.server), ca: d(secret.data['ca.crt']), cert: d(secret.data['tls.crt']), key: d(secret.data['tls.key']) };
      const client = new KubeClient({ server, ca: gatewayCa, token });
      clients.push(client);
      tenants.push({
        name,
        client,
        gateway: { server, dispatcher: gatewayAgent, watchDispatcher: gatewayWatchAgent, headers: { authorization: `Bearer ${token}` } },
        direct: {
          server: direct.server,
          dispatcher: agent({ connections: 2, connect: { ca: direct.ca, cert: direct.cert, key: direct.key } }),
          watchDispatcher: agent({ connections: 2, connect: { ca: direct.ca, cert: direct.cert, key: direct.key } }),
          headers: {},
        },
      });
    }

    progress('configmaps to get and list, and a pod that logs');
    for (const t of tenants) {
      for (let i = 0; i < CONFIGMAPS; i++) await t.client.create(core('configmaps', 'default'), { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `cm-${i}` }, data: { v: 'x'.repeat(1024) } });
      await t.client.create(core('pods', 'default'), {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: POD },
        spec: {
          containers: [{ name: 'c', image: 'busybox', imagePullPolicy: 'IfNotPresent', command: ['sh', '-c', 'i=0; while true; do echo "line $i"; i=$((i+1)); sleep 1; done'] }],
          terminationGracePeriodSeconds: 1,
        },
      });
    }
    const logsNote = await untilPodsRun(tenants, c.host);

    const ops = (t: TenantSetup, via: Via): Op[] => {
      const to = t[via];
      const ns = '/api/v1/namespaces/default';
      let n = 0;
      const applied = `applied-${via}`;
      const list: Op[] = [
        { kind: 'get', to, method: 'GET', path: `${ns}/configmaps/cm-0` },
        { kind: 'list', to, method: 'GET', path: `${ns}/configmaps` },
        { kind: 'watch', to, method: 'GET', path: `${ns}/configmaps?watch=1&fieldSelector=${encodeURIComponent('metadata.name=cm-0')}&timeoutSeconds=1`, untilFirstLine: true },
        {
          kind: 'apply',
          to,
          method: 'PATCH',
          path: `${ns}/configmaps/${applied}?fieldManager=soak-bench&force=true`,
          contentType: 'application/apply-patch+yaml',
          body: () => JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: applied }, data: { n: String(n++) } }),
        },
      ];
      if (t.twin) {
        const logs = via === 'gateway' ? { to, path: `${ns}/pods/${POD}/log?tailLines=10` } : { to: host, path: `/api/v1/namespaces/kplex-${t.name}/pods/${t.twin}/log?tailLines=10` };
        list.push({ kind: 'logs', method: 'GET', ...logs });
      }
      return list;
    };

    const tallies: Record<Via, Tally> = { gateway: tally(), direct: tally() };
    const samples: Sample[] = [];
    progress(`soak: ${SOAK_MIN} min`);
    const begin = performance.now();
    const end = begin + SOAK_MIN * 60_000;
    samples.push(await sampleMemory(gatewayPid, metricsUrl, begin));
    const sampler = (async () => {
      while (performance.now() + SAMPLE_S * 1000 <= end + 1000) samples.push(await sampleMemory(gatewayPid, metricsUrl, begin, begin + samples.length * SAMPLE_S * 1000 - performance.now()));
    })();
    // Starts spread over one interval, so the tenants' requests do not arrive in step.
    const streams = tenants.flatMap((t, i) => PATHS.map((via, j) => steady(ops(t, via), tallies[via], ((2 * i + j) * INTERVAL_MS) / (2 * TENANTS), end)));
    await Promise.all([...streams, sampler]);

    progress(`opening ${WATCHES} watches`);
    const watchResult = await openWatches(tenants, gatewayCa, gatewayPid, metricsUrl, agent);

    return report(tenants.length, tallies, samples, watchResult, logsNote);
  } finally {
    for (const client of clients) await client.close();
    for (const a of agents) await a.close();
    await c.down();
  }
}

/** Until each tenant's pod runs (its twin found on the host); a note saying why logs are left out when they do not. */
async function untilPodsRun(tenants: TenantSetup[], host: KubeClient): Promise<string | undefined> {
  const deadline = performance.now() + 180_000;
  for (const t of tenants) {
    for (;;) {
      const pod = await t.client.find<KubeObject & { status?: { phase?: string } }>(core('pods', 'default', POD));
      if (pod?.status?.phase === 'Running') {
        const twins = await host.list(core('pods', `kplex-${t.name}`));
        t.twin = twins.items.find((p) => p.metadata.annotations?.['kplex.dev/name'] === POD)?.metadata.name;
        if (t.twin) break;
      }
      if (performance.now() > deadline) {
        for (const u of tenants) delete u.twin;
        return `logs left out: tenant ${t.name}'s pod was not Running after 180 s (phase ${pod?.status?.phase ?? 'none'}); a pod that runs needs the real node (root, containerd, the node images)`;
      }
      await sleep(500);
    }
  }
  return undefined;
}

interface WatchResult {
  opened: number;
  failed: number;
  before: Sample;
  open: Sample;
  closed: Sample;
}

/** WATCHES watches on configmaps through the gateway, spread over the tenants, all open at once; memory before, with them open, and after closing them. */
async function openWatches(tenants: TenantSetup[], ca: string, pid: number, metricsUrl: string | undefined, agent: (o: ConstructorParameters<typeof Agent>[0]) => Agent): Promise<WatchResult> {
  const dispatcher = agent({ connections: WATCHES + 10, connect: { ca } });
  const t0 = performance.now();
  // Traffic has stopped: let the gateway settle before the baseline.
  const before = await sampleMemory(pid, metricsUrl, t0, SETTLE_MS);
  const abort = new AbortController();
  // Every watch listens to the one signal that closes them all.
  setMaxListeners(WATCHES + 10, abort.signal);
  const rvs = await Promise.all(tenants.map(async (t) => (await t.client.list(core('configmaps', 'default'))).metadata?.resourceVersion ?? '0'));
  const opened: { done: Promise<void> }[] = [];
  let failed = 0;
  const limit = pLimit(50);
  await Promise.all(
    Array.from({ length: WATCHES }, (_, i) =>
      limit(async () => {
        const t = tenants[i % tenants.length]!;
        try {
          const res = await request(`${t.gateway.server}/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=${rvs[i % tenants.length]}&timeoutSeconds=3600`, {
            dispatcher,
            headers: t.gateway.headers,
            signal: abort.signal,
          });
          if (res.statusCode !== 200) {
            failed++;
            await res.body.dump();
            return;
          }
          // The body is drained as events come, until the watch is closed below.
          opened.push({ done: res.body.dump({ limit: Infinity }).catch(() => undefined) });
        } catch {
          failed++;
        }
      }),
    ),
  );
  const open = await sampleMemory(pid, metricsUrl, t0, SETTLE_MS);
  abort.abort();
  await Promise.all(opened.map((o) => o.done));
  const closed = await sampleMemory(pid, metricsUrl, t0, SETTLE_MS);
  return { opened: opened.length, failed, before, open, closed };
}

function report(tenantCount: number, tallies: Record<Via, Tally>, samples: Sample[], w: WatchResult, logsNote: string | undefined): BenchReport {
  const rows: BenchRow[] = [];
  const notes: string[] = [];
  const g = tallies.gateway;
  const dr = tallies.direct;
  const total = (t: Tally) => t.ok + t.errors + t.throttled;
  const kinds = KINDS.filter((k) => k !== 'logs' || !logsNote);
  const scale = `${tenantCount} tenants, ${SOAK_MIN} min, each sending ${kinds.join('/')} in turn, one request every ${INTERVAL_MS} ms on each path (gateway and direct at once)`;
  console.log(`\nsoak: ${scale}`);
  console.log(`  requests through the gateway ${total(g)} (errors ${g.errors}, 429 ${g.throttled}); direct ${total(dr)} (errors ${dr.errors}, 429 ${dr.throttled})`);
  const errorRate = total(g) ? (100 * g.errors) / total(g) : 0;
  console.log(`  error rate through the gateway ${errorRate.toFixed(3)}% (target: 0 errors other than 429: ${g.errors === 0 ? 'met' : 'NOT met'})`);
  for (const [via, t] of Object.entries(tallies)) for (const s of t.samples) console.log(`  ${via} error: ${s}`);
  rows.push({ figure: 'errors other than 429, through the gateway', unit: 'requests', value: g.errors, baseline: { what: 'direct', value: dr.errors }, spread: `of ${total(g)} requests (direct: ${total(dr)}); 429: ${g.throttled} / ${dr.throttled}`, target: { text: '0', met: g.errors === 0 } });

  console.log(`  ${'kind'.padEnd(8)}${['gateway p50/p99 ms', 'direct p50/p99 ms', 'ratio p50', 'ratio p99', 'requests'].map((h) => h.padStart(20)).join('')}`);
  for (const kind of kinds) {
    const gs = [...g.latencies.get(kind)!].sort((a, b) => a - b);
    const ds = [...dr.latencies.get(kind)!].sort((a, b) => a - b);
    const p = (xs: number[], q: number) => percentile(xs, q);
    const r = (q: number) => (p(ds, q) ? p(gs, q) / p(ds, q) : NaN);
    console.log(`  ${kind.padEnd(8)}${[`${p(gs, 50).toFixed(1)}/${p(gs, 99).toFixed(1)}`, `${p(ds, 50).toFixed(1)}/${p(ds, 99).toFixed(1)}`, `${r(50).toFixed(2)}x`, `${r(99).toFixed(2)}x`, `${gs.length}/${ds.length}`].map((c) => c.padStart(20)).join('')}`);
    const baselineWhat = kind === 'logs' ? "the host API server, the twin's log" : 'the tenant API server, direct';
    for (const q of [50, 99]) rows.push({ figure: `${kind} through the gateway, p${q}`, unit: 'ms', value: p(gs, q), baseline: { what: baselineWhat, value: p(ds, q) } });
  }
  if (logsNote) {
    console.log(`  ${logsNote}`);
    notes.push(logsNote);
  }

  const trend = (pick: (s: Sample) => number | undefined): number | undefined => {
    const points = secondHalf(samples).flatMap((s) => (pick(s) === undefined ? [] : [{ x: s.minutes, y: pick(s)! }]));
    return points.length >= 2 ? slope(points) : undefined;
  };
  const measures = [
    ['PSS', (s: Sample) => s.pss],
    ['private', (s: Sample) => s.private],
    ['heap', (s: Sample) => s.heap],
  ] as const;
  const mib = (v: number | undefined) => (v === undefined ? '-' : v.toFixed(1));
  const table = (label: string, s: Sample) => `  ${label.padEnd(22)}${measures.map(([, pick]) => mib(pick(s)).padStart(14)).join('')}`;
  const header = `  ${''.padEnd(22)}${measures.map(([name]) => `${name} MiB`.padStart(14)).join('')}`;
  console.log(`  gateway process memory every ${SAMPLE_S} s (the kplex dev process: the gateway, with the tenant controller and syncers; heap: the lowest of readings every ${HEAP_EVERY_MS / 1000} s in each window)`);
  console.log(header);
  for (const s of samples) console.log(table(`${s.minutes.toFixed(1)} min`, s));
  const slopes = new Map(measures.map(([name, pick]) => [name, trend(pick)]));
  const shown = (v: number | undefined) => (v === undefined ? 'too few samples' : `${v >= 0 ? '+' : ''}${v.toFixed(2)} MiB/min`);
  const flat = (v: number | undefined) => v !== undefined && v <= MAX_SLOPE;
  const judged = [slopes.get('private'), ...(slopes.get('heap') === undefined ? [] : [slopes.get('heap')])];
  console.log(`  trend over the second half (least-squares slope): ${measures.map(([name]) => `${name} ${shown(slopes.get(name))}`).join(', ')}`);
  console.log(`  target: no growth (private memory and heap ≤ +${MAX_SLOPE} MiB/min): ${judged.every(flat) ? 'met' : 'NOT met'}`);
  const first = samples[0]!;
  const last = samples[samples.length - 1]!;
  for (const [name, pick] of measures) {
    const a = pick(first);
    const z = pick(last);
    if (a === undefined || z === undefined) continue;
    const all = samples.flatMap((s) => (pick(s) === undefined ? [] : [pick(s)!]));
    rows.push({ figure: `gateway process ${name} memory at the end of the soak`, unit: 'MiB', value: z, baseline: { what: 'at its start', value: a }, spread: `min ${formatNumber(Math.min(...all))} / max ${formatNumber(Math.max(...all))} over ${all.length} samples` });
    const v = slopes.get(name);
    if (v !== undefined) rows.push({ figure: `gateway ${name} memory trend over the second half (least-squares slope)`, unit: 'MiB/min', value: v, ...(name === 'PSS' ? {} : { target: { text: `≤ +${MAX_SLOPE}`, met: flat(v) } }) });
  }

  const perWatch = (pick: (s: Sample) => number | undefined) => {
    const after = pick(w.open);
    const before = pick(w.before);
    return after === undefined || before === undefined || !w.opened ? undefined : ((after - before) * 1024) / w.opened;
  };
  const kib = (v: number | undefined) => (v === undefined ? '-' : `${v.toFixed(1)} KiB`);
  console.log(`\nopen watches through one gateway: ${w.opened} open (${w.failed} refused or failed), spread over ${tenantCount} tenants; each reading after ${SETTLE_MS / 1000} s, heap the lowest in them`);
  console.log(header);
  for (const [label, s] of [['before', w.before], [`with ${w.opened} open`, w.open], ['after closing them', w.closed]] as const) console.log(table(label, s));
  console.log(`  per open watch: ${measures.map(([name, pick]) => `${name} ${kib(perWatch(pick))}`).join(', ')}`);
  rows.push({ figure: `gateway private memory with ${w.opened} watches open`, unit: 'MiB', value: w.open.private, baseline: { what: 'before opening them', value: w.before.private }, spread: `${w.failed} failed to open; after closing them ${formatNumber(w.closed.private)} MiB`, target: { text: `all ${WATCHES} open`, met: w.opened === WATCHES } });
  for (const [name, pick] of measures) {
    const v = perWatch(pick);
    if (v !== undefined) rows.push({ figure: `gateway ${name} memory per open watch`, unit: 'KiB', value: v });
  }
  notes.push(`Scale: ${scale}; memory sampled every ${SAMPLE_S} s; ${WATCHES} watches asked for, ${Math.ceil(WATCHES / tenantCount)} per tenant (the gateway's default limit is 64 long-running requests per user, and each tenant here has one).`);
  return { title: 'steady kubectl traffic through one gateway vs direct, gateway memory, open watches', rows, notes };
}
