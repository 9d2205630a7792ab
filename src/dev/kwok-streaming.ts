import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';

/**
 * kwok answers logs/exec/attach/port-forward for simulated pods only as configured. In the embedded
 * cluster every pod's log is one file, exec runs the command on this machine in a scratch folder (kwok's
 * "local" exec: a development convenience, never a production setup), attach follows the log, and a
 * port-forward is an echo (`cat`), so all four paths work end to end through real API servers.
 */
export async function writeKwokStreamingConfig(dataDir: string): Promise<string> {
  const dir = path.join(dataDir, 'kwok');
  const workDir = path.join(dir, 'exec');
  await mkdir(workDir, { recursive: true });
  const logsFile = path.join(dir, 'container.log');
  await writeFile(
    logsFile,
    [
      '2026-01-01T00:00:00.000000000Z stdout F kplex: simulated container started',
      '2026-01-01T00:00:01.000000000Z stdout F kplex: serving on :80',
      '',
    ].join('\n'),
  );
  const docs = [
    { apiVersion: 'kwok.x-k8s.io/v1alpha1', kind: 'ClusterLogs', metadata: { name: 'kplex-logs' }, spec: { logs: [{ logsFile, previousLogsFile: logsFile, follow: true }] } },
    { apiVersion: 'kwok.x-k8s.io/v1alpha1', kind: 'ClusterAttach', metadata: { name: 'kplex-attach' }, spec: { attaches: [{ logsFile }] } },
    { apiVersion: 'kwok.x-k8s.io/v1alpha1', kind: 'ClusterExec', metadata: { name: 'kplex-exec' }, spec: { execs: [{ local: { workDir } }] } },
    { apiVersion: 'kwok.x-k8s.io/v1alpha1', kind: 'ClusterPortForward', metadata: { name: 'kplex-port-forward' }, spec: { forwards: [{ command: ['cat'] }] } },
  ];
  const file = path.join(dir, 'streaming.yaml');
  await writeFile(file, docs.map((d) => YAML.stringify(d)).join('---\n'));
  return file;
}
