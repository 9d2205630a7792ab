import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { KubeClient, resourcePath, type ClusterAccess, type KubeObject, type ResourceRef } from './client.js';
import { StatusError } from './status.js';

/** The spec of a coordination.k8s.io/v1 Lease: client-go's LeaderElectionRecord. */
export interface LeaseRecord {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

interface Lease extends KubeObject {
  spec?: LeaseRecord;
}

/** client-go's three durations of leader election. */
export interface LeaderElectionTiming {
  /** How long a candidate waits, from when it last saw the Lease change, before taking it over. */
  leaseDurationMs: number;
  /** How long the leader keeps retrying a failed renew before it stops leading. */
  renewDeadlineMs: number;
  /** Between tries to acquire or renew. */
  retryPeriodMs: number;
}

/** What client-go's core clients use. */
export const DEFAULT_TIMING: LeaderElectionTiming = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };

/** client-go's: a candidate waits between retryPeriod and retryPeriod × (1 + JITTER), so candidates spread out. */
const JITTER = 1.2;

/**
 * Checks the durations as client-go's NewLeaderElector does. The leader must stop before a candidate may
 * take over (renewDeadline < leaseDuration), and must get more than one try in (retryPeriod × 1.2 <
 * renewDeadline). The Lease stores whole seconds.
 */
export function checkTiming(t: LeaderElectionTiming): LeaderElectionTiming {
  if (!(t.retryPeriodMs > 0)) throw new Error('the retry period must be positive');
  if (!(t.leaseDurationMs >= 1000) || t.leaseDurationMs % 1000 !== 0) throw new Error('the lease duration must be a whole number of seconds');
  if (!(t.leaseDurationMs > t.renewDeadlineMs)) throw new Error('the lease duration must be longer than the renew deadline');
  if (!(t.renewDeadlineMs > t.retryPeriodMs * JITTER)) throw new Error(`the renew deadline must be longer than ${JITTER} × the retry period`);
  return t;
}

/** Every request waits at most this long, so the leader gets at least two tries before its deadline. */
export const requestTimeoutMs = (t: LeaderElectionTiming): number => t.renewDeadlineMs / 2;

/** What one replica knows when it decides. Times are milliseconds of a monotonic clock. */
export interface ElectionView {
  identity: string;
  now: number;
  timing: LeaderElectionTiming;
  leading: boolean;
  /** When the last successful acquire or renew was sent: the Lease was renewed no earlier than that. */
  lastRenewAt: number;
  /** The Lease's spec as last read, or undefined when there is no Lease. */
  record: LeaseRecord | undefined;
  /** When this replica last saw the record change (client-go's observedTime); the holder's renewTime is another clock's. */
  observedAt: number;
}

export type Decision =
  | { do: 'create' }
  | { do: 'renew' }
  | { do: 'acquire' }
  | { do: 'wait'; holder: string; forMs: number }
  | { do: 'step-down'; why: string };

/**
 * A leader that has not renewed within the renew deadline may no longer act: a candidate may take the
 * Lease over one lease duration after it saw the last renew, and renewDeadline < leaseDuration.
 */
export const lapsed = (v: Pick<ElectionView, 'leading' | 'now' | 'lastRenewAt' | 'timing'>): boolean =>
  v.leading && v.now - v.lastRenewAt >= v.timing.renewDeadlineMs;

/** client-go's tryAcquireOrRenew as a pure decision, plus stepping down at once when another holds the Lease. */
export function decide(v: ElectionView): Decision {
  if (lapsed(v)) return { do: 'step-down', why: `not renewed within the renew deadline (${v.timing.renewDeadlineMs} ms)` };
  if (!v.record) return { do: 'create' };
  const holder = v.record.holderIdentity ?? '';
  // Our own name on the Lease: ours to renew, or to take back at once after a lapse (no one else took it).
  if (holder === v.identity) return v.leading ? { do: 'renew' } : { do: 'acquire' };
  if (v.leading) return { do: 'step-down', why: `the lease is held by ${holder || 'no one'}` };
  // Released (client-go's ReleaseOnCancel clears the holder): free for anyone now.
  if (!holder) return { do: 'acquire' };
  const durationMs = (v.record.leaseDurationSeconds ?? v.timing.leaseDurationMs / 1000) * 1000;
  const forMs = v.observedAt + durationMs - v.now;
  return forMs > 0 ? { do: 'wait', holder, forMs } : { do: 'acquire' };
}

/** A Kubernetes MicroTime: RFC 3339 with microseconds. */
const microTime = (d: Date): string => d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

/** The record this replica writes to acquire or renew: acquireTime and transitions change only with the holder. */
export function heldRecord(current: LeaseRecord | undefined, identity: string, wall: Date, t: LeaderElectionTiming): LeaseRecord {
  const now = microTime(wall);
  const ours = current?.holderIdentity === identity;
  return {
    ...current,
    holderIdentity: identity,
    leaseDurationSeconds: t.leaseDurationMs / 1000,
    acquireTime: ours && current.acquireTime ? current.acquireTime : now,
    renewTime: now,
    leaseTransitions: (current?.leaseTransitions ?? 0) + (current && !ours ? 1 : 0),
  };
}

/** client-go's release: no holder and a one-second lease, so a candidate takes over at once. */
export function releasedRecord(current: LeaseRecord, wall: Date): LeaseRecord {
  const now = microTime(wall);
  return { ...current, holderIdentity: '', leaseDurationSeconds: 1, acquireTime: now, renewTime: now };
}

/** What of a record counts as a change (client-go compares the raw record). */
const recordKey = (r: LeaseRecord | undefined): string =>
  r ? JSON.stringify([r.holderIdentity ?? '', r.leaseDurationSeconds, r.acquireTime, r.renewTime, r.leaseTransitions]) : '';

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity?: string;
  timing?: LeaderElectionTiming;
  log: Logger;
  onStartedLeading(): void;
  /** Awaited before the Lease is released or campaigned for again, so two leaders never act at once. */
  onStoppedLeading(): void | Promise<void>;
  /** client-go's OnNewLeader: the Lease was read held by another replica than the one last reported. */
  onNewLeader?(identity: string): void | Promise<void>;
}

/**
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection package does it:
 * candidates try every retry period and take over a Lease only once they have not seen it change for its
 * duration (by their own clock); the leader renews every retry period and stops leading when it could not
 * renew within the renew deadline, before any candidate may take over. Writes carry the resourceVersion
 * read, so of two candidates only one wins. There is no fencing: like client-go, it relies on clocks
 * running at about the same rate.
 */
export class LeaderElector {
  readonly identity: string;
  private readonly timing: LeaderElectionTiming;
  private readonly stopping = new AbortController();
  private loop?: Promise<void>;
  private leading = false;
  private lastRenewAt = 0;
  /** The Lease as last read or written (its resourceVersion is what the next write is based on). */
  private lease?: Lease;
  private observedAt = 0;
  /** The leader last reported to onNewLeader (or this replica, once it leads). */
  private reportedLeader?: string;

  constructor(private readonly client: KubeClient, private readonly o: LeaderElectionOptions) {
    this.identity = o.identity ?? `${os.hostname()}-${process.pid}`;
    this.timing = checkTiming(o.timing ?? DEFAULT_TIMING);
  }

  /** Whether this replica may act as leader now: false as soon as the renew deadline has passed, even before the loop notices. */
  get isLeader(): boolean {
    return this.leading && !lapsed(this.view());
  }

  start(): void {
    this.loop ??= this.run();
  }

  private view(): ElectionView {
    return {
      identity: this.identity,
      now: performance.now(),
      timing: this.timing,
      leading: this.leading,
      lastRenewAt: this.lastRenewAt,
      record: this.lease?.spec,
      observedAt: this.observedAt,
    };
  }

  private get ref(): ResourceRef {
    return { group: 'coordination.k8s.io', version: 'v1', resource: 'leases', namespace: this.o.namespace, name: this.o.name };
  }

  private async run(): Promise<void> {
    const signal = this.stopping.signal;
    while (!signal.aborted) {
      let waitMs = this.timing.retryPeriodMs * (1 + Math.random() * JITTER);
      try {
        // A candidate also wakes when the holder's lease expires by its clock.
        waitMs = Math.min(waitMs, (await this.tick()) ?? Infinity);
      } catch (err) {
        if (signal.aborted) break;
        const fields = { err: (err as Error).message, lease: this.o.name };
        if (this.leading) this.o.log.warn(fields, 'renewing the lease failed; retrying until the renew deadline');
        // A conflict is another candidate that wrote first: the usual way to lose a race.
        else if (err instanceof StatusError && err.code === 409) this.o.log.debug(fields, 'another replica acquired the lease first');
        else this.o.log.warn(fields, 'acquiring the lease failed');
      }
      // A pause or a slow answer may have used up the deadline.
      if (lapsed(this.view())) await this.stepDown(`not renewed within the renew deadline (${this.timing.renewDeadlineMs} ms)`);
      // A leader renews every retry period, and wakes at its deadline at the latest to step down on time.
      if (this.leading) waitMs = Math.min(this.timing.retryPeriodMs, this.lastRenewAt + this.timing.renewDeadlineMs - performance.now());
      // Rejects only when stop() aborts it, which ends the loop.
      await sleep(Math.max(0, waitMs), undefined, { signal }).catch(() => undefined);
    }
  }

  /** One round of client-go's tryAcquireOrRenew; a candidate that waits learns how long the holder's lease has left. */
  private async tick(): Promise<number | undefined> {
    // Timers fire late after a pause (SIGSTOP, a frozen VM): check the deadline before asking the server anything.
    if (lapsed(this.view())) {
      await this.stepDown(`not renewed within the renew deadline (${this.timing.renewDeadlineMs} ms)`);
      return undefined;
    }
    // A leader's fast path: write on top of the Lease it last wrote; a conflict falls back to reading it.
    if (this.leading && this.lease) {
      const sentAt = performance.now();
      try {
        await this.won(sentAt, await this.put(heldRecord(this.lease.spec, this.identity, new Date(), this.timing)));
        return undefined;
      } catch (err) {
        if (!(err instanceof StatusError && err.code === 409)) throw err;
      }
    }
    const lease = await this.request((signal) => this.client.json<Lease>('GET', resourcePath(this.ref), { signal })).catch((err: unknown) => {
      if (err instanceof StatusError && err.code === 404) return undefined;
      throw err;
    });
    if (recordKey(lease?.spec) !== recordKey(this.lease?.spec)) this.observedAt = performance.now();
    this.lease = lease;
    const d = decide(this.view());
    // A leader that sees another's name stops its own work before it hears of the new leader.
    if (d.do === 'step-down') await this.stepDown(d.why);
    await this.reportLeader(lease?.spec?.holderIdentity);
    const sentAt = performance.now();
    switch (d.do) {
      case 'step-down':
        return undefined;
      case 'wait':
        this.o.log.debug({ lease: this.o.name, holder: d.holder, forMs: Math.round(d.forMs) }, 'the lease is held by another replica');
        return d.forMs;
      case 'create': {
        const body = {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: this.o.name, namespace: this.o.namespace },
          spec: heldRecord(undefined, this.identity, new Date(), this.timing),
        };
        await this.won(sentAt, await this.request((signal) => this.client.json<Lease>('POST', resourcePath({ ...this.ref, name: undefined }), { signal, body })));
        return undefined;
      }
      case 'renew':
      case 'acquire':
        await this.won(sentAt, await this.put(heldRecord(lease?.spec, this.identity, new Date(), this.timing)));
        return undefined;
    }
  }

  private async reportLeader(holder: string | undefined): Promise<void> {
    if (!holder || holder === this.identity || holder === this.reportedLeader) return;
    this.reportedLeader = holder;
    this.o.log.info({ lease: this.o.name, holder }, 'another replica leads');
    await this.o.onNewLeader?.(holder);
  }

  /** Writes the Lease with the resourceVersion last seen: a conflict means someone else wrote first. */
  private put(spec: LeaseRecord): Promise<Lease> {
    const lease = this.lease!;
    return this.request((signal) => this.client.json<Lease>('PUT', resourcePath(this.ref), { signal, body: { ...lease, spec } }));
  }

  /**
   * A write of ours succeeded. It counts from when it was sent, and only if the answer came within the
   * renew deadline: an answer read after a long pause says nothing about now.
   */
  private async won(sentAt: number, lease: Lease): Promise<void> {
    this.lease = lease;
    this.observedAt = performance.now();
    if (performance.now() - sentAt >= this.timing.renewDeadlineMs) {
      // Our name stays on the Lease; the next round takes it back with a fresh write if no one else did.
      if (this.leading) await this.stepDown('the renew was answered after the renew deadline');
      return;
    }
    this.lastRenewAt = sentAt;
    if (!this.leading) {
      this.leading = true;
      this.reportedLeader = this.identity;
      this.o.log.info({ lease: this.o.name, identity: this.identity }, 'acquired the lease');
      this.o.onStartedLeading();
    }
  }

  private async stepDown(why: string): Promise<void> {
    if (!this.leading) return;
    this.leading = false;
    this.o.log.warn({ lease: this.o.name, identity: this.identity, why }, 'lost the lease');
    await this.stopped();
  }

  private async stopped(): Promise<void> {
    try {
      await this.o.onStoppedLeading();
    } catch (err) {
      this.o.log.error({ err: (err as Error).message }, 'stopping the leader\'s work failed');
    }
  }

  /**
   * One request to the API server, ended after the request timeout, or sooner when a leader's renew
   * deadline comes first, or when the elector stops (unless `untilStop` is false).
   */
  private async request<T>(send: (signal: AbortSignal) => Promise<T>, untilStop = true): Promise<T> {
    const left = this.leading ? this.lastRenewAt + this.timing.renewDeadlineMs - performance.now() : Infinity;
    const ms = Math.max(0, Math.min(requestTimeoutMs(this.timing), left));
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(new Error(`the API server did not answer within ${Math.round(ms)} ms`)), ms);
    const onStop = () => ac.abort(new Error('leader election stopped'));
    if (untilStop) this.stopping.signal.addEventListener('abort', onStop);
    try {
      return await send(ac.signal);
    } catch (err) {
      throw ac.signal.aborted ? ac.signal.reason : err;
    } finally {
      clearTimeout(timer);
      this.stopping.signal.removeEventListener('abort', onStop);
    }
  }

  /**
   * Stops campaigning. A leader first stops its work, then releases the Lease (client-go's
   * ReleaseOnCancel), so another replica takes over at once instead of after the lease duration.
   */
  async stop(): Promise<void> {
    this.stopping.abort();
    await this.loop;
    if (!this.leading) return;
    this.leading = false;
    await this.stopped();
    const lease = this.lease!;
    try {
      const spec = releasedRecord(lease.spec ?? {}, new Date());
      await this.request((signal) => this.client.json<Lease>('PUT', resourcePath(this.ref), { signal, body: { ...lease, spec } }), false);
      this.o.log.info({ lease: this.o.name }, 'released the lease');
    } catch (err) {
      // A conflict means someone else wrote the Lease since: nothing of ours is left to release.
      this.o.log.warn({ err: (err as Error).message, lease: this.o.name }, 'releasing the lease failed; another replica takes over once it expires');
    }
  }
}

/**
 * A client for the leader's work that refuses every request once this replica may no longer act as
 * leader. After a pause, watch events already read can run before the elector's late timer; with this
 * client they cannot reach the API server.
 */
export class LeaderClient extends KubeClient {
  constructor(access: ClusterAccess, private readonly elector: LeaderElector) {
    super(access);
  }

  override raw(...args: Parameters<KubeClient['raw']>): ReturnType<KubeClient['raw']> {
    if (!this.elector.isLeader) return Promise.reject(new StatusError(503, 'ServiceUnavailable', `${this.elector.identity} is not the leader`));
    return super.raw(...args);
  }
}
