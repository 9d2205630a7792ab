import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { z } from 'zod';
import { POD_SECURITY_LEVELS, podSecurityFor, type PodSecurity } from '../controlplane/pod-security.js';
import { isIP } from 'node:net';
import { parseDuration } from './tokens.js';

/** `address/bits` with an IPv4 or IPv6 address and a prefix length that fits it. */
function isCIDR(text: string): boolean {
  const m = text.match(/^([^/]+)\/(\d{1,3})$/);
  const family = m ? isIP(m[1]!) : 0;
  return family !== 0 && Number(m![2]) <= (family === 4 ? 32 : 128);
}

/**
 * The API server's default limit: above the 90 MiB an idle tenant's API server holds live (heap and
 * stacks), so an idle or lightly used tenant does not collect in a loop, and below the 150 MiB it
 * otherwise lets its heap grow to (README, "What a tenant costs"). The controller manager has none by
 * default: an idle one holds little heap, and a limit saved nothing measurable.
 */
export const DEFAULT_API_SERVER_MEMORY_LIMIT = '128Mi';

/** An absolute directory path in its plain form: no `.` or `..` segments, no doubled or trailing slash. */
const isPlainAbsolutePath = (p: string): boolean => p === '/' || (/^(\/[^/\0]+)+$/.test(p) && !p.split('/').some((s) => s === '.' || s === '..'));

const isDuration = (text: string): boolean => {
  try {
    parseDuration(text);
    return true;
  } catch {
    // Not a duration: the refinement's message says what one looks like.
    return false;
  }
};

const MEMORY_UNITS = { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 } as const;

/** Bytes of a memory size in Kubernetes' binary units (`160Mi`, `1Gi`), or undefined when it is not one. */
export function memoryBytes(quantity: string): number | undefined {
  const m = /^([1-9]\d{0,6})(Ki|Mi|Gi)$/.exec(quantity);
  return m ? Number(m[1]) * MEMORY_UNITS[m[2] as keyof typeof MEMORY_UNITS] : undefined;
}

/** Millicores of a CPU quantity (`250m`, `2`, `0.5`), or undefined when it is not one. */
export function cpuMillis(quantity: string): number | undefined {
  const milli = /^([1-9]\d{0,6})m$/.exec(quantity);
  if (milli) return Number(milli[1]);
  const cores = /^\d{1,4}(\.\d{1,3})?$/.exec(quantity);
  const millis = cores ? Math.round(Number(quantity) * 1000) : 0;
  return millis > 0 ? millis : undefined;
}

/** Below this a Go control plane component spends its time collecting: its live heap alone is larger. */
const MIN_MEMORY_LIMIT = 32 * MEMORY_UNITS.Mi;

/**
 * Go's soft memory limit (GOMEMLIMIT) of one component: near it the runtime collects more often rather
 * than grow the heap; above it the process keeps running, at up to half the machine's CPU for collection.
 */
const memoryLimit = z
  .string()
  .refine((q) => (memoryBytes(q) ?? 0) >= MIN_MEMORY_LIMIT, 'not a memory size of at least 32Mi in Ki, Mi or Gi (e.g. 160Mi, 1Gi)');

/** A tenant's configuration (the values file). Unknown keys are errors, so typos do not pass silently. */
export const TenantValues = z
  .object({
    /**
     * Isolated mode: pod security "baseline" enforced unless podSecurityStandard says otherwise (by the
     * tenant API server and the host namespace), a quota and a default-deny network policy on the host
     * namespace.
     */
    isolate: z.boolean().default(false),
    /**
     * The Pod Security Standard enforced in the tenant and on its host namespace; when absent, "baseline"
     * for an isolated tenant and "privileged" (nothing enforced) otherwise.
     */
    podSecurityStandard: z.enum(POD_SECURITY_LEVELS).optional(),
    controlPlane: z
      .object({
        /**
         * Where the control plane runs: `local` (processes beside the gateway, data in the host's etcd) or
         * `cluster` (a StatefulSet in the tenant's host namespace, data on a claim). Unset: the gateway's
         * default. It cannot change once the tenant exists (its data lives in one or the other).
         */
        provider: z.enum(['local', 'cluster']).optional(),
        /**
         * API servers and store members (etcd) of a `cluster` control plane: 3 or 5 keep it serving when
         * one pod (or node) is lost. Fixed once the tenant exists: the members know each other by name.
         */
        replicas: z.union([z.literal(1), z.literal(3), z.literal(5)]).default(1),
        /** Memory the control plane's components aim to stay within; raise it for tenants with many objects. */
        resources: z
          .object({
            apiServer: z.object({ memoryLimit: memoryLimit.default(DEFAULT_API_SERVER_MEMORY_LIMIT) }).strict().default({}),
            controllerManager: z.object({ memoryLimit: memoryLimit.optional() }).strict().default({}),
          })
          .strict()
          .default({}),
      })
      .strict()
      .default({}),
    sync: z
      .object({
        ingresses: z.object({ enabled: z.boolean().default(false) }).strict().default({}),
        /**
         * The tenant's DNS server answers the tenant's names only; with fallbackToHost, names it does not
         * have are asked of the host's cluster DNS (the host's and other tenants' Service names resolve).
         */
        dns: z.object({ fallbackToHost: z.boolean().default(false) }).strict().default({}),
        networkPolicies: z.object({ enabled: z.boolean().default(false) }).strict().default({}),
        /** The host's StorageClasses appear in the tenant, read-only there (a tenant's change is undone). */
        storageClasses: z.object({ enabled: z.boolean().default(false) }).strict().default({}),
        /** The host's PriorityClasses shown in the tenant, read-only: what its pods' priorityClassName can name. */
        priorityClasses: z.object({ enabled: z.boolean().default(false) }).strict().default({}),
        /**
         * PersistentVolumes the tenant creates go to the host (translated names), and the host volumes
         * bound to the tenant's claims appear in the tenant. A PV names storage on the host's nodes, so a
         * tenant PV may only name what the platform team lists here: volumes of these CSI drivers, and
         * `local` volumes under these directories. Everything else (hostPath above all) is refused.
         */
        persistentVolumes: z
          .object({
            enabled: z.boolean().default(false),
            csiDrivers: z.array(z.string().min(1)).default([]),
            localPathPrefixes: z.array(z.string().refine(isPlainAbsolutePath, 'not a plain absolute path (e.g. /srv/volumes/team-a)')).default([]),
          })
          .strict()
          .default({}),
        /**
         * External IPs a tenant Service may keep on the host: each node forwards traffic for them to the
         * Service, whoever owns the address (CVE-2020-8554), so none unless the platform team lists ranges.
         */
        services: z
          .object({
            externalIPs: z
              .object({ allowedCIDRs: z.array(z.string().refine(isCIDR, 'not a CIDR (e.g. 203.0.113.0/24)')).default([]) })
              .strict()
              .default({}),
          })
          .strict()
          .default({}),
        nodes: z
          .object({
            mode: z.enum(['fake', 'real', 'all']).default('real'),
            selector: z.record(z.string()).default({}),
          })
          .strict()
          .default({}),
      })
      .strict()
      .default({}),
    /**
     * Sleep: a sleeping tenant's control plane is stopped (its data kept) until the next request through
     * the gateway wakes it. `afterInactivity`: put to sleep after this long without a request (off when
     * unset; `kplex sleep` works either way). `workloads`: its pods keep running on the host while it
     * sleeps, or stop (their twins are removed, and made again from the tenant's pods on wake).
     */
    sleep: z
      .object({
        afterInactivity: z.string().refine(isDuration, 'not a duration like 90s, 30m, 2h or 1d').optional(),
        workloads: z.enum(['keep', 'stop']).default('keep'),
      })
      .strict()
      .default({}),
    quota: z
      .object({
        pods: z.number().int().positive().optional(),
        services: z.number().int().positive().optional(),
        /** CPU and memory the tenant's pods may request in all; each pod then needs requests (a LimitRange gives defaults). */
        cpu: z.string().refine((q) => cpuMillis(q) !== undefined, 'not a CPU quantity (e.g. 500m, 2)').optional(),
        memory: z.string().refine((q) => memoryBytes(q) !== undefined, 'not a memory size in Ki, Mi or Gi (e.g. 512Mi, 16Gi)').optional(),
      })
      .strict()
      .default({}),
  })
  .strict();

export type TenantValues = z.infer<typeof TenantValues>;

/**
 * The tenant's pod security, in the tenant and on the host alike: `podSecurityStandard` enforced (by
 * default "baseline" when isolated, else "privileged") with warnings about "restricted".
 */
export const podSecurityOf = (values: TenantValues): PodSecurity =>
  podSecurityFor(values.podSecurityStandard ?? (values.isolate ? 'baseline' : 'privileged'));

/** GOMEMLIMIT of the tenant's kube-apiserver and kube-controller-manager, in bytes. */
export function memoryLimitsOf(values: TenantValues): { apiServer: number; controllerManager?: number } {
  const { apiServer, controllerManager } = values.controlPlane.resources;
  return { apiServer: memoryBytes(apiServer.memoryLimit)!, ...(controllerManager.memoryLimit ? { controllerManager: memoryBytes(controllerManager.memoryLimit)! } : {}) };
}

/**
 * Why `values` cannot apply to a tenant whose control plane already runs as `status` says (provider and
 * replicas are fixed once its store holds data), or undefined. The CLI asks before storing new values;
 * the tenant controller asks again, for values stored otherwise.
 */
export function fixedAtCreation(status: { provider?: string; controlPlaneReplicas?: number } | undefined, values: TenantValues): string | undefined {
  const { provider, replicas } = values.controlPlane;
  if (status?.provider && provider && provider !== status.provider) {
    return `controlPlane.provider cannot change from "${status.provider}" to "${provider}": the tenant's data is in the first one's store`;
  }
  const made = status?.controlPlaneReplicas ?? (status?.provider ? 1 : undefined);
  if (made !== undefined && replicas !== made) {
    return `controlPlane.replicas cannot change from ${made} to ${replicas}: the store's members are fixed when it is made`;
  }
  return undefined;
}

export class ValuesError extends Error {}

/** Validates values; every problem is named by its path, e.g. `sync.nodes.mode: Invalid enum value`. */
export function parseValues(input: unknown, source = 'values'): TenantValues {
  const result = TenantValues.safeParse(input ?? {});
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`);
    throw new ValuesError(`${source}: ${problems.join('; ')}`);
  }
  return result.data;
}

export function readValuesFile(file: string): TenantValues {
  let parsed: unknown;
  try {
    parsed = YAML.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ValuesError(`${file}: ${(err as Error).message.split('\n')[0]}`);
  }
  return parseValues(parsed, file);
}
