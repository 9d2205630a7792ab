// Removes everything a real node leaves on the machine outside its processes: containers and their shims,
// pod cgroups, mounts, network namespaces, links, iptables chains and ipsets, sockets and sysctls. It works from the
// data folder alone, whether the node stopped in order or everything was killed, so both `dev down` and
// the next `dev up` after a crash call it.
import { existsSync, readdirSync, readFileSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { command } from './command.js';
import { BRIDGE, NODE_LINK, nodePaths, type NodePaths } from './node-config.js';

const pids = (): number[] =>
  readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number);

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

function kill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** Processes of this node's containerd, kubelet, kube-proxy, CoreDNS and shims: they name its folder. */
function nodeProcesses(p: NodePaths): number[] {
  return pids().filter((pid) => pid !== process.pid && cmdline(pid).includes(`${p.dir}/`));
}

/** Every cgroup folder kubelet made (cgroup v1 hierarchies, or cgroup v2), deepest first. */
function podCgroups(): string[] {
  const roots = ['/sys/fs/cgroup/kubepods', ...(existsSync('/sys/fs/cgroup') ? readdirSync('/sys/fs/cgroup').map((h) => `/sys/fs/cgroup/${h}/kubepods`) : [])];
  const out: string[] = [];
  const walk = (dir: string): void => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) if (e.isDirectory()) walk(path.join(dir, e.name));
    out.push(dir);
  };
  for (const r of roots) if (existsSync(r)) walk(r);
  return out;
}

function cgroupProcs(dir: string): number[] {
  try {
    return readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Kills every process in the pod cgroups (containers outlive a killed shim) and removes the cgroups. */
async function removePodCgroups(): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const left = podCgroups().flatMap(cgroupProcs);
    if (left.length === 0 || Date.now() > deadline) break;
    left.forEach(kill);
    await sleep(100);
  }
  for (const dir of podCgroups()) {
    try {
      rmdirSync(dir);
    } catch {
      // still busy: reported by the next sweep's check
    }
  }
}

/** Mount points from /proc/self/mountinfo (field 5, with the kernel's octal escapes undone). */
function mountPoints(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => (l.split(' ')[4] ?? '').replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
}

async function unmount(mountPoint: string): Promise<void> {
  if ((await command('umount', [mountPoint], 10_000)).code !== 0) await command('umount', ['-l', mountPoint], 10_000);
}

async function removeMounts(p: NodePaths): Promise<void> {
  const ours = mountPoints()
    .filter((m) => m === p.dir || m.startsWith(`${p.dir}/`))
    .sort((a, b) => b.length - a.length);
  // Pod network namespaces are among them (containerd mounts them under its state folder).
  for (const m of ours) await unmount(m);
}

async function removeLinks(): Promise<void> {
  const ports = await command('ip', ['-o', 'link', 'show', 'master', BRIDGE], 5_000);
  for (const m of ports.stdout.matchAll(/^\d+: ([^@:]+)/gm)) await command('ip', ['link', 'delete', m[1]!], 5_000);
  await command('ip', ['link', 'delete', BRIDGE], 5_000);
  // Deleting one end of the node's veth pair deletes the other.
  await command('ip', ['link', 'delete', NODE_LINK], 5_000);
}

const OUR_CHAIN = /^(KUBE-|CNI-)/;

/**
 * Removes the iptables chains of kubelet (KUBE-FIREWALL, KUBE-KUBELET-CANARY, KUBE-IPTABLES-HINT …),
 * kube-proxy (what `kube-proxy --cleanup` left) and the CNI portmap plugin, and the rules that jump to them.
 */
async function removeChains(tool: 'iptables' | 'ip6tables'): Promise<void> {
  for (const table of ['filter', 'nat', 'mangle', 'raw']) {
    const saved = await command(`${tool}-save`, ['-t', table], 10_000);
    if (saved.code !== 0) continue;
    const chains = [...saved.stdout.matchAll(/^:(\S+)/gm)].map((m) => m[1]!).filter((c) => OUR_CHAIN.test(c));
    if (chains.length === 0) continue;
    const jumps = saved.stdout
      .split('\n')
      .filter((l) => l.startsWith('-A ') && !OUR_CHAIN.test(l.split(' ')[1]!) && / -[jg] (KUBE-|CNI-)/.test(l))
      .map((l) => `-D ${l.slice(3)}`);
    const script = [`*${table}`, ...jumps, ...chains.map((c) => `-F ${c}`), ...chains.map((c) => `-X ${c}`), 'COMMIT', ''].join('\n');
    await command(`${tool}-restore`, ['--noflush'], 10_000, script);
  }
}

/** The NetworkPolicy agent's ipsets (kube-router's KUBE-SRC-/KUBE-DST-, IPv6 ones with its `inet6:` prefix). */
const OUR_IPSET = /^(inet6:)?KUBE-(SRC|DST)-/;

/** Removes the agent's ipsets; only possible once no iptables rule refers to them (after removeChains). */
async function removeIpsets(): Promise<void> {
  const sets = await command('ipset', ['list', '-n'], 10_000);
  if (sets.code !== 0) return;
  for (const name of sets.stdout.split('\n').filter((n) => OUR_IPSET.test(n))) await command('ipset', ['destroy', name], 5_000);
}

/** Shim sockets containerd 1.6 keeps in /run/containerd/s whatever its state folder; killed shims leave them. */
function removeStaleShimSockets(): void {
  const dir = '/run/containerd/s';
  if (!existsSync(dir)) return;
  const listening = new Set(
    readFileSync('/proc/net/unix', 'utf8')
      .split('\n')
      .map((l) => l.trim().split(/\s+/)[7])
      .filter((s): s is string => !!s),
  );
  for (const f of readdirSync(dir)) if (!listening.has(path.join(dir, f))) rmSync(path.join(dir, f), { force: true });
  for (const d of [dir, '/run/containerd']) {
    try {
      rmdirSync(d);
    } catch {
      // not empty: another containerd uses it
    }
  }
}

/** kubelet creates its device-plugin socket under /var/lib/kubelet whatever --root-dir says. */
function removeKubeletDefaults(): void {
  rmSync('/var/lib/kubelet/device-plugins/kubelet.sock', { force: true });
  for (const d of ['/var/lib/kubelet/device-plugins', '/var/lib/kubelet/plugins_registry', '/var/lib/kubelet/plugins', '/var/lib/kubelet']) {
    try {
      rmdirSync(d);
    } catch {
      // not empty or absent: not only ours
    }
  }
}

/** The sysctls the node turns on, and their values before it did (restored by the sweep). */
const SYSCTLS = ['net/ipv4/ip_forward', 'net/bridge/bridge-nf-call-iptables'];

export function setNodeSysctls(p: NodePaths): void {
  const before: Record<string, string> = existsSync(p.sysctls) ? JSON.parse(readFileSync(p.sysctls, 'utf8')) : {};
  for (const s of SYSCTLS) {
    const file = `/proc/sys/${s}`;
    if (!existsSync(file)) continue;
    before[s] ??= readFileSync(file, 'utf8').trim();
    writeFileSync(file, '1');
  }
  writeFileSync(p.sysctls, JSON.stringify(before));
}

function restoreSysctls(p: NodePaths): void {
  if (!existsSync(p.sysctls)) return;
  const before = JSON.parse(readFileSync(p.sysctls, 'utf8')) as Record<string, string>;
  for (const [s, v] of Object.entries(before)) {
    try {
      writeFileSync(`/proc/sys/${s}`, v);
    } catch {
      // the machine no longer has it
    }
  }
  rmSync(p.sysctls, { force: true });
}

/**
 * Removes what the real node of `dataDir` left behind. Each step is bounded by a timeout; the node's
 * images and containerd metadata stay in the data folder.
 */
export async function sweepRealNode(dataDir: string, kubeProxy?: string): Promise<void> {
  const p = nodePaths(dataDir);
  nodeProcesses(p).forEach(kill);
  await removePodCgroups();
  await removeMounts(p);
  await removeLinks();
  if (kubeProxy && existsSync(kubeProxy)) await command(kubeProxy, ['--cleanup'], 30_000);
  await removeChains('iptables');
  await removeChains('ip6tables');
  await removeIpsets();
  removeStaleShimSockets();
  removeKubeletDefaults();
  // Every pod is gone, so are their addresses.
  rmSync(p.cniIpamDir, { recursive: true, force: true });
  restoreSysctls(p);
}
