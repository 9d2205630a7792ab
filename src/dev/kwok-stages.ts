import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';

/**
 * kwok's own pod stages make a pod Ready once, while it is Pending. When the node lifecycle controller
 * marks the pods of a node it thought gone as not Ready (it flips only the Ready condition), nothing set
 * them Ready again, so Services lost them for good. A kubelet reports its running containers Ready again;
 * this stage does the same for simulated pods.
 */
const podReadyAgain = {
  apiVersion: 'kwok.x-k8s.io/v1alpha1',
  kind: 'Stage',
  metadata: { name: 'kplex-pod-ready-again' },
  spec: {
    resourceRef: { apiGroup: 'v1', kind: 'Pod' },
    selector: {
      matchExpressions: [
        { key: '.metadata.deletionTimestamp', operator: 'DoesNotExist' },
        { key: '.status.phase', operator: 'In', values: ['Running'] },
        { key: '.status.conditions.[] | select( .type == "Ready" ) | .status', operator: 'NotIn', values: ['True'] },
      ],
    },
    next: {
      // Pod conditions merge by type: only these two change.
      statusTemplate: [
        '{{ $now := Now }}',
        'conditions:',
        '- lastTransitionTime: {{ $now | Quote }}',
        '  status: "True"',
        '  type: Ready',
        '- lastTransitionTime: {{ $now | Quote }}',
        '  status: "True"',
        '  type: ContainersReady',
        '',
      ].join('\n'),
    },
  },
};

/** Writes kplex's kwok stages beside kwok's own (see k8s-binaries.sh); returns the file for kwok's --config. */
export async function writeKwokStages(dataDir: string): Promise<string> {
  const dir = path.join(dataDir, 'kwok');
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, 'stages.yaml');
  await writeFile(file, YAML.stringify(podReadyAgain));
  return file;
}
