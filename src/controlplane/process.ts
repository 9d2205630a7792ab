import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync, readdirSync, existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ProcessSpec {
  /** The component's name as users know it: "etcd", "kube-apiserver", … */
  name: string;
  command: string;
  args: string[];
  logFile: string;
  env?: Record<string, string>;
  /**
   * Killed by the kernel when this process dies, however it dies (Linux's parent-death signal, set by
   * util-linux's setpriv before it execs the command): a tenant's control plane belongs to the gateway
   * that started it, and a gateway killed by SIGKILL or the OOM killer must not leave it running.
   */
  diesWithParent?: boolean;
}

/** Where Debian (and every util-linux) has setpriv; without it a child outlives a killed parent. */
const SETPRIV = '/usr/bin/setpriv';

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Raised when a component cannot start or dies; the message names it and quotes its log. */
export class ComponentError extends Error {
  constructor(readonly component: string, message: string) {
    super(message);
    this.name = 'ComponentError';
  }
}

export function lastLines(file: string, n = 8): string {
  if (!existsSync(file)) return '';
  const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
  return lines.slice(-n).join('\n');
}

/** State and process group of a process from /proc/PID/stat (after its name, which may hold spaces). */
function procStat(pid: number): { state: string; pgrp: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: state!, pgrp: Number(pgrp) };
  } catch {
    return undefined;
  }
}

/**
 * True while a process (or process group, for a negative pid) exists and is not a zombie: a killed
 * supervisor's children are reparented to an init that may reap them late, and a zombie has ended.
 */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (!existsSync('/proc/self/stat')) return true;
  if (pid > 0) return procStat(pid)?.state !== 'Z';
  return readdirSync('/proc').some((d) => {
    if (!/^\d+$/.test(d)) return false;
    const s = procStat(Number(d));
    return s?.pgrp === -pid && s.state !== 'Z';
  });
}

/** Ends a whole process group: SIGTERM, then SIGKILL after `graceMs`. Resolves once the group is gone. */
export async function killGroup(pgid: number, graceMs = 10_000): Promise<void> {
  try {
    process.kill(-pgid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (alive(-pgid) && Date.now() < deadline) await sleep(50);
  if (alive(-pgid)) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      return;
    }
    while (alive(-pgid)) await sleep(20);
  }
}

/**
 * One child process and everything it forks: it runs in its own process group, so stopping it never
 * leaves grandchildren behind. The owner must call stop().
 */
export class ManagedProcess {
  readonly exited: Promise<Exit>;
  private readonly child: ChildProcess;
  private stopping = false;

  private constructor(readonly spec: ProcessSpec) {
    const fd = openSync(spec.logFile, 'a');
    try {
      const [command, args] = spec.diesWithParent && existsSync(SETPRIV) ? [SETPRIV, ['--pdeathsig', 'KILL', '--', spec.command, ...spec.args]] : [spec.command, spec.args];
      this.child = spawn(command, args, {
        detached: true,
        stdio: ['ignore', fd, fd],
        env: { ...process.env, ...spec.env },
      });
    } finally {
      closeSync(fd);
    }
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => resolve({ code, signal }));
      this.child.once('error', () => resolve({ code: -1, signal: null }));
    });
  }

  static start(spec: ProcessSpec): ManagedProcess {
    if (!existsSync(spec.command)) throw new ComponentError(spec.name, `${spec.name}: binary not found at ${spec.command}`);
    return new ManagedProcess(spec);
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get name(): string {
    return this.spec.name;
  }

  /** The error to report when the process ended although nobody stopped it. */
  crashError(exit: Exit): ComponentError {
    const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
    const tail = lastLines(this.spec.logFile);
    return new ComponentError(this.name, `${this.name} ${how}; last lines of ${this.spec.logFile}:\n${tail}`);
  }

  /**
   * Waits until `ready()` is true, failing early if the process exits first or `timeoutMs` passes.
   */
  async waitReady(ready: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
    let exit: Exit | undefined;
    void this.exited.then((e) => (exit = e));
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (exit) throw this.crashError(exit);
      if (await ready().catch(() => false)) return;
      if (Date.now() > deadline) {
        throw new ComponentError(this.name, `${this.name} was not ready after ${timeoutMs / 1000}s; last lines of ${this.spec.logFile}:\n${lastLines(this.spec.logFile)}`);
      }
      await sleep(100);
    }
  }

  /** Calls `onCrash` if the process ends before stop() is called. */
  onCrash(onCrash: (err: ComponentError) => void): void {
    void this.exited.then((e) => {
      if (!this.stopping) onCrash(this.crashError(e));
    });
  }

  async stop(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    if (this.child.exitCode !== null || this.child.signalCode !== null || this.pid < 0) {
      // The leader is gone; its group may still hold children.
      if (this.pid > 0) await killGroup(this.pid, graceMs);
      return;
    }
    await killGroup(this.pid, graceMs);
    await this.exited;
  }
}
