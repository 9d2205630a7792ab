import os from 'node:os';
import type { KubeClient, KubeObject } from './client.js';
import { StatusError } from './status.js';

interface Lease extends KubeObject {
  spec?: { holderIdentity?: string; leaseDurationSeconds?: number; renewTime?: string; acquireTime?: string; leaseTransitions?: number };
}

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity?: string;
  leaseSeconds?: number;
  onStartedLeading(): void;
  onStoppedLeading(): void;
}

const microTime = (d: Date): string => d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

/**
 * Leader election on a coordination.k8s.io Lease, like client-go's: the holder renews it; others take
 * it over once it has not been renewed for its duration. Exactly one holder does the work at a time.
 */
export class LeaderElector {
  readonly identity: string;
  private timer?: NodeJS.Timeout;
  private leading = false;
  private stopped = false;

  constructor(private readonly client: KubeClient, private readonly o: LeaderElectionOptions) {
    this.identity = o.identity ?? `${os.hostname()}-${process.pid}`;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    const tick = async (): Promise<void> => {
      if (this.stopped) return;
      let leading = false;
      try {
        leading = await this.tryAcquireOrRenew();
      } catch {
        leading = false;
      }
      if (leading !== this.leading) {
        this.leading = leading;
        if (leading) this.o.onStartedLeading();
        else this.o.onStoppedLeading();
      }
      if (!this.stopped) this.timer = setTimeout(() => void tick(), leading ? 2_000 : 1_000);
    };
    void tick();
  }

  private get ref() {
    return { group: 'coordination.k8s.io', version: 'v1', resource: 'leases', namespace: this.o.namespace, name: this.o.name };
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const duration = this.o.leaseSeconds ?? 15;
    const now = new Date();
    const lease = await this.client.find<Lease>(this.ref);
    const spec = { holderIdentity: this.identity, leaseDurationSeconds: duration, renewTime: microTime(now) };
    if (!lease) {
      try {
        await this.client.create(this.ref, {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: this.o.name, namespace: this.o.namespace },
          spec: { ...spec, acquireTime: microTime(now), leaseTransitions: 0 },
        });
        return true;
      } catch (err) {
        if (err instanceof StatusError && err.code === 409) return false;
        throw err;
      }
    }
    const held = lease.spec?.holderIdentity;
    const renewed = lease.spec?.renewTime ? Date.parse(lease.spec.renewTime) : 0;
    const expired = renewed + (lease.spec?.leaseDurationSeconds ?? duration) * 1000 < now.getTime();
    if (held && held !== this.identity && !expired) return false;
    const transitions = (lease.spec?.leaseTransitions ?? 0) + (held === this.identity ? 0 : 1);
    try {
      // The update carries the resourceVersion we read, so two candidates cannot both win.
      await this.client.update(this.ref, {
        ...lease,
        spec: { ...lease.spec, ...spec, leaseTransitions: transitions, ...(held === this.identity ? {} : { acquireTime: microTime(now) }) },
      });
      return true;
    } catch (err) {
      if (err instanceof StatusError && err.code === 409) return false;
      throw err;
    }
  }

  /** Stops campaigning and gives the lease up so another replica takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.leading) {
      this.leading = false;
      this.o.onStoppedLeading();
      const lease = await this.client.find<Lease>(this.ref).catch(() => undefined);
      if (lease?.spec?.holderIdentity === this.identity) {
        await this.client.update(this.ref, { ...lease, spec: { ...lease.spec, holderIdentity: '', renewTime: undefined } }).catch(() => undefined);
      }
    }
  }
}
