import { assertEquals } from "./testing.ts";
import { firstNonFiniteFloat16, widenFloat16 } from "./float16.ts";
import { assertFinite } from "./protocol.ts";
import { GantryError } from "./errors.ts";

Deno.test("widenFloat16() gives every float16 bit pattern its exact float32 value", () => {
  const bits = new Uint16Array(65536);
  for (let i = 0; i < bits.length; i++) bits[i] = i;
  const half = new Float16Array(bits.buffer);
  const wide = widenFloat16(half);
  for (let i = 0; i < bits.length; i++) {
    if (!Object.is(wide[i], half[i]) && !(Number.isNaN(wide[i]) && Number.isNaN(half[i]))) {
      throw new Error(`bits ${i.toString(16)}: ${wide[i]} vs ${half[i]}`);
    }
  }
});

Deno.test("float16 values that are not finite are found by their bits, and refused as E_BAD_VALUES", () => {
  const values = new Float16Array([1, -2, 65504, 6e-8, -0]);
  assertEquals(firstNonFiniteFloat16(values), -1);
  assertFinite(values, "ok");
  for (const bad of [Infinity, -Infinity, NaN]) {
    const spoiled = values.slice();
    spoiled[3] = bad;
    assertEquals(firstNonFiniteFloat16(spoiled), 3);
    let code = "";
    try {
      assertFinite(spoiled, "grads");
    } catch (error) {
      code = (error as GantryError).code;
    }
    assertEquals(code, "E_BAD_VALUES");
  }
});
