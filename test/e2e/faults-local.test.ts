import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterAccess } from '../../src/k8s/client.js';
import { accessFromKubeconfig } from '../../src/k8s/kubeconfig.js';
import { ORIGIN } from '../../src/sync/translate.js';
import { GatewayReplicas, type Replica } from './gateway-replicas.js';
import { createTenant, eventually, kubectl, processesMentioning, run, tmpDir } from './helpers.js';
import { ResumingWatch } from './resuming-watch.js';

const TENANT = 'faulty';
const NS = 'default';

interface Answer {
  code: number;
  body: { message?: string; items?: { metadata: { name: string } }[]; metadata?: { resourceVersion?: string } };
}

/** The tenant's API through one gateway replica, with the tenant's admin token. */
class TenantApi {
  private readonly agent: Agent;

  constructor(private readonly access: ClusterAccess, readonly replica: Replica) {
    this.agent = new Agent({ connect: { ca: access.ca } });
  }

  get server(): string {
    return this.access.server.replace(/^https:\/\/127\.0\.0\.1:\d+/, `https://127.0.0.1:${this.replica.port}`);
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

/** What a client that keeps writing saw: each name acknowledged, refused (with the Status), or never answered. */
class Writer {
  readonly acked: string[] = [];
  /** When each acknowledgement came (Date.now()). */
  readonly ackedAt: number[] = [];
  readonly refused: { name: string; code: number; message: string }[] = [];
  readonly unanswered: string[] = [];
  private stopped = false;
  private done?: Promise<void>;

  constructor(
    private readonly api: () => TenantApi,
    private readonly resource: 'serviceaccounts' | 'services' | 'configmaps',
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

/**
 * Faults of the local provider's parts, each checked object by object: what a client was told was
 * written is in the tenant, and the host holds a twin of exactly the tenant's mirrored objects, one each.
 */
describe('faults: a tenant API server, the host API server and the leading gateway lost mid-write', () => {
  const dir = tmpDir('faults');
  const set = new GatewayReplicas(dir);
  const hostNs = `kplex-${TENANT}`;
  let access: ClusterAccess;
  const apis: TenantApi[] = [];
  const through = (r: Replica): TenantApi => {
    const api = new TenantApi(access, r);
    apis.push(api);
    return api;
  };

  /** The tenant objects of `resource` whose names start with `prefix`, by the origin name their host twins carry (duplicates kept). */
  async function twins(resource: string, prefix: string): Promise<string[]> {
    const r = await kubectl(set.hostKubeconfig, ['get', resource, '-n', hostNs, '-l', `${ORIGIN.tenant}=${TENANT}`, '-o', 'json']);
    expect(r.code, r.stderr).toBe(0);
    const items = (JSON.parse(r.stdout) as { items: { metadata: { annotations?: Record<string, string> } }[] }).items;
    return items.map((o) => o.metadata.annotations?.[ORIGIN.name] ?? '').filter((n) => n.startsWith(prefix)).sort();
  }

  /** The syncer has converged: one twin for each tenant object, none for anything else. */
  async function converged(api: TenantApi, resource: string, prefix: string): Promise<string[]> {
    let last = '';
    return eventually(async () => {
      const [tenant, host] = [await api.names(resource, prefix), await twins(resource, prefix)];
      last = `tenant ${tenant.join(',')}\nhost   ${host.join(',')}`;
      return JSON.stringify(tenant) === JSON.stringify(host) ? tenant : undefined;
    }, 90_000, `the host's ${resource} to be exactly the tenant's (last seen:\n${last})`);
  }

  beforeAll(async () => {
    await set.up();
    await set.start('a');
    await set.start('b');
    await set.leader();
    access = accessFromKubeconfig({ file: await createTenant(set.env, TENANT) });
  });

  afterAll(async () => {
    for (const api of apis) await api.close();
    await set.down();
  });

  it('a tenant API server killed during a watch and writes: 503 naming the tenant, back by itself, every acknowledged write kept and mirrored once', async () => {
    const leader = await set.leader();
    const api = through(leader);
    const listed = await api.send('GET', `/api/v1/namespaces/${NS}/serviceaccounts`);
    const watch = new ResumingWatch({ ...access, server: api.server }, `/api/v1/namespaces/${NS}/serviceaccounts`, listed.body.metadata!.resourceVersion!);
    watch.start();
    const writer = new Writer(() => api, 'serviceaccounts', 'killed-api').start();
    try {
      await eventually(async () => (writer.acked.length >= 5 ? true : undefined), 30_000, 'writes before the kill');
      const apiServer = processesMentioning(`${leader.tenantDir}/${TENANT}/pki/apiserver.crt`);
      expect(apiServer).toHaveLength(1);
      await run('kill', ['-KILL', apiServer[0]!.split(' ')[0]!], {}, 10_000);
      await eventually(async () => (writer.refused.length > 0 ? true : undefined), 30_000, 'a write refused while it is down');
      const ackedWhenDown = writer.acked.length;
      await eventually(async () => (writer.acked.length >= ackedWhenDown + 3 ? true : undefined), 120_000, 'writes to succeed again');
      await sleep(2_000);
    } finally {
      await writer.stop();
    }
    // While it was down the gateway answered with a Status that names the tenant, never a bare error.
    expect(writer.refused.length).toBeGreaterThan(0);
    for (const r of writer.refused) {
      expect(r.code, r.message).toBe(503);
      expect(r.message).toContain(`"${TENANT}"`);
    }
    expect(writer.unanswered).toEqual([]);
    const stored = await converged(api, 'serviceaccounts', 'killed-api');
    // Every acknowledged write is kept; one cut by the kill may have been stored or not, and either way
    // the host follows the tenant (converged).
    for (const name of writer.acked) expect(stored).toContain(name);
    // The watch came through the outage as a reflector does, resuming from its resourceVersion (or, if
    // the restarted server no longer has it, relisting): it knows every object.
    const known = (n: string) => watch.added.has(n) || watch.listed.has(n);
    await eventually(async () => (stored.every(known) ? true : undefined), 30_000, `the watch to know every acknowledged write (missing ${stored.filter((n) => !known(n)).join(', ')}; ${watch.relists} relists; broken: ${watch.broken.join(' | ')})`);
    watch.stop();
  });

  it('the host API server unreachable for 30 s: tenant writes succeed, mirrored kinds made on the host first get a clear Status, and the host ends with exactly the tenant state', async () => {
    const leader = await set.leader();
    const api = through(leader);
    const hostApiServer = processesMentioning(`${set.dataDir}/`).filter((l) => l.includes('kube-apiserver') && !l.includes('tenants-'));
    expect(hostApiServer, hostApiServer.join('\n')).toHaveLength(1);
    const pid = hostApiServer[0]!.split(' ')[0]!;
    const writers = [
      new Writer(() => api, 'serviceaccounts', 'host-down-sa'),
      new Writer(() => api, 'services', 'host-down-svc'),
      new Writer(() => api, 'configmaps', 'host-down-cm'),
    ];
    // Paused, it accepts connections and never answers: the worst way for a server to be unreachable.
    await run('kill', ['-STOP', pid], {}, 10_000);
    const pausedAt = Date.now();
    try {
      for (const w of writers) w.start(500);
      await sleep(30_000);
    } finally {
      await run('kill', ['-CONT', pid], {}, 10_000);
    }
    const resumedAt = Date.now();
    await sleep(2_000);
    for (const w of writers) await w.stop();
    expect(resumedAt - pausedAt).toBeGreaterThanOrEqual(30_000);

    const [sa, svc, cm] = writers as [Writer, Writer, Writer];
    // Kinds stored by the tenant first (ServiceAccounts, ConfigMaps) are written while the host is away.
    expect(sa.acked.length).toBeGreaterThan(0);
    expect(sa.refused).toEqual([]);
    expect(cm.acked.length).toBeGreaterThan(0);
    expect(cm.refused).toEqual([]);
    // A Service takes its ClusterIP from the host: without the host it is refused, saying why.
    expect(svc.refused.length).toBeGreaterThan(0);
    for (const r of svc.refused) {
      expect(r.code, r.message).toBe(503);
      expect(r.message).toMatch(/host|cannot reach/);
    }
    expect([...sa.unanswered, ...svc.unanswered, ...cm.unanswered]).toEqual([]);

    const storedSa = await converged(api, 'serviceaccounts', 'host-down-sa');
    expect(storedSa).toEqual([...sa.acked].sort());
    const storedSvc = await converged(api, 'services', 'host-down-svc');
    expect(storedSvc).toEqual([...svc.acked].sort());
    // ConfigMaps no pod uses are not mirrored: the tenant has them all, the host none.
    expect(await api.names('configmaps', 'host-down-cm')).toEqual([...cm.acked].sort());
    expect(await twins('configmaps', 'host-down-cm')).toEqual([]);
    // The leader could not renew its Lease and stopped leading after the renew deadline (5 s), but the
    // tenant's control plane kept serving: writes were acknowledged long after that.
    expect(leader.lines.some((l) => l.msg === 'lost the lease' && l.time >= pausedAt), set.logOf(leader)).toBe(true);
    expect(Math.max(...sa.ackedAt)).toBeGreaterThan(pausedAt + 15_000);
  });

  it('the leading gateway killed mid-write: the other replica serves and leads, with no twin duplicated or orphaned', async () => {
    const leader = await set.leader();
    const other = set.replicas.find((r) => r !== leader && set.running(r))!;
    const viaLeader = through(leader);
    const viaOther = through(other);
    // A client behind a load balancer: the leader until it is gone, then the other replica.
    let killed = false;
    const target = () => (killed ? viaOther : viaLeader);
    const writers = [new Writer(target, 'serviceaccounts', 'lost-leader-sa').start(20), new Writer(target, 'services', 'lost-leader-svc').start(20)];
    try {
      await eventually(async () => (writers.every((w) => w.acked.length >= 3) ? true : undefined), 30_000, 'writes through the leader');
      killed = true;
      leader.proc.kill('SIGKILL');
      await eventually(async () => ((await set.holder()) === other.identity ? true : undefined), 30_000, `${other.name} to take over`);
      await eventually(async () => (other.lines.some((l) => l.msg === 'leading: running the tenant controller') ? true : undefined), 10_000, `${other.name} to run the tenant controller`);
      await sleep(5_000);
    } finally {
      for (const w of writers) await w.stop();
    }
    // The local provider runs one API server per tenant, beside the leader: it died with it (no orphan
    // process), and until the new leader has started it again the tenant is unavailable, and says so.
    expect(set.apiServers(leader)).toEqual([]);
    for (const w of writers) {
      // A write cut by the kill may or may not have been stored; either way the host follows the tenant.
      expect(w.unanswered.length, w.unanswered.join('\n')).toBeLessThanOrEqual(1);
      for (const r of w.refused) {
        expect(r.code, r.message).toBe(503);
        expect(r.message).toContain(`"${TENANT}"`);
      }
      const stored = await converged(viaOther, w === writers[0] ? 'serviceaccounts' : 'services', w.prefix);
      for (const name of w.acked) expect(stored).toContain(name);
      // No twin twice (converged compares the lists with their duplicates).
      expect(new Set(stored).size).toBe(stored.length);
    }
  });
});
