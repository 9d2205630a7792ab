import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { expect } from 'vitest';
import type { ClusterAccess } from '../../src/k8s/client.js';
import { ORIGIN } from '../../src/sync/translate.js';
import { eventually, kubectl, run } from './helpers.js';
import type { GatewayReplicas, Replica } from './gateway-replicas.js';
import { ResumingWatch } from './resuming-watch.js';

/** The namespace the fault tests write in. */
export const NS = 'default';

interface Answer {
  code: number;
  body: { message?: string; items?: { metadata: { name: string } }[]; metadata?: { resourceVersion?: string } };
}

/** The tenant's API through one gateway replica (by its port on 127.0.0.1), with the tenant's admin token. */
export class TenantApi {
  private readonly agent: Agent;

  constructor(private readonly access: ClusterAccess, readonly port: number) {
    this.agent = new Agent({ connect: { ca: access.ca } });
  }

  get server(): string {
    return this.access.server.replace(/^https:\/\/127\.0\.0\.1:\d+/, `https://127.0.0.1:${this.port}`);
  }

  async send(method: 'GET' | 'POST', path: string, body?: unknown): Promise<Answer> {
    const res = await request(`${this.server}${path}`, {
      method,
      dispatcher: this.agent,
      headers: { authorization: `Bearer ${this.access.token}`, 'content-type': 'application/json', accept: 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { code: res.statusCode, body: (await res.body.json()) as Answer['body'] };
  }

  async names(resource: string, prefix: string): Promise<string[]> {
    const r = await this.send('GET', `/api/v1/namespaces/${NS}/${resource}`);
    expect(r.code, r.body.message).toBe(200);
    return r.body.items!.map((o) => o.metadata.name).filter((n) => n.startsWith(prefix)).sort();
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}

export type WrittenResource = 'serviceaccounts' | 'services' | 'configmaps';

/** What a client that keeps writing saw: each name acknowledged, refused (with the Status), or never answered. */
export class Writer {
  readonly acked: string[] = [];
  /** When each acknowledgement came (Date.now()). */
  readonly ackedAt: number[] = [];
  readonly refused: { name: string; code: number; message: string }[] = [];
  readonly unanswered: string[] = [];
  private stopped = false;
  private done?: Promise<void>;

  constructor(
    private readonly api: () => TenantApi,
    readonly resource: WrittenResource,
    readonly prefix: string,
  ) {}

  private object(name: string): unknown {
    if (this.resource === 'serviceaccounts') return { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name } };
    if (this.resource === 'configmaps') return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { k: name } };
    return { apiVersion: 'v1', kind: 'Service', metadata: { name }, spec: { ports: [{ port: 80 }], selector: { app: name } } };
  }

  start(pauseMs = 100): this {
    this.done = (async () => {
      for (let i = 0; !this.stopped; i++) {
        const name = `${this.prefix}-${i}`;
        try {
          const r = await this.api().send('POST', `/api/v1/namespaces/${NS}/${this.resource}`, this.object(name));
          if (r.code === 201) {
            this.acked.push(name);
            this.ackedAt.push(Date.now());
          }
          else this.refused.push({ name, code: r.code, message: r.body.message ?? '' });
        } catch (err) {
          this.unanswered.push(`${name}: ${(err as Error).message}`);
        }
        await sleep(pauseMs);
      }
    })();
    return this;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}

/** What the host holds of one tenant's mirrored objects, read by their twins' origin annotations. */
export class HostTwins {
  constructor(private readonly hostKubeconfig: string, private readonly tenant: string) {}

  /** The tenant objects of `resource` whose names start with `prefix`, by the origin name their host twins carry (duplicates kept). */
  async of(resource: string, prefix: string): Promise<string[]> {
    const r = await kubectl(this.hostKubeconfig, ['get', resource, '-n', `kplex-${this.tenant}`, '-l', `${ORIGIN.tenant}=${this.tenant}`, '-o', 'json']);
    expect(r.code, r.stderr).toBe(0);
    const items = (JSON.parse(r.stdout) as { items: { metadata: { annotations?: Record<string, string> } }[] }).items;
    return items.map((o) => o.metadata.annotations?.[ORIGIN.name] ?? '').filter((n) => n.startsWith(prefix)).sort();
  }

  /** The syncer has converged: one twin for each tenant object, none for anything else. */
  async converged(api: TenantApi, resource: string, prefix: string): Promise<string[]> {
    let last = '';
    return eventually(async () => {
      const [tenant, host] = [await api.names(resource, prefix), await this.of(resource, prefix)];
      last = `tenant ${tenant.join(',')}\nhost   ${host.join(',')}`;
      return JSON.stringify(tenant) === JSON.stringify(host) ? tenant : undefined;
    }, 90_000, `the host's ${resource} to be exactly the tenant's (last seen:\n${last})`);
  }
}

/** The tenant's API through each gateway replica a test reaches it by; closes their connections at the end. */
export class ReplicaApis {
  private readonly apis: TenantApi[] = [];
  access?: ClusterAccess;

  through(port: number): TenantApi {
    const api = new TenantApi(this.access!, port);
    this.apis.push(api);
    return api;
  }

  async close(): Promise<void> {
    for (const api of this.apis) await api.close();
  }
}

/** While the tenant's control plane was down its writes were refused with a 503 Status naming the tenant, never a bare error. */
export function expectUnavailableNamingTenant(w: Writer, tenant: string): void {
  for (const r of w.refused) {
    expect(r.code, r.message).toBe(503);
    expect(r.message).toContain(`"${tenant}"`);
  }
}

/**
 * Writes ServiceAccounts through `api` every 100 ms, with a watch on them, while `kill` (given the pid
 * of the tenant's kube-apiserver) kills its API server; until writes succeed again, and 2 s more.
 */
export async function writeThroughApiServerKill(api: TenantApi, access: ClusterAccess, apiServerPid: () => string): Promise<{ writer: Writer; watch: ResumingWatch }> {
  const listed = await api.send('GET', `/api/v1/namespaces/${NS}/serviceaccounts`);
  const watch = new ResumingWatch({ ...access, server: api.server }, `/api/v1/namespaces/${NS}/serviceaccounts`, listed.body.metadata!.resourceVersion!);
  watch.start();
  const writer = new Writer(() => api, 'serviceaccounts', 'killed-api').start();
  try {
    await eventually(async () => (writer.acked.length >= 5 ? true : undefined), 30_000, 'writes before the kill');
    await run('kill', ['-KILL', apiServerPid()], {}, 10_000);
    await eventually(async () => (writer.refused.length > 0 ? true : undefined), 30_000, 'a write refused while it is down');
    const ackedWhenDown = writer.acked.length;
    await eventually(async () => (writer.acked.length >= ackedWhenDown + 3 ? true : undefined), 180_000, 'writes to succeed again');
    await sleep(2_000);
  } finally {
    await writer.stop();
  }
  return { writer, watch };
}

/**
 * A tenant API server's death lost nothing. While it was down writes were refused with a 503 naming the
 * tenant, none unanswered; every acknowledged write is kept (one cut by the kill may have been stored
 * or not, and either way the host follows the tenant), the host holds one twin of each, and the
 * reflector-like watch (resuming from its resourceVersion, relisting when the restarted server no
 * longer has it) knows every object.
 */
export async function expectNothingLost(tenant: string, w: Writer, watch: ResumingWatch, api: TenantApi, twins: HostTwins): Promise<void> {
  expect(w.refused.length).toBeGreaterThan(0);
  expectUnavailableNamingTenant(w, tenant);
  expect(w.unanswered).toEqual([]);
  const stored = await twins.converged(api, w.resource, w.prefix);
  for (const name of w.acked) expect(stored).toContain(name);
  const known = (n: string) => watch.added.has(n) || watch.listed.has(n);
  try {
    await eventually(async () => (stored.every(known) ? true : undefined), 30_000, `the watch to know every acknowledged write (missing ${stored.filter((n) => !known(n)).join(', ')}; ${watch.relists} relists; broken: ${watch.broken.join(' | ')})`);
  } finally {
    watch.stop();
  }
}

export interface HostOutageWriters {
  sa: Writer;
  svc: Writer;
  cm: Writer;
}

/**
 * Writes ServiceAccounts, Services and ConfigMaps through `api` every 500 ms while the host API server
 * (process `pid`) is paused for 30 s (it accepts connections and never answers: the worst way for a
 * server to be unreachable), and 2 s after.
 */
export async function writeWhileHostPaused(api: TenantApi, pid: string): Promise<{ writers: HostOutageWriters; pausedAt: number; resumedAt: number }> {
  const writers = {
    sa: new Writer(() => api, 'serviceaccounts', 'host-down-sa'),
    svc: new Writer(() => api, 'services', 'host-down-svc'),
    cm: new Writer(() => api, 'configmaps', 'host-down-cm'),
  };
  await run('kill', ['-STOP', pid], {}, 10_000);
  const pausedAt = Date.now();
  try {
    for (const w of Object.values(writers)) w.start(500);
    await sleep(30_000);
  } finally {
    await run('kill', ['-CONT', pid], {}, 10_000);
  }
  const resumedAt = Date.now();
  await sleep(2_000);
  for (const w of Object.values(writers)) await w.stop();
  return { writers, pausedAt, resumedAt };
}

/**
 * Writes of ServiceAccounts, Services and ConfigMaps while the host API server did not answer: kinds the
 * tenant stores first were all acknowledged; a Service, whose ClusterIP the host chooses, was refused
 * with a 503 saying why; none went unanswered. Afterwards the host holds exactly the tenant's twins, and
 * none of ConfigMaps no pod uses.
 */
export async function expectHostOutageHandled(writers: HostOutageWriters, api: TenantApi, twins: HostTwins): Promise<void> {
  const { sa, svc, cm } = writers;
  expect(sa.acked.length).toBeGreaterThan(0);
  expect(sa.refused).toEqual([]);
  expect(cm.acked.length).toBeGreaterThan(0);
  expect(cm.refused).toEqual([]);
  expect(svc.refused.length).toBeGreaterThan(0);
  for (const r of svc.refused) {
    expect(r.code, r.message).toBe(503);
    expect(r.message).toMatch(/host|cannot reach/);
  }
  expect([...sa.unanswered, ...svc.unanswered, ...cm.unanswered]).toEqual([]);
  expect(await twins.converged(api, 'serviceaccounts', sa.prefix)).toEqual([...sa.acked].sort());
  expect(await twins.converged(api, 'services', svc.prefix)).toEqual([...svc.acked].sort());
  expect(await api.names('configmaps', cm.prefix)).toEqual([...cm.acked].sort());
  expect(await twins.of('configmaps', cm.prefix)).toEqual([]);
}

/** A write cut by a gateway's death may or may not have been stored; either way the host follows the tenant, with no twin twice. */
export async function expectConvergedOnce(w: Writer, api: TenantApi, twins: HostTwins): Promise<void> {
  expect(w.unanswered.length, w.unanswered.join('\n')).toBeLessThanOrEqual(1);
  // converged() compares the lists with their duplicates: a twin made twice never matches.
  const stored = await twins.converged(api, w.resource, w.prefix);
  for (const name of w.acked) expect(stored).toContain(name);
}

/**
 * A client behind a load balancer writing ServiceAccounts and Services every 20 ms through the leading
 * replica until it is SIGKILLed, then through another one, until that one leads and 5 s more.
 */
export async function writeThroughLeaderKill(set: GatewayReplicas, apis: ReplicaApis): Promise<{ killed: Replica; writers: Writer[]; survivor: TenantApi }> {
  const leader = await set.leader();
  const other = set.replicas.find((r) => r !== leader && set.running(r))!;
  const viaLeader = apis.through(leader.port);
  const survivor = apis.through(other.port);
  let killed = false;
  const target = () => (killed ? survivor : viaLeader);
  const writers = [new Writer(target, 'serviceaccounts', 'lost-leader-sa').start(20), new Writer(target, 'services', 'lost-leader-svc').start(20)];
  try {
    await eventually(async () => (writers.every((w) => w.acked.length >= 3) ? true : undefined), 30_000, 'writes through the leader');
    killed = true;
    leader.proc.kill('SIGKILL');
    await set.takenOverBy(other);
    await sleep(5_000);
  } finally {
    for (const w of writers) await w.stop();
  }
  return { killed: leader, writers, survivor };
}
