/**
 * Assertions for the suite. jsr:@std/assert cannot be fetched on our machines, so these wrap node:assert,
 * which Deno ships, with @std/assert's names.
 */
import assert from "node:assert/strict";

export function assertEquals<T>(actual: T, expected: T, message?: string): void {
  assert.deepStrictEqual(actual, expected, message as string);
}

export function assert_(condition: unknown, message?: string): asserts condition {
  assert.ok(condition, message as string);
}
export { assert_ as assert };

/** Runs `fn`, requires it to throw an instance of `type`, and returns the error for further checks. */
export function assertThrows<E extends Error>(
  fn: () => unknown,
  type: new (...args: never[]) => E,
  includes?: string,
): E {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof type, `expected ${type.name}, got ${String(error)}`);
    if (includes) {
      assert.ok(error.message.includes(includes), `"${error.message}" should include "${includes}"`);
    }
    return error;
  }
  throw new assert.AssertionError({ message: `expected ${type.name} to be thrown` });
}

export async function assertRejects<E extends Error>(
  fn: () => Promise<unknown>,
  type: new (...args: never[]) => E,
  includes?: string,
): Promise<E> {
  try {
    await fn();
  } catch (error) {
    assert.ok(error instanceof type, `expected ${type.name}, got ${String(error)}`);
    if (includes) {
      assert.ok(error.message.includes(includes), `"${error.message}" should include "${includes}"`);
    }
    return error;
  }
  throw new assert.AssertionError({ message: `expected ${type.name} to be rejected` });
}

/** |actual - expected| <= tolerance, elementwise, with the worst index in the message. */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tolerance: number,
  what = "",
): void {
  assert.equal(actual.length, expected.length, `${what} lengths differ`);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    if (!(d <= worst)) {
      worst = d;
      at = i;
    }
  }
  assert.ok(worst <= tolerance, `${what} differs by ${worst} at ${at} (tolerance ${tolerance})`);
}

/** The largest elementwise |a - b| and how many elements differ at all (weights compared across runs). */
export function compareArrays(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
): { worst: number; differing: number } {
  assert.equal(a.length, b.length, "lengths differ");
  let worst = 0;
  let differing = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (d > 0) differing++;
    if (!(d <= worst)) worst = d;
  }
  return { worst, differing };
}

/** Rejects after `ms` (the caller's `finally` then ends whatever was still pending). */
export async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  const signal = AbortSignal.timeout(ms);
  let onAbort = () => {};
  const timedOut = new Promise<never>((_, reject) => {
    onAbort = () => reject(new Error(`${what} took longer than ${ms} ms`));
    signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return await Promise.race([promise, timedOut]);
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}
