import type { ServerResponse } from 'node:http';

/** The reasons kube-apiserver uses in metav1.Status (k8s.io/apimachinery/pkg/apis/meta/v1, StatusReason). */
export type StatusReason =
  | 'BadRequest'
  | 'Unauthorized'
  | 'Forbidden'
  | 'NotFound'
  | 'AlreadyExists'
  | 'Conflict'
  | 'Invalid'
  | 'RequestEntityTooLarge'
  | 'ServiceUnavailable'
  | 'MethodNotAllowed'
  | 'InternalError'
  | 'Timeout'
  | 'TooManyRequests';

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  causes?: { reason?: string; message: string; field?: string }[];
  /** With 429: when to try again; also sent as the Retry-After header, as kube-apiserver does. */
  retryAfterSeconds?: number;
}

/** A Kubernetes `Status` object, the one error body every Kubernetes client understands. */
export interface Status {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure';
  message: string;
  reason: StatusReason;
  details?: StatusDetails;
  code: number;
}

/** An error that is answered as a Kubernetes `Status`; the gateway's only error currency. */
export class StatusError extends Error {
  constructor(
    readonly code: number,
    readonly reason: StatusReason,
    message: string,
    readonly details?: StatusDetails,
  ) {
    super(message);
    this.name = 'StatusError';
  }

  toStatus(): Status {
    return {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: this.message,
      reason: this.reason,
      ...(this.details ? { details: this.details } : {}),
      code: this.code,
    };
  }

  /** Builds an error from a Status body another API server answered with. */
  static fromStatus(body: unknown, fallbackCode: number): StatusError {
    const s = body as Partial<Status> | undefined;
    if (s && s.kind === 'Status' && typeof s.message === 'string') {
      return new StatusError(s.code ?? fallbackCode, (s.reason ?? 'InternalError') as StatusReason, s.message, s.details);
    }
    return new StatusError(fallbackCode, 'InternalError', `unexpected answer (HTTP ${fallbackCode})`);
  }
}

export const unauthorized = (why: string): StatusError => new StatusError(401, 'Unauthorized', `Unauthorized: ${why}`);

export const badRequest = (message: string): StatusError => new StatusError(400, 'BadRequest', message);

export const notFound = (resource: string, name: string): StatusError =>
  new StatusError(404, 'NotFound', `${resource} "${name}" not found`, { name, kind: resource });

export const entityTooLarge = (limit: number): StatusError =>
  new StatusError(413, 'RequestEntityTooLarge', `Request entity too large: limit is ${limit} bytes`);

export const tenantUnavailable = (tenant: string, why: string): StatusError =>
  new StatusError(503, 'ServiceUnavailable', `the control plane of tenant "${tenant}" is unavailable: ${why}`);

export const forbidden = (message: string, details?: StatusDetails): StatusError => new StatusError(403, 'Forbidden', message, details);

/** kube-apiserver's answer when its max-in-flight limit is reached (k8s.io/apiserver filters/maxinflight.go). */
export const tooManyRequests = (why: string, retryAfterSeconds = 1): StatusError =>
  new StatusError(429, 'TooManyRequests', `Too many requests, please try again later: ${why}`, { retryAfterSeconds });

export const internalError = (why: string): StatusError =>
  new StatusError(500, 'InternalError', `Internal error occurred: ${why}`);

/** Writes a Status as the whole answer; used by every stage that ends a request early. */
export function writeStatus(res: ServerResponse, err: StatusError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(err.toStatus());
  res.writeHead(err.code, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-cache, private',
    ...(err.details?.retryAfterSeconds ? { 'retry-after': String(err.details.retryAfterSeconds) } : {}),
  });
  res.end(body);
}
