/**
 * Fast float16 reads for --wire float16. V8 reads Float16Array elements one by one far slower than
 * Float32Array ones, and a function that sees both kinds of array gets slower still; reading the raw bits
 * as a Uint16Array and widening them through a 65,536-entry table is a plain integer loop.
 */

let table: Float32Array | null = null;

/** float32 value of every float16 bit pattern (256 KB, built once). */
export function float16Table(): Float32Array {
  if (!table) {
    const bits = new Uint16Array(65536);
    for (let i = 0; i < bits.length; i++) bits[i] = i;
    table = new Float32Array(65536);
    table.set(new Float16Array(bits.buffer));
  }
  return table;
}

export function float16Bits(values: Float16Array): Uint16Array {
  return new Uint16Array(values.buffer, values.byteOffset, values.length);
}

/** Writes `values` as float32 into `into` (same length) and returns it. */
export function widenFloat16(
  values: Float16Array,
  into: Float32Array = new Float32Array(values.length),
): Float32Array {
  const t = float16Table();
  const bits = float16Bits(values);
  for (let i = 0; i < bits.length; i++) into[i] = t[bits[i]];
  return into;
}

/** The index of the first infinity or NaN in `values`, or -1 (all exponent bits set means not finite). */
export function firstNonFiniteFloat16(values: Float16Array): number {
  const bits = float16Bits(values);
  for (let i = 0; i < bits.length; i++) {
    if ((bits[i] & 0x7c00) === 0x7c00) return i;
  }
  return -1;
}
