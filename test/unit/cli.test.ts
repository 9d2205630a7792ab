import { afterEach, describe, expect, it, vi } from 'vitest';
import { main, runsServer } from '../../src/cli/main.js';
import { ROLES } from '../../src/tenants/roles.js';

async function help(...args: string[]): Promise<string> {
  let out = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  expect(await main(['node', 'kplex', ...args, '--help'])).toBe(0);
  return out;
}

describe('kplex CLI definitions', () => {
  afterEach(() => vi.restoreAllMocks());

  it("names every role the gateway knows in connect's and token's help", async () => {
    for (const command of ['connect', 'token']) expect(await help(command)).toContain(`the token's role: ${ROLES.join(', ')}`);
  });

  it('lists the gateway command, and shows its own options when its help is asked for', async () => {
    expect(await help()).toMatch(/^ {2}gateway +run the TLS gateway/m);
    expect(await help('gateway')).toContain('--advertise-url <url>');
  });

  it('refuses a metrics adapter address that is not an IP in one line, before it touches anything', async () => {
    let err = '';
    vi.spyOn(console, 'error').mockImplementation((line: string) => {
      err += line;
    });
    expect(await main(['node', 'kplex', 'gateway', '--metrics-adapter-address', '$(POD_IP)'])).not.toBe(0);
    expect(err).toBe('kplex: --metrics-adapter-address: "$(POD_IP)" is not an IP address');
  });

  it('tells the servers (gateway, dev up) from the commands that exit', () => {
    const argv = (line: string): string[] => ['node', 'kplex', ...line.split(' ')];
    for (const line of ['gateway', 'gateway --listen :8443 --certs /c', 'dev up --nodes 3', 'dev up --detach']) expect(runsServer(argv(line)), line).toBe(true);
    for (const line of ['list', '--version', 'gateway certs --out /c', 'gateway rotate-keys', 'dev down', 'dev status', 'dev image load app.tar', 'connect demo']) expect(runsServer(argv(line)), line).toBe(false);
  });
});
