import { describe, expect, it } from 'vitest';
import { SERVICE_CIDR } from '../../src/controlplane/components.js';
import { NODE_NAME, policyAgentArgs } from '../../src/dev/node-config.js';

describe('the real node’s NetworkPolicy agent', () => {
  const args = policyAgentArgs('/data/node/kube-router.kubeconfig');
  const flag = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];

  it('runs kube-router’s policy controller alone: no routes, no service proxy (kube-proxy has it), no CNI files', () => {
    expect(flag('run-firewall')).toBe('true');
    expect(flag('run-router')).toBe('false');
    expect(flag('run-service-proxy')).toBe('false');
    expect(flag('enable-cni')).toBe('false');
  });

  it('opens no port: its health and metrics servers would listen on every interface', () => {
    expect(flag('health-port')).toBe('0');
    expect(flag('metrics-port')).toBe('0');
  });

  it('knows the node by its name and the cluster’s Service range, and reads the API with its own kubeconfig', () => {
    expect(flag('hostname-override')).toBe(NODE_NAME);
    expect(flag('service-cluster-ip-range')).toBe(SERVICE_CIDR);
    expect(flag('kubeconfig')).toBe('/data/node/kube-router.kubeconfig');
  });
});
