// What each lever of issue 13 saves on an idle tenant: for each variant, TENANTS tenant control planes
// (kube-apiserver and kube-controller-manager, the local provider's own start path) beside one host
// cluster, then their memory SETTLE_MS after the last was ready and their CPU over the IDLE_MS after
// that. Variants run one after another in one process, so they share the machine's conditions; the
// first, "before", is what tenants started with before issue 13, "now" what they start with by default.
// BENCH_VARIANTS=0,7 runs only those (by number).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findBinaries, type Program } from '../src/controlplane/binaries.js';
import { TENANT_ARGS, TENANT_CONTROLLERS } from '../src/controlplane/components.js';
import { LocalProvider } from '../src/controlplane/local.js';
import { startHostCluster } from '../src/dev/host-cluster.js';
import { DEFAULT_SPEC, type ControlPlaneSpec } from '../src/controlplane/provider.js';
import { memoryLimitsOf, parseValues } from '../src/tenants/values.js';
import { median, sleep } from './measure.js';
import { cpuMs, memoryMiB, pidOf, spread } from './process-stats.js';
import type { BenchReport, BenchRow } from './report.js';

const TENANTS = Number(process.env.BENCH_TENANTS ?? 3);
const SETTLE_MS = Number(process.env.BENCH_SETTLE_MS ?? 30_000);
const IDLE_MS = Number(process.env.BENCH_IDLE_MS ?? 30_000);

interface Variant {
  name: string;
  tenantArgs: Partial<Record<Program, string[]>>;
  controllers: string;
  spec?: Partial<ControlPlaneSpec>;
  env?: Partial<Record<Program, Record<string, string>>>;
}

/** The controllers tenants ran before issue 13. */
const BEFORE_CONTROLLERS = '*,-persistentvolume-binder,-nodelifecycle,-nodeipam,-attachdetach,-persistentvolume-expander,-ttl,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller';
const before: Variant = { name: 'before', tenantArgs: {}, controllers: BEFORE_CONTROLLERS };
const api = (...args: string[]): Variant['tenantArgs'] => ({ 'kube-apiserver': args });
const MiB = 1024 * 1024;

const kcmTrimmed = `${BEFORE_CONTROLLERS},-certificatesigningrequest-approving-controller,-certificatesigningrequest-cleaner-controller,-certificatesigningrequest-signing-controller,-resourceclaim-controller,-device-taint-eviction-controller,-taint-eviction-controller,-storage-version-migrator-controller,-kube-apiserver-serving-clustertrustbundle-publisher-controller,-podcertificaterequest-cleaner-controller`;
const groupsOff = '--runtime-config=resource.k8s.io/v1=false,certificates.k8s.io/v1=false';
const apfOff = ['--enable-priority-and-fairness=false', '--runtime-config=flowcontrol.apiserver.k8s.io/v1=false'];
/** What a tenant created with default values starts with. */
const now: Variant = { name: 'now (defaults)', tenantArgs: TENANT_ARGS, controllers: TENANT_CONTROLLERS, spec: { memoryLimits: memoryLimitsOf(parseValues({})) } };
const nowWith = (name: string, apiServerLimit: number, args: string[] = []): Variant => ({
  ...now,
  name,
  tenantArgs: { ...TENANT_ARGS, 'kube-apiserver': [...(TENANT_ARGS['kube-apiserver'] ?? []), ...args] },
  spec: { memoryLimits: { apiServer: apiServerLimit } },
});

const VARIANTS: Variant[] = [
  before,
  { ...before, name: 'no priority and fairness, no flowcontrol API', tenantArgs: api(...apfOff) },
  { ...before, name: 'no resource.k8s.io, certificates.k8s.io', tenantArgs: api(groupsOff), controllers: kcmTrimmed },
  { ...before, name: 'controller manager: no CSR, DRA, taint, migrator controllers', controllers: kcmTrimmed },
  { ...before, name: 'no watch cache', tenantArgs: api('--watch-cache=false') },
  { ...before, name: 'GOGC=50 both', env: { 'kube-apiserver': { GOGC: '50' }, 'kube-controller-manager': { GOGC: '50' } } },
  { ...before, name: 'GOMEMLIMIT 128/40 MiB', spec: { memoryLimits: { apiServer: 128 * MiB, controllerManager: 40 * MiB } } },
  now,
  nowWith('now, API server GOMEMLIMIT 112 MiB', 112 * MiB),
  nowWith('now, API server GOMEMLIMIT 96 MiB', 96 * MiB),
  nowWith('now, no watch cache, API server GOMEMLIMIT 96 MiB', 96 * MiB, ['--watch-cache=false']),
];

const wanted = process.env.BENCH_VARIANTS?.split(',');

export async function benchTenantLevers(): Promise<BenchReport> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kplex-bench-levers-'));
  const binaries = findBinaries();
  const host = await startHostCluster({ dataDir: path.join(dir, 'host'), simulatedNodes: 0, binaries, unsafeNoFsync: true });
  /** Each variant's PSS and idle CPU per tenant (both processes); the first variant run ("before", unless left out) is every other's baseline. */
  const measured: { variant: Variant; pss: number[]; cpu: number[] }[] = [];
  try {
    console.log(`\nper tenant, min / median / max over ${TENANTS} tenants: memory in MiB ${SETTLE_MS / 1000} s after the last was ready, CPU in ms per minute over the next ${IDLE_MS / 1000} s`);
    for (const [i, v] of VARIANTS.entries()) {
      if (wanted && !wanted.includes(String(i))) continue;
      const baseDir = path.join(dir, `variant-${i}`);
      const provider = new LocalProvider({ etcdServers: host.etcdServers, baseDir, binaries, tenantArgs: v.tenantArgs, controllers: v.controllers, componentEnv: v.env });
      try {
        const ready: number[] = [];
        for (let t = 0; t < TENANTS; t++) ready.push((await provider.ensure(`t${t}`, { ...DEFAULT_SPEC, ...v.spec })).readyMs);
        await sleep(SETTLE_MS);
        const pids = (program: string) => Array.from({ length: TENANTS }, (_, t) => pidOf(program, `${baseDir}/t${t}/`));
        const apiservers = pids('kube-apiserver');
        const kcms = pids('kube-controller-manager');
        const cpuBefore = [...apiservers, ...kcms].map(cpuMs);
        const mem = [...apiservers, ...kcms].map(memoryMiB);
        await sleep(IDLE_MS);
        const cpu = [...apiservers, ...kcms].map((p, j) => ((cpuMs(p) - cpuBefore[j]!) * 60_000) / IDLE_MS);
        const a = (xs: number[]) => xs.slice(0, TENANTS);
        const k = (xs: number[]) => xs.slice(TENANTS);
        const all = (xs: number[]) => a(xs).map((x, t) => x + k(xs)[t]!);
        const pss = mem.map((m) => m.pss);
        const rss = mem.map((m) => m.rss);
        console.log(`${i}. ${v.name}: API server ready in ${spread(ready.map((ms) => ms / 1000))} s`);
        console.log(`   kube-apiserver           PSS ${spread(a(pss))}  RSS ${spread(a(rss))}  CPU ${spread(a(cpu), 0)}`);
        console.log(`   kube-controller-manager  PSS ${spread(k(pss))}  RSS ${spread(k(rss))}  CPU ${spread(k(cpu), 0)}`);
        console.log(`   both                     PSS ${spread(all(pss))}  RSS ${spread(all(rss))}  CPU ${spread(all(cpu), 0)}   median PSS ${median(all(pss)).toFixed(1)}`);
        measured.push({ variant: v, pss: all(pss), cpu: all(cpu) });
      } finally {
        await provider.close();
      }
    }
  } finally {
    await host.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const base = measured[0];
  const range = (xs: number[]): string => `min ${Math.min(...xs).toFixed(1)} / max ${Math.max(...xs).toFixed(1)} over ${TENANTS} tenants`;
  const rows = measured.flatMap(({ variant, pss, cpu }): BenchRow[] => {
    const first = variant === base?.variant;
    return [
      {
        figure: `${variant.name}: PSS of kube-apiserver and controller manager, median`,
        unit: 'MiB',
        value: median(pss),
        ...(first ? {} : { baseline: { what: base!.variant.name, value: median(base!.pss) } }),
        spread: range(pss),
        ...(variant === now ? { target: { text: '≤ 150 MiB', met: median(pss) <= 150 } } : {}),
      },
      { figure: `${variant.name}: CPU while idle, median`, unit: 'ms/min', value: median(cpu), ...(first ? {} : { baseline: { what: base!.variant.name, value: median(base!.cpu) } }), spread: range(cpu) },
    ];
  });
  return { title: "what each lever saves on an idle tenant's control plane", rows, notes: [`${TENANTS} tenants per variant; memory ${SETTLE_MS / 1000} s after the last was ready, CPU over the next ${IDLE_MS / 1000} s.`] };
}
