/**
 * `deno task coordinator`: owns the data, the master weights, both Adam optimizers, the clock and every
 * output; waits for --workers workers, then trains. It never computes a gradient.
 */
import * as tf from "@tensorflow/tfjs";
import type { Config } from "../config/config.ts";
import { runMain } from "../config/main.ts";
import { pressHandler } from "../shared/interrupts.ts";
import { errorMessage, GantryError } from "../shared/errors.ts";
import { modelSpecs } from "../shared/models/specs.ts";
import type { ModelSpecs } from "../shared/models/types.ts";
import { expectedSizes } from "../shared/protocol.ts";
import { StepComputer } from "../shared/step.ts";
import { BatchPlan } from "./batch_plan.ts";
import { loadCheckpoint } from "./checkpoint.ts";
import { planResume } from "./resume.ts";
import { IMAGE_PIXELS, loadDataset } from "../shared/data/dataset.ts";
import { ProgressLine } from "./progress.ts";
import { createDashboard, dashboardUrl } from "./dashboard/dashboard.ts";
import { defaultRunDir, RunRecorder } from "./recorder.ts";
import { WorkerRegistry } from "./registry.ts";
import { SharedTransport } from "./shared_transport.ts";
import { masterArrays } from "./master_arrays.ts";
import { CoordinatorServer } from "./server.ts";
import { SEED_STREAMS, Trainer } from "./trainer.ts";
import { Trace } from "../shared/trace.ts";
import { EpochEvaluator, evaluationHook } from "../evaluate/epoch.ts";

export const GANTRY_VERSION = "0.1.0";
/** Room for msgpack headers and small fields around the arrays of the largest frame. */
const FRAME_HEADROOM_BYTES = 64 * 1024;

/** The largest legal frame: a task carrying both nets' weights and a full batch, with headroom. */
export function deriveMaxFrameBytes(specs: ModelSpecs, batchSize: number): number {
  const weights = 4 * (specs.generator.trainableSize + specs.discriminator.trainableSize);
  const shard = batchSize * (IMAGE_PIXELS + 2 + 4 * specs.latentDim);
  return weights + shard + 4 * specs.generator.stateSize + FRAME_HEADROOM_BYTES;
}

/** Runs a coordinator to the end of training; returns the exit code. */
export async function runCoordinator(base: Config, args: string[] = Deno.args): Promise<number> {
  const resume = base.resume ? await planResume(base.resume, args, (line) => console.log(line)) : null;
  const config = resume?.config ?? { ...base, seed: base.seed ?? Math.floor(Math.random() * 2 ** 32) };
  let progress: ProgressLine | null = null;
  const log = (line: string) => {
    progress?.breakLine();
    console.log(line);
  };
  // The coordinator only draws sample grids and writes checkpoints: the cpu backend serves, and PROD mode
  // keeps tfjs's advice to install tfjs-node (meant for compute-heavy code) out of the log.
  tf.env().set("PROD", true);
  await tf.setBackend("cpu");
  const dataset = await loadDataset({
    dataset: config.dataset,
    dataDir: config.data,
    split: "train",
    examples: config.examples,
  });
  const specs = modelSpecs(config.model, config.latentDim);
  // Loaded before anything starts, so that a missing classifier fails the run at once.
  const evaluator = config.evalEvery === undefined ? null : await EpochEvaluator.open({
    every: config.evalEvery,
    count: config.evalCount,
    dataset: config.dataset,
    classifierDir: config.evalClassifier,
    latentDim: config.latentDim,
  });
  const out = config.out ?? defaultRunDir();
  const checkpoint = resume?.checkpointDir ? await loadCheckpoint(resume.checkpointDir, specs) : null;
  const recorder = await RunRecorder.create(out, resume ? (checkpoint?.state.clock.step ?? 0) : undefined);
  const registry = new WorkerRegistry(log, config.workerHistory, config.handshakeTimeoutMs);
  const plan = new BatchPlan(dataset, config.batchSize, config.latentDim, config.seed + SEED_STREAMS.batches);
  const maxFrameBytes = config.maxFrameBytes ?? deriveMaxFrameBytes(specs, plan.batchSize);
  const record = () => ({
    // The token stays out of every file: config.json and checkpoints may be shared.
    config: { ...config, token: undefined, maxFrameBytes },
    versions: { gantry: GANTRY_VERSION, deno: Deno.version.deno, tfjs: tf.version.tfjs },
    parameters: {
      generator: specs.generator.trainableSize,
      discriminator: specs.discriminator.trainableSize,
    },
    dataset: { name: dataset.name, count: dataset.count, source: dataset.source },
    workers: registry.all.map((w) => ({
      id: w.id,
      name: w.name,
      gpu: w.gpu,
      pid: w.pid,
      backend: w.backend,
      joinedAtStep: w.joinedAtStep,
      state: w.state,
    })),
  });
  // config.json is rewritten as workers join; chained so two writes never race.
  let configWrite = recorder.writeConfig(record());
  const dashboard = config.dashboard ? await createDashboard(config, recorder, registry) : null;
  dashboard?.hub.setRun({ record: record() });
  const shareMemory = config.sharedMemory === "auto";
  const arrays = masterArrays(
    specs.generator.trainableSize,
    specs.discriminator.trainableSize,
    { lr: config.lr, beta1: config.beta1, beta2: config.beta2, epsilon: config.adamEpsilon },
    shareMemory ? config.sharedMemoryWorkers : 0,
    config.optimizerThreads,
    config.stepTimeoutMs,
  );
  const sharedTransport = shareMemory
    ? SharedTransport.start(arrays, {
      maxCount: plan.batchSize,
      latentDim: config.latentDim,
      imageBytes: IMAGE_PIXELS,
    }, log)
    : null;
  registry.onDeparted = (worker) => sharedTransport?.departed(worker);
  const server = await CoordinatorServer.start({
    host: config.host,
    port: config.port,
    maxFrameBytes,
    handshakeTimeoutMs: config.handshakeTimeoutMs,
    maxPendingConnections: config.maxPendingConnections,
    ...(config.token ? { token: config.token } : {}),
    sizes: expectedSizes(specs),
    welcome: {
      model: config.model,
      latentDim: config.latentDim,
      labelSmoothing: config.labelSmoothing,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      heartbeatTimeoutMs: config.heartbeatTimeoutMs,
      wire: config.wire,
      trace: config.trace !== undefined,
    },
    currentStep: () => plan.step + 1,
    onJoin: (w) => {
      const b = w.backend;
      const native = b.tfVersion ? ` TensorFlow ${b.tfVersion}` : "";
      log(
        `worker ${w.id} joined, from step ${w.joinedAtStep}: ${w.name} pid ${w.pid} gpu ${
          w.gpu ?? "-"
        } backend ${b.name}${native} ` +
          `devices ${b.devices.join(",")}, ${w.sharedMemory ? "shared memory" : "socket only"}${
            b.fallbackReasons.length ? ` (fell back: ${b.fallbackReasons.join("; ")})` : ""
          }`,
      );
      configWrite = configWrite.then(() => recorder.writeConfig(record()));
    },
    log,
    http: dashboard?.handler,
    ...(sharedTransport ? { sharedTransport } : {}),
    float32CheckedLater: true,
  }, registry);
  // The launcher and tests read this line to find the port (it may have been picked with --port 0).
  console.log(`gantry coordinator listening on ws://${config.host}:${server.port}`);
  if (dashboard) console.log(`gantry dashboard at ${dashboardUrl(config.host, server.port)}`);
  log(`run folder ${out}, seed ${config.seed}, waiting for ${config.workers ?? 1} worker(s)`);

  const abort = new AbortController();
  const onInterrupt = pressHandler(() => {
    log("interrupted: finishing the step in flight, then checkpointing (Ctrl-C again to quit at once)");
    abort.abort();
  }, () => Deno.exit(130));
  Deno.addSignalListener("SIGINT", onInterrupt);
  Deno.addSignalListener("SIGTERM", onInterrupt);

  const stopHeartbeats = registry.startHeartbeats(config.heartbeatIntervalMs, config.heartbeatTimeoutMs);
  const sampler = new StepComputer(specs, config.labelSmoothing);
  const trace = config.trace === undefined ? undefined : new Trace();
  trace?.nameProcess(0, "coordinator");
  let code = 1;
  try {
    await registry.waitForLive(config.workers ?? 1, config.joinTimeoutMs, abort.signal);
    progress = new ProgressLine({
      mode: config.progress,
      intervalMs: config.progressIntervalMs,
      stepsPerEpoch: plan.stepsPerEpoch,
    });
    const trainer: Trainer = new Trainer({
      config,
      arrays,
      specs,
      plan,
      registry,
      recorder,
      progress,
      sampler,
      log,
      signal: abort.signal,
      record: record(),
      resumeFrom: checkpoint?.state,
      trace,
      ...(sharedTransport ? { sharedTransport } : {}),
      evaluateEpoch: evaluator
        ? evaluationHook(evaluator, {
          sampler,
          generator: () => trainer.generator,
          recorder,
          log,
          latentDim: config.latentDim,
        })
        : undefined,
    });
    if (checkpoint) log(`resuming from ${checkpoint.dir} at step ${checkpoint.state.clock.step}`);
    dashboard?.hub.setRun({
      status: "training",
      epochs: config.epochs,
      totalSteps: trainer.totalSteps,
      stepsPerEpoch: plan.stepsPerEpoch,
      batchSize: plan.batchSize,
      record: record(),
    });
    code = await trainer.run();
    log(
      code === 0
        ? `training finished: ${plan.step} steps, outputs in ${out}`
        : `training stopped (exit ${code})`,
    );
  } catch (error) {
    log(`training failed: ${errorMessage(error)}`);
    code = error instanceof GantryError && error.code === "E_TIMEOUT" ? 3 : 1;
  } finally {
    progress?.close();
    stopHeartbeats();
    registry.stopAll(code === 0 ? "training finished" : "training stopped", code === 0 ? 0 : 1);
    await configWrite.then(() => recorder.writeConfig(record()));
    if (trace && config.trace) {
      await trace.write(config.trace);
      log(`trace of ${trace.events.length} events in ${config.trace} (open in chrome://tracing or Perfetto)`);
    }
    sampler.dispose();
    evaluator?.dispose();
    recorder.close();
    dashboard?.hub.setRun({
      status: code === 0 ? "finished" : code === 130 ? "stopped" : "failed",
      message: code === 0 ? `${plan.step} steps` : `exit ${code}`,
    });
    dashboard?.hub.close();
    await server.close();
    sharedTransport?.close();
    arrays.memory.close();
    Deno.removeSignalListener("SIGINT", onInterrupt);
    Deno.removeSignalListener("SIGTERM", onInterrupt);
  }
  return code;
}

if (import.meta.main) await runMain("coordinator", runCoordinator);
