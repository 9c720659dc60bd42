/**
 * The worker backends the end-to-end tests train on. GANTRY_TEST_BACKEND picks the one of the general
 * end-to-end tests (default wasm: portable, and faster than cpu); the exactness test runs on every backend
 * of TRAINING_BACKENDS, each skipped with its reason when it cannot load here.
 */
import { nativeBindingMissing } from "../shared/backends/tfjs_node_package.ts";

const CHOICES = ["tensorflow", "wasm", "cpu"];
const chosen = Deno.env.get("GANTRY_TEST_BACKEND") ?? "wasm";
if (!CHOICES.includes(chosen)) {
  throw new Error(`GANTRY_TEST_BACKEND must be one of ${CHOICES.join(", ")}: "${chosen}"`);
}
export const TEST_BACKEND = chosen;

const NATIVE_MISSING = nativeBindingMissing();
if (NATIVE_MISSING) console.warn(`tests on the tensorflow backend are skipped: ${NATIVE_MISSING}`);

export const TRAINING_BACKENDS: Array<{ name: string; ignore: boolean }> = [
  { name: "tensorflow", ignore: NATIVE_MISSING !== undefined },
  { name: "wasm", ignore: false },
];
