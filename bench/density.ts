// Density: how many tenants one machine holds (issue 13). Creates AWAKE tenants one after another,
// each until it is usable (`kubectl get ns` answers through the gateway), then registers the rest of
// REGISTERED asleep (`kplex create --asleep`: their control planes never start), and measures:
// - each awake tenant's processes (PSS, split by program) and its share of what the gateway process and
//   the host's etcd and API server grew by while the awake tenants were made;
// - what a sleeping tenant costs: the gateway's PSS and V8 heap after the sleeping tenants, against the
//   same after the awake ones (the baseline), divided by their number; the host's etcd and API server too;
// - create → usable at checkpoints (the first, middle and last tenth of the awake tenants, with the
//   tenants before them running), against the first as baseline;
// - the first request on a never-started sleeping tenant (it wakes it), against the first request on an
//   awake tenant, each on a new TLS connection; each woken one is put to sleep again;
// - CPU while idle: each awake tenant's processes, and the gateway's against its own with no tenants.
// It stops making tenants, and says so, once MemAvailable falls under BENCH_MIN_AVAILABLE_GIB (2), and
// reports what it reached. Run by name only (it takes long): `node dist/bench/run.js density
// --awake 100 --registered 1000`.
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import pLimit from 'p-limit';
import YAML from 'yaml';
import { readState } from '../src/dev/state.js';
import { contextName } from '../src/tenants/names.js';
import { tenantsRef, type Tenant } from '../src/tenants/resources.js';
import { devCluster, kubectlPath } from './dev-cluster.js';
import { median, percentile, sleep } from './measure.js';
import { countMentioning, cpuMs, gatewayHeapMiB, memAvailableGiB, memoryMiB, pidsOf, spread } from './process-stats.js';
import { FlagError, type BenchReport, type BenchRow } from './report.js';
import { firstRequest, type Kubeconfig } from './sleep.js';

const MIN_AVAILABLE_GIB = Number(process.env.BENCH_MIN_AVAILABLE_GIB ?? 2);
const SETTLE_MS = Number(process.env.BENCH_SETTLE_MS ?? 30_000);
const IDLE_MS = Number(process.env.BENCH_IDLE_MS ?? 60_000);
const WAKE_SAMPLE = Number(process.env.BENCH_WAKE_SAMPLE ?? 5);
/** Registrations at once: each is a CLI process and a few host writes; 2 cores. */
const REGISTER_CONCURRENCY = 4;
/** How long the gateway's heap is read (every HEAP_EVERY_MS) for its low: what survived the collections in it. */
const HEAP_WINDOW_MS = 10_000;
const HEAP_EVERY_MS = 500;
const USABLE_TIMEOUT_MS = 60_000;
const TARGET_AWAKE = 100;
const TARGET_SLEEPING_KIB = 1024;
const TARGET_USABLE_S = 5;
const PROCESSES = ['kube-apiserver', 'kube-controller-manager', 'coredns'] as const;
const WAKE_PATH = '/api/v1/namespaces';

const run = promisify(execFile);
const progress = (what: string): void => void process.stderr.write(`[bench density ${new Date().toISOString().slice(11, 19)}] ${what}\n`);

export interface DensityFlags {
  awake: number;
  registered: number;
}

/** `--awake N --registered M` (defaults 100 and 1000); M counts the awake tenants too. */
export function densityFlags(args: string[]): DensityFlags {
  let values: { awake?: string; registered?: string };
  try {
    ({ values } = parseArgs({ args, options: { awake: { type: 'string', default: '100' }, registered: { type: 'string', default: '1000' } }, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new FlagError(`density: ${(err as Error).message}; it takes --awake N --registered M`);
  }
  const count = (flag: string, text: string): number => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1) throw new FlagError(`--${flag} takes a whole number of at least 1; got "${text}"`);
    return n;
  };
  const awake = count('awake', values.awake!);
  const registered = count('registered', values.registered!);
  if (registered < awake) throw new FlagError(`--registered (${registered}) counts the awake tenants too: it must be at least --awake (${awake})`);
  return { awake, registered };
}

/**
 * Where create → usable is read, for `n` tenants made one after another: the first, middle and last
 * tenth of them (one tenant each below 10; fewer windows when they overlap), as 0-based [from, to).
 */
export function checkpoints(n: number): { label: string; from: number; to: number }[] {
  const w = Math.max(1, Math.round(n / 10));
  const middle = Math.floor((n - 1) / 2) - Math.floor((w - 1) / 2);
  const starts = [...new Set([0, Math.max(0, middle), n - w])];
  return starts.map((from) => ({ from, to: from + w, label: w === 1 ? `tenant ${from + 1}` : `tenants ${from + 1}–${from + w}` }));
}

/** Why making more tenants would starve the machine, or undefined while it has room. */
function lowMemory(): string | undefined {
  const available = memAvailableGiB();
  return available < MIN_AVAILABLE_GIB ? `MemAvailable ${available.toFixed(2)} GiB < ${MIN_AVAILABLE_GIB} GiB` : undefined;
}

interface GatewayMemory {
  pss: number;
  private: number;
  heap: number;
}

/** The gateway process's PSS and private memory, and its heap as the low of readings over HEAP_WINDOW_MS. */
async function gatewayMemory(pid: number, metricsUrl: string): Promise<GatewayMemory> {
  const heaps: number[] = [];
  const end = performance.now() + HEAP_WINDOW_MS;
  while (performance.now() < end) {
    const h = await gatewayHeapMiB(metricsUrl);
    if (h === undefined) throw new Error(`the gateway's ${metricsUrl} has no heap figure`);
    heaps.push(h);
    await sleep(HEAP_EVERY_MS);
  }
  const m = memoryMiB(pid);
  return { pss: m.pss, private: m.private, heap: Math.min(...heaps) };
}

type Cluster = Awaited<ReturnType<typeof devCluster>>;

/** A kubeconfig for the tenant through the gateway (`kplex connect --print`), as a file and parsed. */
async function connect(c: Cluster, name: string): Promise<{ file: string; kubeconfig: Kubeconfig }> {
  const text = await c.kplexOut(['connect', name, '--print', '--context', 'kplex-host']);
  const file = path.join(c.dir, `${name}.kubeconfig`);
  writeFileSync(file, text, { mode: 0o600 });
  return { file, kubeconfig: YAML.parse(text) as Kubeconfig };
}

const getNamespaces = (kubeconfig: string[]) => run(kubectlPath(), [...kubeconfig, 'get', 'namespaces', '-o', 'name']);

/** `kubectl get ns` through the gateway, again until it answers (the tenant's route reaching the gateway) or USABLE_TIMEOUT_MS. */
async function untilUsable(kubeconfig: string[], name: string): Promise<void> {
  const deadline = performance.now() + USABLE_TIMEOUT_MS;
  for (;;) {
    try {
      await getNamespaces(kubeconfig);
      return;
    } catch (err) {
      if (performance.now() > deadline) throw new Error(`tenant ${name}: kubectl get ns through the gateway did not answer within ${USABLE_TIMEOUT_MS / 1000} s: ${(err as { stderr?: string }).stderr ?? (err as Error).message}`);
    }
    await sleep(100);
  }
}

interface AwakeTenant {
  name: string;
  file: string;
  kubeconfig: Kubeconfig;
  createS: number;
  usableS: number;
  /** Its kube-apiserver's own start until /readyz answers (the Tenant's status): the floor under create → usable. */
  apiServerS: number;
}

/**
 * `kplex create NAME` as a user types it (it connects: the tenant's context goes into the kubeconfig),
 * then `kubectl get ns` in that context until it answers: the seconds of each. Then a kubeconfig of the
 * tenant's own (`kplex connect --print`, not timed) for the requests made later.
 */
async function createUsable(c: Cluster, name: string): Promise<AwakeTenant> {
  const begin = performance.now();
  await c.kplex(['create', name, '--context', 'kplex-host']);
  const createS = (performance.now() - begin) / 1000;
  await untilUsable(['--kubeconfig', c.env.KUBECONFIG, '--context', contextName(name)], name);
  const usableS = (performance.now() - begin) / 1000;
  const { file, kubeconfig } = await connect(c, name);
  const tenant = await c.host.find<Tenant>(tenantsRef(name));
  return { name, file, kubeconfig, createS, usableS, apiServerS: (tenant?.status?.controlPlaneReadyMs ?? NaN) / 1000 };
}

/** The tenant controller's steps for one tenant, as its gateway logged them when the tenant became Ready. */
interface ReadySteps {
  apiServerMs: number;
  steps: Record<string, number>;
}

/** Every `tenant ready` line of the dev gateway's log (JSON, one object a line), by tenant. */
function readyStepsOf(dataDir: string): Map<string, ReadySteps> {
  const found = new Map<string, ReadySteps>();
  for (const text of readFileSync(path.join(dataDir, 'logs', 'gateway.log'), 'utf8').split('\n')) {
    if (!text.includes('"tenant ready"')) continue;
    const entry = JSON.parse(text) as { tenant: string; apiServerMs: number; steps: Record<string, number> };
    found.set(entry.tenant, { apiServerMs: entry.apiServerMs, steps: entry.steps });
  }
  return found;
}

/** PSS of the host's etcd and API server together: where Tenant objects, Secrets and tenants' data are kept. */
const hostPss = (pids: number[]): number => pids.reduce((sum, pid) => sum + memoryMiB(pid).pss, 0);

/**
 * A sleeping tenant's share of the gateway, judged against the target only when it is a measurement: a
 * reading that fell while tenants were added says the process returned memory in between, not that they cost none.
 */
const sleepingRow = (figure: string, kib: number): BenchRow =>
  kib < 0
    ? { figure, unit: 'KiB', value: kib, spread: 'fell between the readings (memory returned meanwhile): not judged' }
    : { figure, unit: 'KiB', value: kib, target: { text: `≤ ${TARGET_SLEEPING_KIB} KiB`, met: kib <= TARGET_SLEEPING_KIB } };

const cpuPerMinute = (before: number, after: number, ms: number): number => ((after - before) * 60_000) / ms;
const sorted = (xs: number[]): number[] => [...xs].sort((a, b) => a - b);
const p50max = (xs: number[], digits = 1): string => `p50 ${percentile(sorted(xs), 50).toFixed(digits)} / max ${Math.max(...xs).toFixed(digits)}`;
const range = (xs: number[], what: string, digits = 1): string => `min ${Math.min(...xs).toFixed(digits)} / max ${Math.max(...xs).toFixed(digits)} over ${xs.length} ${what}`;
const line = (label: string, text: string): void => console.log(`  ${label.padEnd(52)} ${text}`);

export async function benchDensity(args: string[]): Promise<BenchReport> {
  const flags = densityFlags(args);
  const began = performance.now();
  // With a real node, as `kplex dev up` makes by default: a tenant then runs a DNS server for its pods
  // too, so each awake tenant costs what it costs users. (A real node needs the machine's e2e lock.)
  const c = await devCluster('bench-density', 1, 1);
  try {
    const state = readState(c.dataDir);
    const metricsUrl = state?.gateway?.metricsUrl;
    if (!state?.pid || !metricsUrl) throw new Error(`no kplex dev process with a gateway /metrics recorded in ${c.dataDir}`);
    const gatewayPid = state.pid;
    const hostPids = ['etcd', 'kube-apiserver'].map((name) => {
      const component = state.components.find((p) => p.name === name);
      if (!component) throw new Error(`no host ${name} recorded in ${c.dataDir}`);
      return component.pid;
    });

    progress(`baseline: the gateway with no tenants (${HEAP_WINDOW_MS / 1000} s of heap readings, then ${IDLE_MS / 1000} s of idle CPU)`);
    await sleep(SETTLE_MS);
    const gwBase = await gatewayMemory(gatewayPid, metricsUrl);
    const hostBase = hostPss(hostPids);
    const gwCpuBase0 = cpuMs(gatewayPid);
    await sleep(IDLE_MS);
    const gwCpuBase = cpuPerMinute(gwCpuBase0, cpuMs(gatewayPid), IDLE_MS);

    const notes: string[] = [];
    const stopEarly = (why: string): void => {
      const text = `stopped early: ${why}`;
      console.log(`\n${text}`);
      notes.push(text);
    };
    const awake: AwakeTenant[] = [];
    for (let i = 0; i < flags.awake; i++) {
      const low = lowMemory();
      if (low) {
        stopEarly(`${low} with ${awake.length} of ${flags.awake} awake tenants made`);
        break;
      }
      // A tenant that does not come up at this density is a finding too: the figures so far are reported.
      const t = await createUsable(c, `awake-${i}`).catch((err: Error) => stopEarly(`awake-${i} did not become usable: ${err.message}`));
      if (!t) break;
      awake.push(t);
      progress(`awake ${awake.length}/${flags.awake}: create ${t.createS.toFixed(1)} s, usable ${t.usableS.toFixed(1)} s; MemAvailable ${memAvailableGiB().toFixed(1)} GiB`);
    }
    if (!awake.length) throw new Error('no awake tenant could be made');
    const n = awake.length;

    progress(`awake tenants made; ${SETTLE_MS / 1000} s to settle, then their memory and ${IDLE_MS / 1000} s of idle CPU`);
    await sleep(SETTLE_MS);
    const pids = Object.fromEntries(PROCESSES.map((p) => [p, pidsOf(p, awake.map((t) => `/tenants/${t.name}/`))])) as Record<(typeof PROCESSES)[number], number[]>;
    const pss = Object.fromEntries(PROCESSES.map((p) => [p, pids[p].map((pid) => memoryMiB(pid).pss)])) as Record<(typeof PROCESSES)[number], number[]>;
    const tenantPss = awake.map((_, i) => PROCESSES.reduce((sum, p) => sum + pss[p][i]!, 0));
    const gwAwake = await gatewayMemory(gatewayPid, metricsUrl);
    const hostAwake = hostPss(hostPids);
    const cpuBefore = awake.map((_, i) => PROCESSES.reduce((sum, p) => sum + cpuMs(pids[p][i]!), 0));
    const gwCpu0 = cpuMs(gatewayPid);
    await sleep(IDLE_MS);
    const tenantCpu = awake.map((_, i) => cpuPerMinute(cpuBefore[i]!, PROCESSES.reduce((sum, p) => sum + cpuMs(pids[p][i]!), 0), IDLE_MS));
    const gwCpuAwake = cpuPerMinute(gwCpu0, cpuMs(gatewayPid), IDLE_MS);

    const wanted = flags.registered - flags.awake;
    progress(`registering ${wanted} tenants asleep, ${REGISTER_CONCURRENCY} at a time`);
    const sleeping: string[] = [];
    const registerS: number[] = [];
    let full: string | undefined;
    const limit = pLimit(REGISTER_CONCURRENCY);
    await Promise.all(Array.from({ length: wanted }, (_, i) => limit(async () => {
      if (full) return;
      full = lowMemory();
      if (full) return;
      const name = `asleep-${i}`;
      const begin = performance.now();
      try {
        await c.kplex(['create', name, '--asleep', '--connect=false', '--context', 'kplex-host']);
      } catch (err) {
        full = `${name} was not registered: ${(err as Error).message}`;
        return;
      }
      registerS.push((performance.now() - begin) / 1000);
      sleeping.push(name);
      if (sleeping.length % 50 === 0) progress(`asleep ${sleeping.length}/${wanted}; MemAvailable ${memAvailableGiB().toFixed(1)} GiB`);
    })));
    if (full) stopEarly(`${full}; ${sleeping.length} of ${wanted} sleeping tenants registered`);
    const started = PROCESSES.reduce((sum, p) => sum + countMentioning(p, '/tenants/asleep-'), 0);
    if (started) throw new Error(`${started} control-plane processes run for tenants registered asleep: --asleep must not start them`);

    progress(`${SETTLE_MS / 1000} s to settle, then the gateway's memory again`);
    await sleep(SETTLE_MS);
    const gwSleeping = await gatewayMemory(gatewayPid, metricsUrl);
    const hostSleeping = hostPss(hostPids);

    // Spread over the registration order, so that early and late registrations are both in it.
    const k = Math.min(WAKE_SAMPLE, sleeping.length);
    const sample = Array.from({ length: k }, (_, i) => sleeping[Math.floor((i * sleeping.length) / k)]!);
    progress(`first request on ${sample.length} never-started sleeping tenants, each put to sleep again after`);
    const wakeMs: number[] = [];
    const awakeFirstMs: number[] = [];
    for (const [i, name] of sample.entries()) {
      const low = lowMemory();
      if (low) {
        stopEarly(`${low} before waking sleeping tenant ${i + 1} of ${sample.length}`);
        break;
      }
      const { kubeconfig } = await connect(c, name);
      const t = await c.host.get<Tenant>(tenantsRef(name));
      if (!t.spec.asleep || t.status?.phase !== 'Sleeping') throw new Error(`tenant ${name} is not asleep after kplex connect (phase ${t.status?.phase ?? 'none'}): connecting must not wake it`);
      awakeFirstMs.push(await firstRequest(awake[i % n]!.kubeconfig, WAKE_PATH));
      wakeMs.push(await firstRequest(kubeconfig, WAKE_PATH));
      await c.kplex(['sleep', name, '--context', 'kplex-host']);
    }

    progress(`kubectl get ns through the gateway on each of the ${n} awake tenants`);
    const failing: string[] = [];
    for (const t of awake) await getNamespaces(['--kubeconfig', t.file]).catch((err: { stderr?: string; message: string }) => failing.push(`${t.name}: ${(err.stderr ?? err.message).trim()}`));
    for (const f of failing) console.log(`  does not answer: ${f}`);

    // What a tenant adds besides its own processes: the gateway's (its syncer, caches, routes) and
    // the host's (its data and objects in etcd, their watch caches in the API server).
    const gwPerAwake = (gwAwake.pss - gwBase.pss) / n;
    const hostPerAwake = (hostAwake - hostBase) / n;
    const allPerAwake = median(tenantPss) + gwPerAwake + hostPerAwake;
    const m = sleeping.length;
    const kib = (after: number, before: number): number => (m ? ((after - before) * 1024) / m : NaN);
    const perSleeping = { pss: kib(gwSleeping.pss, gwAwake.pss), private: kib(gwSleeping.private, gwAwake.private), heap: kib(gwSleeping.heap, gwAwake.heap), host: kib(hostSleeping, hostAwake) };
    const availableNow = memAvailableGiB();
    const wouldHold = n + Math.max(0, Math.floor(((availableNow - MIN_AVAILABLE_GIB) * 1024) / allPerAwake));
    // Idle tenants are not free of CPU: their API servers' and controller managers' loops, and their
    // syncers in the gateway. How many idle ones the machine's cores would be busy with, doing nothing else.
    const cpuPerAwake = median(tenantCpu) + (gwCpuAwake - gwCpuBase) / n;
    const cpuWouldHold = Math.floor((os.cpus().length * 60_000) / cpuPerAwake);
    const windows = checkpoints(n).map((w) => ({ ...w, usable: awake.slice(w.from, w.to).map((t) => t.usableS), create: awake.slice(w.from, w.to).map((t) => t.createS), apiServer: awake.slice(w.from, w.to).map((t) => t.apiServerS) }));
    const atScale = n >= TARGET_AWAKE;
    // Where create → usable goes: the tenant controller's steps, and the rest outside it (the CLI's start
    // and its Tenant write, the controller seeing it, create seeing Ready, its kubeconfig, kubectl's start).
    const logged = readyStepsOf(c.dataDir);
    const stepNames = [...new Set([...logged.values()].flatMap((r) => Object.keys(r.steps)))];
    const breakdown = windows.map((w) => {
      const tenants = awake.slice(w.from, w.to).map((t) => ({ t, r: logged.get(t.name) })).filter((x): x is { t: AwakeTenant; r: ReadySteps } => x.r !== undefined);
      const controllerMs = tenants.map(({ r }) => Object.values(r.steps).reduce((a, b) => a + b, 0));
      return {
        label: w.label,
        missing: w.to - w.from - tenants.length,
        step: Object.fromEntries(stepNames.map((k) => [k, median(tenants.map(({ r }) => r.steps[k] ?? 0))])),
        apiServerMs: median(tenants.map(({ r }) => r.apiServerMs)),
        controllerMs: median(controllerMs),
        outsideMs: median(tenants.map(({ t }, i) => t.usableS * 1000 - controllerMs[i]!)),
      };
    });

    console.log(`\n${n} awake tenants (of ${flags.awake} asked), ${m} registered asleep (of ${wanted}); ${((performance.now() - began) / 60_000).toFixed(1)} min in all`);
    console.log(`memory per awake tenant in MiB (PSS), min / median / max over ${n} tenants, ${SETTLE_MS / 1000} s after the last was usable`);
    for (const p of PROCESSES) line(p, spread(pss[p]));
    line('its processes in all', spread(tenantPss));
    line('its share of the gateway process (growth / tenants)', `${gwPerAwake.toFixed(1)}  (gateway ${gwBase.pss.toFixed(1)} → ${gwAwake.pss.toFixed(1)})`);
    line('its share of the host etcd + API server', `${hostPerAwake.toFixed(1)}  (host ${hostBase.toFixed(1)} → ${hostAwake.toFixed(1)})`);
    line('in all (median processes + shares)', allPerAwake.toFixed(1));
    line(`awake tenants MemAvailable would hold (> ${MIN_AVAILABLE_GIB} GiB left)`, `${wouldHold} (estimate: ${availableNow.toFixed(1)} GiB available now)`);
    line(`awake idle tenants that would keep ${os.cpus().length} cores busy`, `${cpuWouldHold} (estimate: ${cpuPerAwake.toFixed(0)} ms/min each, its processes and its gateway share)`);
    console.log(`memory per sleeping tenant in KiB, the gateway after ${m} registered against after the awake ones`);
    line('gateway PSS', `${perSleeping.pss.toFixed(0)}  (${gwAwake.pss.toFixed(1)} → ${gwSleeping.pss.toFixed(1)} MiB)`);
    line('gateway private memory', `${perSleeping.private.toFixed(0)}  (${gwAwake.private.toFixed(1)} → ${gwSleeping.private.toFixed(1)} MiB)`);
    line('gateway V8 heap used (low over 10 s)', `${perSleeping.heap.toFixed(0)}  (${gwAwake.heap.toFixed(1)} → ${gwSleeping.heap.toFixed(1)} MiB; no tenants ${gwBase.heap.toFixed(1)})`);
    line('host etcd + API server PSS', `${perSleeping.host.toFixed(0)}  (${hostAwake.toFixed(1)} → ${hostSleeping.toFixed(1)} MiB)`);
    console.log('create → usable in s (`kplex create`, which connects, then `kubectl get ns` until it answers), the tenants before running');
    for (const w of windows) line(w.label, `${p50max(w.usable)}   (of which kplex create ${p50max(w.create)}; the API server's own start ${p50max(w.apiServer)})`);
    line('`kplex create --asleep`', registerS.length ? p50max(registerS) : 'none registered');
    console.log("where create → usable goes, ms, medians: the tenant controller's steps (its `tenant ready` log line) and the rest");
    for (const b of breakdown) {
      const steps = stepNames.map((k) => `${k} ${b.step[k]!.toFixed(0)}${k === 'controlPlane' ? ` (API server ${b.apiServerMs.toFixed(0)})` : ''}`).join(', ');
      line(b.label, `${steps}; controller ${b.controllerMs.toFixed(0)}; outside it ${b.outsideMs.toFixed(0)}${b.missing ? ` (${b.missing} tenants not in the log)` : ''}`);
    }
    console.log(`first request through the gateway (GET ${WAKE_PATH}, new TLS connection), ms`);
    line('an awake tenant', awakeFirstMs.length ? p50max(awakeFirstMs, 0) : 'none');
    line('a never-started sleeping tenant (wakes it)', wakeMs.length ? p50max(wakeMs, 0) : 'none');
    console.log(`CPU while idle for ${IDLE_MS / 1000} s, ms per minute`);
    line('an awake tenant\'s processes, min / median / max', spread(tenantCpu, 0));
    line('the gateway process', `${gwCpuAwake.toFixed(0)}  (with no tenants ${gwCpuBase.toFixed(0)})`);
    line('awake tenants answering kubectl get ns at the end', `${n - failing.length} of ${n}`);

    const first = windows[0]!;
    const last = windows[windows.length - 1]!;
    const rows: BenchRow[] = [
      { figure: 'awake tenants held, each usable', unit: 'tenants', value: n, ...(atScale || n < flags.awake ? { target: { text: `≥ ${TARGET_AWAKE}`, met: n >= TARGET_AWAKE } } : {}) },
      { figure: 'sleeping tenants registered beside them', unit: 'tenants', value: m },
      { figure: 'awake tenants answering `kubectl get ns` at the end', unit: 'tenants', value: n - failing.length, target: { text: `all ${n}`, met: failing.length === 0 } },
      ...PROCESSES.map((p): BenchRow => ({ figure: `${p} PSS per awake tenant, median`, unit: 'MiB', value: median(pss[p]), spread: range(pss[p], 'tenants') })),
      { figure: "an awake tenant's processes PSS, median", unit: 'MiB', value: median(tenantPss), spread: range(tenantPss, 'tenants') },
      { figure: 'gateway PSS growth per awake tenant', unit: 'MiB', value: gwPerAwake, baseline: { what: 'gateway PSS with no tenants', value: gwBase.pss } },
      { figure: 'host etcd + API server PSS growth per awake tenant', unit: 'MiB', value: hostPerAwake, baseline: { what: 'with no tenants', value: hostBase } },
      { figure: 'memory per awake tenant in all (processes + gateway and host shares)', unit: 'MiB', value: allPerAwake },
      { figure: `awake tenants this machine would hold with ${MIN_AVAILABLE_GIB} GiB left, estimated`, unit: 'tenants', value: wouldHold, target: { text: `≥ ${TARGET_AWAKE}`, met: wouldHold >= TARGET_AWAKE } },
      { figure: `awake idle tenants that would keep all ${os.cpus().length} cores busy, estimated`, unit: 'tenants', value: cpuWouldHold, target: { text: `≥ ${TARGET_AWAKE}`, met: cpuWouldHold >= TARGET_AWAKE } },
      { figure: `gateway PSS after the ${n} awake tenants`, unit: 'MiB', value: gwAwake.pss, baseline: { what: 'no tenants', value: gwBase.pss } },
      { figure: `gateway PSS after ${m} sleeping tenants more`, unit: 'MiB', value: gwSleeping.pss, baseline: { what: 'after the awake ones', value: gwAwake.pss } },
      ...(m
        ? [
            sleepingRow('gateway PSS per sleeping tenant', perSleeping.pss),
            sleepingRow('gateway V8 heap used per sleeping tenant (lows over 10 s)', perSleeping.heap),
            { figure: 'host etcd + API server PSS per sleeping tenant', unit: 'KiB', value: perSleeping.host },
            { figure: '`kplex create --asleep`, p50', unit: 's', value: percentile(sorted(registerS), 50), baseline: { what: '`kplex create` awake, p50 of all', value: percentile(sorted(awake.map((t) => t.createS)), 50) }, spread: range(registerS, 'tenants') },
          ]
        : []),
      ...windows.map((w): BenchRow => ({
        figure: `create → usable at ${w.label}, p50`,
        unit: 's',
        value: percentile(sorted(w.usable), 50),
        ...(w === first ? {} : { baseline: { what: first.label, value: percentile(sorted(first.usable), 50) } }),
        spread: `max ${Math.max(...w.usable).toFixed(1)}`,
        ...(w === last && atScale ? { target: { text: `≤ ${TARGET_USABLE_S} s at ${TARGET_AWAKE} tenants`, met: percentile(sorted(w.usable), 50) <= TARGET_USABLE_S } } : {}),
      })),
      // The limit measured in the same run: a create cannot be usable before its API server is ready.
      ...windows.map((w): BenchRow => ({
        figure: `create → usable at ${w.label} against its API server's own start, p50`,
        unit: 's',
        value: percentile(sorted(w.usable), 50),
        baseline: { what: "kube-apiserver start → ready, p50 (the floor)", value: percentile(sorted(w.apiServer), 50) },
        spread: `API server max ${Math.max(...w.apiServer).toFixed(1)}`,
      })),
      // The rest of a create: what `kplex create`, `kubectl` and the Tenant's way to the controller cost.
      ...breakdown.map((b): BenchRow => ({
        figure: `create → usable at ${b.label} outside the tenant controller's steps, median`,
        unit: 'ms',
        value: b.outsideMs,
        baseline: { what: "the controller's steps, median", value: b.controllerMs },
      })),
      ...(wakeMs.length
        ? [{ figure: 'first request on a never-started sleeping tenant, p50', unit: 'ms', value: percentile(sorted(wakeMs), 50), baseline: { what: 'on an awake tenant', value: percentile(sorted(awakeFirstMs), 50) }, spread: `max ${Math.max(...wakeMs).toFixed(0)} (awake ${Math.max(...awakeFirstMs).toFixed(0)}) over ${wakeMs.length}` }]
        : []),
      { figure: "an awake tenant's processes' CPU while idle, median", unit: 'ms/min', value: median(tenantCpu), spread: range(tenantCpu, 'tenants', 0) },
      { figure: `gateway CPU while idle with ${n} awake tenants`, unit: 'ms/min', value: gwCpuAwake, baseline: { what: 'no tenants', value: gwCpuBase } },
    ];
    notes.unshift(
      `--awake ${flags.awake} --registered ${flags.registered}: ${n} awake tenants made one after another, then ${m} registered asleep, ${REGISTER_CONCURRENCY} at a time; memory ${SETTLE_MS / 1000} s after each phase, CPU over ${IDLE_MS / 1000} s idle.`,
      'PSS splits the pages of a binary among the processes running it, so a tenant\'s share falls as more run; "would hold" divides the MemAvailable left above the floor by the memory per awake tenant in all, and "keep the cores busy" the machine\'s CPU time by what an idle tenant uses: estimates, not measurements.',
      ...(atScale ? [] : [`The targets at ${TARGET_AWAKE} awake tenants (held, create → usable ≤ ${TARGET_USABLE_S} s) are not judged at this scale.`]),
    );
    return { title: 'tenants on one machine: memory per awake and per sleeping tenant, create → usable, first request on a sleeping tenant', rows, notes };
  } finally {
    await c.down();
  }
}
