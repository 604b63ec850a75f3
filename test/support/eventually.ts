// Polls a probe until it returns a value, for tests that wait on controllers.
import { setTimeout as sleep } from 'node:timers/promises';

/** Calls probe until it returns something other than undefined; throws naming what was awaited on timeout. */
export async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 60_000,
  intervalMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs / 1000}s waiting until ${what}`, { cause: lastError });
}
