import ora from 'ora';

export const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)}s`;

/**
 * Runs one step of a longer operation with a spinner on a terminal (a plain line otherwise) and ends it
 * with the step's time, so users see where time goes.
 */
export async function step<T>(text: string, run: () => Promise<T>, detail?: (result: T) => string): Promise<T> {
  const spinner = ora({ text, stream: process.stderr, isEnabled: process.stderr.isTTY === true });
  spinner.start();
  const begin = Date.now();
  try {
    const result = await run();
    const extra = detail ? `, ${detail(result)}` : '';
    spinner.succeed(`${text} (${seconds(Date.now() - begin)}${extra})`);
    return result;
  } catch (err) {
    spinner.fail(`${text} (failed after ${seconds(Date.now() - begin)})`);
    throw err;
  }
}
