/**
 * `deno task bench`: the per-core speed of one worker's training step, without the network (see
 * trainer_loop.ts for exactly what a step includes). Prints tf.memory() before the first step and after the
 * last, the time per step and per part, and last `N img/s` over the timed steps; with --profile, the
 * kernels that took the most time over a few more steps.
 *
 *   deno task bench --model mlp --batch-size 64 --steps 200 --backend tensorflow --threads 1 --profile
 */
import process from "node:process";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../shared/backends/select.ts";
import { BENCH_HELP, type BenchArgs, parseBenchArgs } from "./args.ts";
import { profileKernels } from "./profile.ts";
import { BenchLoop, type StepParts } from "./trainer_loop.ts";

/** tf.memory()'s counts, and the process's resident memory, which also sees native and wasm heaps. */
function memoryLine(when: string): string {
  const { numTensors, numBytes } = tf.memory();
  const rssMb = (Deno.memoryUsage().rss / 2 ** 20).toFixed(0);
  return `tf.memory() ${when}: numTensors ${numTensors}, numBytes ${numBytes}; process RSS ${rssMb} MB`;
}

function cpuSeconds(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

/** Where a step's time goes, per step, and the rate of the worker's part alone (no coordinator Adam). */
function partsLine(what: string, parts: StepParts, steps: number, batch: number): string {
  const ms = (value: number) => (value / steps).toFixed(1);
  const worker = parts.dPhase + parts.gPhase + parts.setWeights;
  return `  ${what}: D phase ${ms(parts.dPhase)} ms, G phase ${ms(parts.gPhase)} ms, ` +
    `weight installs ${ms(parts.setWeights)} ms, coordinator's Adam ${ms(parts.adam)} ms; ` +
    `worker alone ${(batch * steps / (worker / 1000)).toFixed(1)} img/s`;
}

async function printProfile(loop: BenchLoop, args: BenchArgs): Promise<void> {
  const profile = await profileKernels(() => {
    for (let i = 0; i < args.profileSteps; i++) loop.step();
  }, args.profileShapes);
  const perStep = (ms: number) => (ms / args.profileSteps).toFixed(2).padStart(8);
  const width = args.profileShapes ? 64 : 28;
  console.log(
    `profile over ${args.profileSteps} more steps, per step: kernels ${perStep(profile.kernelMs)} ms of ` +
      `${perStep(profile.wallMs)} ms wall (profiling slows the step down)`,
  );
  console.log(
    `  ${"kernel".padEnd(width)} ${"calls".padStart(6)} ${"self ms".padStart(8)} ${"total ms".padStart(8)}`,
  );
  for (const k of profile.kernels.slice(0, args.profileTop)) {
    console.log(
      `  ${(k.name || "(custom op)").padEnd(width)} ${String(k.calls / args.profileSteps).padStart(6)} ` +
        `${perStep(k.selfMs)} ${perStep(k.totalMs)}`,
    );
  }
}

async function main(): Promise<number> {
  let args: BenchArgs | null;
  try {
    args = parseBenchArgs(Deno.args);
  } catch (error) {
    console.error(`bench: ${(error as Error).message}\n\n${BENCH_HELP}`);
    return 2;
  }
  if (args === null) {
    console.log(BENCH_HELP);
    return 0;
  }
  const backend = await initBackend({ backend: args.backend, threads: args.threads, log: console.error });
  const loop = new BenchLoop(args.model, args.batchSize, args.seed);
  const tfVersion = backend.tfVersion ? ` (TensorFlow ${backend.tfVersion})` : "";
  console.log(
    `bench: ${args.model}, batch ${args.batchSize}, backend ${backend.name}${tfVersion}, ` +
      `threads ${args.threads ?? "default"}, ${args.warmup} warm-up + ${args.steps} timed steps`,
  );
  console.log(memoryLine("before the first step"));
  for (let i = 0; i < args.warmup; i++) loop.step();
  // Allocators (TensorFlow's, the wasm heap) grow to their working size in the first steps.
  if (args.warmup > 0) console.log(memoryLine(`after ${args.warmup} warm-up steps`));
  loop.resetTimes();
  const started = performance.now();
  const cpuStarted = cpuSeconds();
  let losses = { lossD: NaN, lossG: NaN };
  for (let i = 0; i < args.steps; i++) losses = loop.step();
  const seconds = (performance.now() - started) / 1000;
  const cpu = cpuSeconds() - cpuStarted;
  console.log(memoryLine(`after ${args.warmup + args.steps} steps`));
  console.log(`last losses: D ${losses.lossD.toFixed(4)}, G ${losses.lossG.toFixed(4)}`);
  // The process's CPU time (all its threads): on a shared machine it moves much less than wall time.
  const images = args.batchSize * args.steps;
  console.log(
    `per step: ${(1000 * seconds / args.steps).toFixed(1)} ms wall, ${
      (1000 * cpu / args.steps).toFixed(1)
    } ms ` +
      `process CPU (${(images / cpu).toFixed(1)} img per CPU-second)`,
  );
  console.log(partsLine("wall", loop.wall, args.steps, args.batchSize));
  console.log(partsLine("CPU ", loop.cpu, args.steps, args.batchSize));
  if (args.profile) await printProfile(loop, args);
  loop.dispose();
  // The number the issue asks for, last, so that scripts can take the last line.
  console.log(`${(images / seconds).toFixed(1)} img/s`);
  return 0;
}

Deno.exit(await main());
