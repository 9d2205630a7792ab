import { once } from 'node:events';

/** Resolves on the first SIGINT or SIGTERM: how a long-running command (dev up, gateway) knows to stop. */
export const termination = (): Promise<unknown> => Promise.race([once(process, 'SIGINT'), once(process, 'SIGTERM')]);
