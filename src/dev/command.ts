import { spawn } from 'node:child_process';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a short-lived system command (ip, iptables, ctr, crictl …) to completion. It is killed when it
 * outlives `timeoutMs`, so a hung tool never holds up `dev up` or `dev down`.
 */
export function command(cmd: string, args: string[], timeoutMs = 30_000, input?: string): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdin.on('error', () => {}); // a tool that exits without reading its input
    child.stdin.end(input ?? '');
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve({ code: -1, stdout, stderr: err.message });
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr: signal ? `${stderr}killed by ${signal} after ${timeoutMs} ms` : stderr });
    });
  });
}

/** Like command, but a non-zero exit is an error naming the command and quoting its stderr. */
export async function mustRun(cmd: string, args: string[], timeoutMs?: number): Promise<string> {
  const r = await command(cmd, args, timeoutMs);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}
