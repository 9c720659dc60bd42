/**
 * Ctrl-C, told apart from its echoes: a terminal signals every process of its group, and `deno task` and the
 * launcher forward the signal as well, so one press can arrive two or three times within milliseconds.
 */

/** Interrupts closer together than this after the first are the same press. */
export const ONE_PRESS_MS = 1000;

/** A signal handler that calls `first` on the first press and `again` on any later, distinct press. */
export function pressHandler(first: () => void, again: () => void): () => void {
  let firstAt: number | null = null;
  return () => {
    const now = performance.now();
    if (firstAt === null) {
      firstAt = now;
      first();
    } else if (now - firstAt > ONE_PRESS_MS) again();
  };
}
