import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Backend } from './backends.js';

/**
 * The gateway's Prometheus metrics, in a registry of their own (several gateways may share a process in
 * tests). Series are labelled only with tenants whose token was valid, so nobody can make up new ones.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'kplex_gateway_requests_total',
    help: 'Requests answered, by tenant ("" before authentication), verb and HTTP code.',
    labelNames: ['tenant', 'verb', 'code'] as const,
    registers: [this.registry],
  });
  readonly latency = new Histogram({
    name: 'kplex_gateway_request_duration_seconds',
    help: 'Time to the end of the answer of requests that are not long-running, by tenant and verb.',
    labelNames: ['tenant', 'verb'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly openWatches = new Gauge({
    name: 'kplex_gateway_open_watches',
    help: 'Long-running requests (watches, logs, exec, attach, port-forward) open now, by tenant.',
    labelNames: ['tenant'] as const,
    registers: [this.registry],
  });
  constructor(backends: () => Backend[]) {
    collectDefaultMetrics({ register: this.registry, prefix: 'kplex_gateway_' });
    // Read from the backends when scraped: counting per request would hash label sets twice a request.
    new Gauge({
      name: 'kplex_gateway_upstream_requests',
      help: 'Requests the gateway has open to an API server now, by tenant and upstream (tenant or host).',
      labelNames: ['tenant', 'upstream'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const b of backends()) this.inc({ tenant: b.tenant, upstream: b.answeredBy }, b.open);
      },
    });
    new Gauge({
      name: 'kplex_gateway_upstream_connections',
      help: 'Connections the gateway holds open to an API server now, by tenant and upstream (tenant or host).',
      labelNames: ['tenant', 'upstream'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const b of backends()) this.inc({ tenant: b.tenant, upstream: b.answeredBy }, b.pool.stats.connected + b.streams.stats.connected);
      },
    });
  }
}
