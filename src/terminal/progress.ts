export const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)}s`;

/**
 * Runs one step of a longer operation and ends it with the step's time, so users see where time goes:
 * a spinner on a terminal, one plain line per finished step otherwise (logs, CI, a detached supervisor).
 */
export async function step<T>(text: string, run: () => Promise<T>, detail?: (result: T) => string): Promise<T> {
  // The spinner library is loaded only where a spinner shows.
  const spinner = process.stderr.isTTY ? (await import('ora')).default({ text, stream: process.stderr }).start() : undefined;
  const begin = Date.now();
  const line = (ok: boolean, extra: string) => {
    const msg = `${text} (${ok ? '' : 'failed after '}${seconds(Date.now() - begin)}${extra})`;
    if (!spinner) console.error(`${ok ? '✓' : '✗'} ${msg}`);
    else if (ok) spinner.succeed(msg);
    else spinner.fail(msg);
  };
  try {
    const result = await run();
    line(true, detail ? `, ${detail(result)}` : '');
    return result;
  } catch (err) {
    line(false, '');
    throw err;
  }
}
