import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { leakyRelu } from "../shared/models/pointwise.ts";
import { assert, assertClose, assertEquals, assertThrows } from "../shared/testing.ts";
import { parseBenchArgs } from "./args.ts";
import { profileKernels } from "./profile.ts";
import { BenchLoop } from "./trainer_loop.ts";

await tf.setBackend("cpu");

Deno.test("parseBenchArgs() has the issue's defaults and rejects bad values naming the flag", () => {
  const args = parseBenchArgs([])!;
  assertEquals([args.model, args.batchSize, args.backend, args.profile], ["cdcgan", 64, "tensorflow", false]);
  assertEquals(args.threads, undefined);
  const given = parseBenchArgs([
    "--model",
    "mlp",
    "--steps",
    "7",
    "--backend",
    "wasm",
    "--threads",
    "1",
    "--profile",
  ])!;
  assertEquals([given.model, given.steps, given.backend, given.threads, given.profile], [
    "mlp",
    7,
    "wasm",
    1,
    true,
  ]);
  assertEquals(parseBenchArgs(["--help"]), null);
  assertThrows(() => parseBenchArgs(["--steps", "0"]), RangeError, "--steps must be an integer >= 1");
  assertThrows(() => parseBenchArgs(["--backend", "gpu"]), RangeError, "--backend must be one of");
  assertThrows(() => parseBenchArgs(["--batch-size", "2.5"]), RangeError, "--batch-size");
  assertThrows(() => parseBenchArgs(["--nope"]), TypeError);
});

Deno.test("BenchLoop runs whole steps (phases, Adam, weight installs) with flat tf.memory()", () => {
  const loop = new BenchLoop("mlp", 2, 1);
  const before = tf.memory();
  const first = loop.step();
  const second = loop.step();
  assert([first.lossD, first.lossG, second.lossD, second.lossG].every(Number.isFinite), "finite losses");
  assert(first.lossD !== second.lossD, "Adam moved D between the steps");
  assertEquals(tf.memory().numTensors, before.numTensors, "tensors after two steps");
  assertEquals(tf.memory().numBytes, before.numBytes, "bytes after two steps");
  for (const part of ["dPhase", "gPhase", "adam", "setWeights"] as const) {
    assert(loop.wall[part] > 0, `${part} is timed`);
  }
  loop.resetTimes();
  assertEquals(loop.wall.dPhase, 0);
  loop.dispose();
});

Deno.test("profileKernels() sums kernels by name, a composite's self time excluding its inner kernels", async () => {
  const x = tf.ones([256, 256]);
  // A custom op runs its forward pass as a kernel of its own around the inner LeakyRelu kernel.
  const profile = await profileKernels(() => {
    tf.tidy(() => tf.sum(leakyRelu(tf.matMul(x, x), 0.2)));
  });
  const byName = new Map(profile.kernels.map((k) => [k.name, k]));
  for (const name of ["BatchMatMul", "LeakyRelu", "Sum"]) assert(byName.has(name), `${name} is listed`);
  const inner = byName.get("LeakyRelu")!;
  const composite = profile.kernels.find((k) => k.totalMs > k.selfMs)!;
  assert(composite !== undefined && composite.totalMs >= inner.totalMs, "the custom op contains LeakyRelu");
  assertClose([composite.selfMs + inner.totalMs], [composite.totalMs], 1e-6, "self = total - inner");
  const selfSum = profile.kernels.reduce((sum, k) => sum + k.selfMs, 0);
  assertClose([profile.kernelMs], [selfSum], 1e-6, "kernel time is the sum of self times");
  const byShape = await profileKernels(() => {
    tf.tidy(() => tf.matMul(x, x));
  }, true);
  assert(byShape.kernels.some((k) => k.name === "BatchMatMul [256,256] [256,256]"), "per-shape rows");
  x.dispose();
});
