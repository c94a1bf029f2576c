import { InterruptedError } from '../util/errors.js';

/**
 * Run a command's work with an AbortSignal that Ctrl-C (SIGINT) or SIGTERM aborts, so waits end cleanly and
 * finished records stay on disk; the handlers are removed afterwards. Whatever the work then fails with (an
 * aborted wait, a cancelled engine request, a sandbox that was stopped), the command fails with one
 * InterruptedError naming the signal, which the CLI turns into exit status 130 (SIGINT) or 143 (SIGTERM).
 */
export async function withInterrupt<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let received: NodeJS.Signals | undefined;
  const onSignal = (name: NodeJS.Signals): void => {
    received ??= name;
    controller.abort(new InterruptedError(name));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await work(controller.signal);
  } catch (error) {
    if (received) throw error instanceof InterruptedError ? error : new InterruptedError(received, { cause: error });
    throw error;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
