import { defineConfig } from 'vitest/config';

/**
 * e2e files that share one host cluster (test/e2e/helpers.ts says how to use it). The other e2e files
 * start clusters of their own: they test `dev up`/`down` itself, leader election, bad input, or stop
 * and restart a real node, and the machine runs one real node at a time.
 */
const SHARED_HOST_FILES = [
  'certificates',
  'cluster-provider',
  'gateway',
  'helm',
  'network-policy',
  'pod-access',
  'real-nodes',
  'scheduling',
  'security-attacks',
  'security-gateway',
  'security-tenants',
  'security-workloads',
  'sleep',
  'snapshot',
  'sync',
].map((name) => `test/e2e/${name}.test.ts`);

export default defineConfig({
  test: {
    // e2e suites start real Kubernetes processes; they share one machine of 2 cores, so run files one by one.
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 300_000,
    teardownTimeout: 120_000,
    // Groups run one after another, in this order: the shared host cluster starts only once the files
    // with clusters (and real nodes) of their own are done.
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'], sequence: { groupOrder: 1 } } },
      { extends: true, test: { name: 'e2e', include: ['test/e2e/**/*.test.ts'], exclude: SHARED_HOST_FILES, sequence: { groupOrder: 2 } } },
      {
        extends: true,
        test: { name: 'e2e-shared', include: SHARED_HOST_FILES, globalSetup: ['test/e2e/shared-host.setup.ts'], sequence: { groupOrder: 3 } },
      },
    ],
  },
});
