/**
 * The worker backend the end-to-end tests use: GANTRY_TEST_BACKEND, or wasm (portable, and faster than
 * the cpu backend). CI runs the suite on tensorflow and on wasm.
 */
const CHOICES = ["tensorflow", "wasm", "cpu"];
const chosen = Deno.env.get("GANTRY_TEST_BACKEND") ?? "wasm";
if (!CHOICES.includes(chosen)) {
  throw new Error(`GANTRY_TEST_BACKEND must be one of ${CHOICES.join(", ")}: "${chosen}"`);
}
export const TEST_BACKEND = chosen;
