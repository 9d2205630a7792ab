import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findBinaries, PROGRAMS } from '../../src/controlplane/binaries.js';
import { isolatedEnv, kplex, processesMentioning, tmpDir } from './helpers.js';

/** Each failure is one clear line naming the cause, exit code non-zero, and nothing left running. */
describe('kplex dev up: bad input', () => {
  const dir = tmpDir('dev-bad');
  const env = isolatedEnv(dir);
  const up = (dataDir: string, extra: string[] = [], more: Record<string, string> = {}) =>
    kplex(['dev', 'up', '--nodes', '0', '--simulated-nodes', '1', '--no-gateway', '--data-dir', dataDir, ...extra], { ...env, ...more }, 120_000);

  it('names a missing binary', async () => {
    const bin = path.join(dir, 'bin-without-etcd');
    mkdirSync(bin);
    const real = findBinaries();
    for (const p of PROGRAMS) if (p !== 'etcd') symlinkSync(real.paths[p], path.join(bin, p));
    symlinkSync(path.join(path.dirname(real.paths.kwok), 'kwok-stages'), path.join(bin, 'kwok-stages'));
    const dataDir = path.join(dir, 'missing');
    const r = await up(dataDir, [], { KPLEX_BIN_DIR: bin, KPLEX_CACHE_DIR: path.join(dir, 'no-cache'), PATH: '/usr/bin:/bin' });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/^kplex: etcd not found .*npm run binaries/m);
    expect(processesMentioning(dataDir)).toEqual([]);
  });

  it('refuses a data dir that holds something else', async () => {
    const dataDir = path.join(dir, 'occupied');
    mkdirSync(dataDir);
    writeFileSync(path.join(dataDir, 'precious.txt'), 'not yours');
    const r = await up(dataDir);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/^kplex: data dir .*occupied is not empty and was not made by kplex/m);
  });

  it('refuses a --switch-context that is not true or false', async () => {
    const dataDir = path.join(dir, 'switch');
    const r = await up(dataDir, ['--switch-context=no']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/^kplex: --switch-context must be true or false; got "no"/m);
    expect(processesMentioning(dataDir)).toEqual([]);
  });

  describe('with a port taken', () => {
    const server = net.createServer();
    afterAll(() => new Promise<void>((r) => server.close(() => r())));

    it('names the port and leaves nothing running', async () => {
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const port = (server.address() as net.AddressInfo).port;
      const dataDir = path.join(dir, 'port');
      const r = await up(dataDir, ['--api-port', String(port)]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(`port ${port} is in use`);
      expect(processesMentioning(dataDir)).toEqual([]);
    });
  });

  it('reports a component that exits at start with its log, and stops the others', async () => {
    const dataDir = path.join(dir, 'crash');
    const r = await up(dataDir, ['--component-arg', 'kube-apiserver=--no-such-flag']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/^kplex: kube-apiserver exited with code \d+/m);
    expect(r.stderr).toContain('unknown flag: --no-such-flag');
    expect(processesMentioning(dataDir)).toEqual([]);
  });
});
