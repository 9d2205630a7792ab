import { pino, type Logger } from 'pino';

/**
 * JSON logs, on stderr (stdout is for command output) or in `file`; KPLEX_LOG_LEVEL sets the level.
 */
export const createLogger = (name: string, file?: string): Logger =>
  pino({ name, level: process.env.KPLEX_LOG_LEVEL ?? 'info' }, pino.destination({ dest: file ?? 2, sync: false, mkdir: true }));
