import { setTimeout as sleep } from 'node:timers/promises';
import { StatusError } from '../k8s/status.js';
import { core, type KubeClient } from '../k8s/client.js';
import { removeFromUserKubeconfig } from '../k8s/kubeconfig.js';
import { contextName, hostNamespace } from '../tenants/names.js';
import { ANNOTATIONS, newTenant, readyCondition, tenantsRef, type Tenant } from '../tenants/resources.js';
import { ensureSystem, readGatewayInfo } from '../tenants/system.js';
import { fixedAtCreation, parseValues, readValuesFile, type TenantValues } from '../tenants/values.js';
import { connectTo, durationFlag, tenantName } from './connect.js';
import { CliError } from './errors.js';
import { readConnections, withHost, writeConnections } from './host.js';
import { seconds, step } from '../terminal/progress.js';
import { unlessInterrupted } from './signals.js';
import type { StoreFlags } from './snapshot.js';
import type { TenantSnapshot } from '../tenants/snapshot.js';

/**
 * Waits until the controller has seen the tenant's current generation and reports it Ready (or, for a
 * tenant that is to sleep, Sleeping: values changed while it sleeps apply when it wakes).
 */
export async function waitReady(host: KubeClient, tenant: string, timeoutMs: number): Promise<Tenant> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const t = await host.find<Tenant>(tenantsRef(tenant));
    if (!t) throw new CliError(`tenant "${tenant}" disappeared while waiting for it`);
    const ready = readyCondition(t);
    const current = (t.status?.observedGeneration ?? 0) >= (t.metadata.generation as number);
    if (current && (ready?.status === 'True' || (t.spec?.asleep && t.status?.phase === 'Sleeping'))) return t;
    if (current && t.status?.phase === 'Failed') throw new CliError(`tenant "${tenant}" failed: ${ready?.message ?? 'unknown reason'}`);
    if (Date.now() > deadline) {
      const hint = t.status ? `last status: ${t.status.phase} (${ready?.message ?? ''})` : 'no tenant controller reported on it: is a gateway running (kplex dev up, or kplex gateway with a provider)?';
      throw new CliError(`tenant "${tenant}" was not ready after ${timeoutMs / 1000}s; ${hint}`);
    }
    await sleep(200);
  }
}

/** Removes a tenant's context from the user's kubeconfig and the connections file; whether there was one. */
function forgetContext(tenant: string, hostContext: string): boolean {
  const ctx = contextName(tenant);
  const found = removeFromUserKubeconfig(ctx, { fallback: hostContext });
  const connections = readConnections();
  delete connections[ctx];
  writeConnections(connections);
  return found;
}

function values(file: string | undefined, isolate: boolean | undefined): TenantValues {
  try {
    const v = file ? readValuesFile(file) : parseValues({});
    return isolate === undefined ? v : { ...v, isolate };
  } catch (err) {
    throw new CliError((err as Error).message);
  }
}

type CreateFlags = StoreFlags & { values?: string; upgrade?: boolean; isolate?: boolean; restore?: string; asleep?: boolean; connect: string; timeout: string; context?: string };

/**
 * With --restore: the checked snapshot and the store to write it to (one line for any problem, before
 * the host is asked anything). Loaded only then: the store brings the control-plane modules along.
 */
async function restoreFrom(f: CreateFlags) {
  if (!f.restore) return undefined;
  if (f.upgrade) throw new CliError('--restore makes a new tenant; it does not go with --upgrade');
  if (f.values || f.isolate !== undefined) throw new CliError('--restore takes the values the snapshot holds; change them afterwards with: kplex create NAME --upgrade -f values.yaml');
  const cli = await import('./snapshot.js');
  const snap: TenantSnapshot = cli.readSnapshotFile(f.restore);
  return { snap, store: cli.tenantStore(f), cli };
}

export async function create(name: string, f: CreateFlags): Promise<void> {
  const tenant = tenantName(name);
  // An existing tenant sleeps with `kplex sleep`: --upgrade changes values only, awake or asleep.
  if (f.asleep && f.upgrade) throw new CliError('--asleep registers a new tenant; put an existing one to sleep with: kplex sleep NAME');
  const restoring = await restoreFrom(f);
  const restore = restoring?.snap;
  const v = restore ? restore.values : values(f.values, f.isolate);
  const timeoutMs = durationFlag('--timeout', f.timeout) * 1000;
  const begin = Date.now();
  await withHost(f.context, async (host, hostContext) => {
    await step('checking the host cluster and its gateway', async () => {
      await ensureSystem(host);
      await readGatewayInfo(host);
    });
    const existing = await host.find<Tenant>(tenantsRef(tenant));
    if (f.upgrade) {
      if (!existing) throw new CliError(`tenant "${tenant}" not found; create it without --upgrade`);
      const fixed = fixedAtCreation(existing.status, v);
      if (fixed) throw new CliError(fixed);
      // Replaced whole, not merged: a key left out of the new values (podSecurityStandard) must go.
      await step(`updating the values of tenant ${tenant}`, () => host.patch(tenantsRef(tenant), [{ op: 'add', path: '/spec', value: { ...existing.spec, values: v } }], 'json'));
      await step('waiting for the tenant controller to apply them', () => waitReady(host, tenant, timeoutMs));
    } else {
      if (existing) {
        throw new CliError(restore
          ? `tenant "${tenant}" already exists; delete it first, or restore under another name: kplex create NEW-NAME --restore ${f.restore}`
          : `tenant "${tenant}" already exists; change it with: kplex create ${tenant} --upgrade -f values.yaml`);
      }
      // The data is in place before the Tenant exists, so its control plane starts on it the first time.
      if (restoring) {
        const { snap, store, cli } = restoring;
        const data = await cli.restoredData(tenant, snap);
        await step(`restoring the data of tenant ${tenant} (${data.entries.length} keys of ${snap.tenant}, taken ${snap.createdAt})`, () => cli.storeCall(() => store.restore(tenant, data)));
      }
      await step(`writing tenant ${tenant}`, async () => {
        try {
          await host.create(tenantsRef(), newTenant(tenant, v, { asleep: f.asleep }));
        } catch (err) {
          // Nothing half-made: restored data without a Tenant would be found by the next create of this name.
          if (restoring) await restoring.store.forget(tenant).catch((cleanup: Error) => console.error(`kplex: could not remove the restored data of "${tenant}" again: ${cleanup.message}`));
          if (err instanceof StatusError && err.code === 409) throw new CliError(`tenant "${tenant}" already exists`);
          throw err;
        }
      });
      try {
        // Ctrl-C while waiting is a failed create too: it must not leave a tenant behind.
        const waiting = f.asleep ? `waiting for the tenant controller to register ${tenant} asleep` : `starting the control plane of ${tenant} (namespace ${hostNamespace(tenant)})`;
        await step(waiting, () => unlessInterrupted(waitReady(host, tenant, timeoutMs), `interrupted; tenant "${tenant}" removed again`),
          (t) => (t.status?.controlPlaneReadyMs ? `API server ready in ${seconds(t.status.controlPlaneReadyMs)}` : f.asleep ? 'asleep' : 'ready'));
      } catch (err) {
        // Nothing half-made: a tenant that did not come up is removed again.
        await host.delete(tenantsRef(tenant)).catch((cleanup: Error) => console.error(`kplex: could not remove tenant "${tenant}" again: ${cleanup.message}`));
        // A Tenant no controller took up (no finalizer) is gone at once, and nothing deletes the restored
        // data for it; one a controller took up, its teardown deletes.
        if (restoring && !(await host.find(tenantsRef(tenant)))) {
          await restoring.store.forget(tenant).catch((cleanup: Error) => console.error(`kplex: could not remove the restored data of "${tenant}" again: ${cleanup.message}`));
        }
        throw err;
      }
    }
    if (f.connect !== 'false') await connectTo(host, hostContext, tenant, { role: 'admin', user: 'admin', group: [], ttl: '24h' });
  });
  console.log(f.asleep
    ? `tenant ${tenant} is registered, asleep (${seconds(Date.now() - begin)} in all): the first request through the gateway, or kplex wake, starts its control plane`
    : `tenant ${tenant} is ready (${seconds(Date.now() - begin)} in all)`);
}

export async function deleteTenant(name: string, f: { keepNamespace?: boolean; timeout: string; context?: string }): Promise<void> {
  const tenant = tenantName(name);
  const timeoutMs = durationFlag('--timeout', f.timeout) * 1000;
  await withHost(f.context, async (host, hostContext) => {
    await ensureSystem(host);
    const t = await host.find<Tenant>(tenantsRef(tenant));
    if (!t) {
      // Deleted already (from another machine, or a run that ended before its cleanup): finish here.
      if (!forgetContext(tenant, hostContext)) throw new CliError(`tenant "${tenant}" not found`);
      console.log(`tenant ${tenant} was already deleted; removed its context ${contextName(tenant)}`);
      return;
    }
    if (f.keepNamespace) await host.patch(tenantsRef(tenant), { metadata: { annotations: { [ANNOTATIONS.keepNamespace]: 'true' } } });
    await step(`deleting tenant ${tenant}`, async () => {
      await host.delete(tenantsRef(tenant));
      const deadline = Date.now() + timeoutMs;
      while (await host.find(tenantsRef(tenant))) {
        if (Date.now() > deadline) throw new CliError(`tenant "${tenant}" is still being deleted after ${f.timeout}; is a gateway running?`);
        await sleep(200);
      }
      // The host namespace finishes terminating after the Tenant is gone (its pods stop first): a
      // `kplex create` of the same name right after must not find it half-deleted.
      while (!f.keepNamespace && (await host.find(core('namespaces', undefined, hostNamespace(tenant))))) {
        if (Date.now() > deadline) throw new CliError(`the host namespace ${hostNamespace(tenant)} is still terminating after ${f.timeout}`);
        await sleep(200);
      }
    });
    forgetContext(tenant, hostContext);
    console.log(`tenant ${tenant} deleted`);
  });
}
