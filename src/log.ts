import { pino, type Logger } from 'pino';

/** JSON logs on stderr (stdout is for command output); KPLEX_LOG_LEVEL sets the level. */
export const createLogger = (name: string): Logger =>
  pino({ name, level: process.env.KPLEX_LOG_LEVEL ?? 'info' }, pino.destination({ dest: 2, sync: false }));
