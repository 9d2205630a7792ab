import { describe, expect, it } from 'vitest';
import { simulatedNodeStatus } from '../../src/dev/host-cluster.js';
import { HOST_CONTEXT, contextLine } from '../../src/dev/supervisor.js';

describe('kplex dev up: decisions', () => {
  it('says what it did to the current context, in kubectl words', () => {
    expect(contextLine(true, undefined)).toBe(`Switched to context "${HOST_CONTEXT}"`);
    expect(contextLine(true, 'prod')).toBe(`Switched to context "${HOST_CONTEXT}" (was "prod"; kplex dev down switches back)`);
    expect(contextLine(true, HOST_CONTEXT)).toBe(`"${HOST_CONTEXT}" is the current context`);
    expect(contextLine(false, 'prod')).toBe('current context is still "prod" (--switch-context=false)');
    expect(contextLine(false, undefined)).toBe('no current context (--switch-context=false)');
  });

  it('gives a simulated node both addresses, so that kwok never rewrites them, and this run\'s kubelet port', () => {
    const { status } = simulatedNodeStatus('kplex-node-2', 40123);
    expect(status.addresses).toEqual([
      { type: 'InternalIP', address: '127.0.0.1' },
      { type: 'Hostname', address: 'kplex-node-2' },
    ]);
    expect(status.daemonEndpoints).toEqual({ kubeletEndpoint: { Port: 40123 } });
  });
});
