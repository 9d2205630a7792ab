import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import type { TokenVerifier, UserInfo } from './authenticate.js';
import type { Authorizer } from './authorize.js';
import type { Backend, Backends } from './backends.js';
import type { Forward, Router } from './forward.js';
import type { Identity } from './identity.js';
import type { InFlight, Release } from './limits.js';
import type { GatewayMetrics } from './metrics.js';
import type { AdmittedWrite, InlineMirror } from './mirror.js';
import type { RequestInfo, ResourceRequestInfo } from './request-info.js';
import type { Activity } from './activity.js';
import type { Waker } from './wake.js';

/** What the stages work with: made once per gateway. */
export interface Deps {
  verifier: TokenVerifier;
  authorizer: Authorizer;
  mirror: InlineMirror;
  backends: Backends;
  router: Router;
  metrics: GatewayMetrics;
  inFlight: InFlight;
  waker: Waker;
  activity: Activity;
  log: Logger;
}

/** What the metrics and the log learn about a request as it passes the stages. */
export interface Trace {
  /** Set only once a token for the tenant was verified: unauthenticated callers make no new series. */
  tenant: string;
  verb?: string;
  longRunning: boolean;
  release?: Release;
}

// The request context after each stage: a stage placed before what it needs does not compile.

export interface Incoming {
  req: IncomingMessage;
  trace: Trace;
  /** The request asks for a protocol upgrade (exec, attach, port-forward): its body is the socket's. */
  upgrade?: boolean;
}
/** After authenticate: the tenant and the user its token names. */
export interface Authenticated extends Incoming {
  tenant: string;
  /** The URL below /tenants/NAME: what the tenant's API server is asked. */
  path: string;
  user: UserInfo;
}
/** After request info: verb, resource, namespace, name, as kube-apiserver computes them. */
export interface Described extends Authenticated {
  info: RequestInfo;
}
/** After wake: the tenant's API server, running (woken first if the tenant slept). */
export interface Awake extends Described {
  backend: Backend;
}
/** After authorize: who the tenant sees (the token's user, or whom it may impersonate). */
export interface Authorized extends Awake {
  identity: Identity;
}
/**
 * After admit: the request holds its in-flight slot (released with the request, see Trace); a write of
 * a mirrored kind was judged where the host is asked first, and carries its body, read once.
 */
export interface Admitted extends Authorized {
  write?: AdmittedWrite;
}

export type Route =
  | { to: 'tenant' }
  | { to: 'host'; forward: Forward }
  | { to: 'mirror'; write: AdmittedWrite; info: ResourceRequestInfo }
  | { to: 'review' };
/** After route: where the request is forwarded. */
export interface Routed extends Admitted {
  route: Route;
}
