import type { KubeObject } from '../k8s/client.js';
import { StatusError } from '../k8s/status.js';
import type { Translator } from './translate.js';

/**
 * The host API server refused a twin for what it is (quota, pod security, validation): retrying at
 * once will not change that, and the tenant's user should be told, with the tenant's names.
 */
export class HostRefused extends StatusError {
  constructor(err: StatusError, t: Translator, twin: KubeObject, origin: KubeObject) {
    const [hostName, name] = [twin.metadata.name!, origin.metadata.name!];
    const details = err.details?.name === hostName ? { ...err.details, name } : err.details;
    const message = err.message.split(hostName).join(name).split(t.hostNamespace).join(origin.metadata.namespace ?? '');
    super(err.code, err.reason, message, details);
  }
}

const REFUSALS = new Set([400, 403, 422]);

/** Whether the host answered that it will not take an object as it is (rather than failing to answer). */
export const isRefusal = (err: unknown): err is StatusError => err instanceof StatusError && REFUSALS.has(err.code);
