import { CliError } from './errors.js';

/**
 * Runs `work`, failing it with `message` (exit code 130) if SIGINT or SIGTERM arrives meanwhile, so the
 * caller's cleanup runs. The signal handlers live only as long as the work.
 */
export async function unlessInterrupted<T>(work: Promise<T>, message: string): Promise<T> {
  let interrupt!: (err: Error) => void;
  const interrupted = new Promise<never>((_, reject) => (interrupt = reject));
  const handler = (): void => interrupt(new CliError(message, 130));
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
  try {
    return await Promise.race([work, interrupted]);
  } finally {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  }
}
