import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeClient } from '../k8s/client.js';
import { readyCondition, tenantsRef, type Tenant } from '../tenants/resources.js';
import { seconds, step } from '../terminal/progress.js';
import { durationFlag, tenantName } from './connect.js';
import { waitReady } from './create.js';
import { CliError } from './errors.js';
import { withHost } from './host.js';

interface Flags {
  timeout: string;
  context?: string;
}

async function existing(host: KubeClient, tenant: string): Promise<Tenant> {
  const t = await host.find<Tenant>(tenantsRef(tenant));
  if (!t) throw new CliError(`tenant "${tenant}" not found`);
  if (t.metadata.deletionTimestamp) throw new CliError(`tenant "${tenant}" is being deleted`);
  return t;
}

/** Waits until the controller has seen the tenant's current generation and reports it Sleeping. */
async function waitAsleep(host: KubeClient, tenant: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const t = await existing(host, tenant);
    const current = (t.status?.observedGeneration ?? 0) >= (t.metadata.generation as number);
    if (!t.spec.asleep) throw new CliError(`tenant "${tenant}" was woken again while it went to sleep (a request through the gateway, or kplex wake)`);
    if (current && t.status?.phase === 'Sleeping') return;
    if (Date.now() > deadline) {
      throw new CliError(`tenant "${tenant}" was not asleep after ${timeoutMs / 1000}s; last status: ${t.status?.phase ?? 'none'} (${readyCondition(t)?.message ?? ''}); is a gateway running?`);
    }
    await sleep(200);
  }
}

/** `kplex sleep NAME`: the tenant's control plane stops (its data kept) until a request or `kplex wake` wakes it. */
export async function sleepTenant(name: string, f: Flags): Promise<void> {
  const tenant = tenantName(name);
  const timeoutMs = durationFlag('--timeout', f.timeout) * 1000;
  const begin = Date.now();
  await withHost(f.context, async (host) => {
    const t = await existing(host, tenant);
    if (t.spec.asleep && t.status?.phase === 'Sleeping') {
      console.log(`tenant ${tenant} is already asleep (since ${t.status.sleepingSince ?? 'unknown'})`);
      return;
    }
    await step(`putting tenant ${tenant} to sleep`, async () => {
      await host.patch(tenantsRef(tenant), { spec: { asleep: true } });
      await waitAsleep(host, tenant, timeoutMs);
    });
    const pods = t.spec.values.sleep?.workloads === 'stop' ? 'its pods stopped' : 'its pods keep running';
    console.log(`tenant ${tenant} is asleep (${seconds(Date.now() - begin)}): its control plane is stopped, ${pods}; the next request through the gateway wakes it`);
  });
}

/** `kplex wake NAME`: starts the control plane of a sleeping tenant again and waits until it is ready. */
export async function wakeTenant(name: string, f: Flags): Promise<void> {
  const tenant = tenantName(name);
  const timeoutMs = durationFlag('--timeout', f.timeout) * 1000;
  const begin = Date.now();
  await withHost(f.context, async (host) => {
    const t = await existing(host, tenant);
    if (!t.spec.asleep && t.status?.phase === 'Ready') {
      console.log(`tenant ${tenant} is awake`);
      return;
    }
    await step(`waking tenant ${tenant}`, async () => {
      // Removed, not set to false: an awake tenant's spec is as it was before it ever slept.
      await host.patch(tenantsRef(tenant), { spec: { asleep: null } });
      await waitReady(host, tenant, timeoutMs);
    });
    console.log(`tenant ${tenant} is awake (${seconds(Date.now() - begin)})`);
  });
}
