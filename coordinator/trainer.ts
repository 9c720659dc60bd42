/**
 * The training loop of the coordinator: draws each step, shards it over the live workers, averages their
 * gradient sums over the global batch, applies Adam to the master weights, and records the step. A phase
 * whose worker fails is re-sharded over the workers that remain and redone, so no batch is lost or doubled.
 */
import type { Config } from "../config/config.ts";
import { encodeGridPng } from "../shared/images/grid.ts";
import { initialWeights } from "../shared/models/specs.ts";
import type { ModelSpecs, NetWeights } from "../shared/models/types.ts";
import { type Phase, PROTOCOL_VERSION, type ResultMessage, type TaskMessage } from "../shared/protocol.ts";
import { Rng } from "../shared/rng.ts";
import type { StepComputer } from "../shared/step.ts";
import { Adam } from "./adam.ts";
import { aggregateGradients, shardSizes, sumBatchNormSums } from "./aggregate.ts";
import { type BatchPlan, shardDraw, type StepDraw } from "./batch_plan.ts";
import { saveCheckpoint, type TrainingState } from "./checkpoint.ts";
import { writeLossPlots } from "./plots.ts";
import { writeProgressGif } from "../shared/images/gif.ts";
import type { ProgressLine } from "./progress.ts";
import type { MetricsLine, RunRecorder } from "./recorder.ts";
import type { WorkerHandle, WorkerRegistry } from "./registry.ts";
import { GantryError } from "../shared/errors.ts";
import { join } from "node:path";

/** Offsets added to the run's seed so weights, batches and the fixed sample noise are independent streams. */
export const SEED_STREAMS = { weights: 0, batches: 1, sampleNoise: 2 } as const;
const GRID_SIDE = 10;
const MB = 1024 * 1024;

/** A phase's results, and the backend of the worker behind each. */
interface PhaseRun {
  results: ResultMessage[];
  backends: string[];
}

export interface TrainerParts {
  config: Config & { seed: number };
  specs: ModelSpecs;
  plan: BatchPlan;
  registry: WorkerRegistry;
  recorder: RunRecorder;
  progress: ProgressLine;
  /** The coordinator's own compute, used only to draw the sample grids. */
  sampler: StepComputer;
  log: (line: string) => void;
  /** Aborted on Ctrl-C: the loop ends after the step in flight and checkpoints. */
  signal: AbortSignal;
  /** The resolved configuration, written into each checkpoint. */
  record: unknown;
  /** A checkpoint's state to continue from (--resume). */
  resumeFrom?: TrainingState;
}

export class Trainer {
  readonly parts: TrainerParts;
  generator: NetWeights;
  discriminator: NetWeights;
  readonly adamG: Adam;
  readonly adamD: Adam;
  readonly totalSteps: number;
  #gradG: Float32Array;
  #gradD: Float32Array;
  #fixedNoise: Float32Array;

  constructor(parts: TrainerParts) {
    this.parts = parts;
    const { config, specs, plan } = parts;
    const rng = new Rng(config.seed + SEED_STREAMS.weights);
    this.generator = initialWeights(specs.generator, rng);
    this.discriminator = initialWeights(specs.discriminator, rng);
    const adam = { lr: config.lr, beta1: config.beta1, beta2: config.beta2, epsilon: config.adamEpsilon };
    this.adamG = new Adam(specs.generator.trainableSize, adam);
    this.adamD = new Adam(specs.discriminator.trainableSize, adam);
    this.#gradG = new Float32Array(specs.generator.trainableSize);
    this.#gradD = new Float32Array(specs.discriminator.trainableSize);
    const allSteps = config.epochs * plan.stepsPerEpoch;
    this.totalSteps = config.maxSteps ? Math.min(config.maxSteps, allSteps) : allSteps;
    if (parts.resumeFrom) {
      const r = parts.resumeFrom;
      this.generator = { trainable: r.generator.trainable.slice(), state: r.generator.state.slice() };
      this.discriminator = {
        trainable: r.discriminator.trainable.slice(),
        state: r.discriminator.state.slice(),
      };
      this.adamG.restore(r.adamG);
      this.adamD.restore(r.adamD);
      plan.restore(r.clock);
    }
    const noiseRng = new Rng(config.seed + SEED_STREAMS.sampleNoise);
    this.#fixedNoise = noiseRng.fillNormal(new Float32Array(GRID_SIDE * specs.latentDim));
  }

  /** Trains until the last step or an abort; returns the process exit code. */
  async run(): Promise<number> {
    const { plan, recorder, progress, log, signal, config } = this.parts;
    log(
      `training ${config.model} on ${plan.dataset.count} examples: ${this.totalSteps} steps of ${plan.batchSize} ` +
        `(${plan.stepsPerEpoch} per epoch, ${config.epochs} epochs)`,
    );
    // A step-0 checkpoint: a coordinator killed during its first real checkpoint still leaves one to resume.
    if (plan.step === 0) await this.#checkpoint();
    while (plan.step < this.totalSteps) {
      if (signal.aborted) {
        await this.#checkpoint();
        log(
          `stopped at step ${plan.step}, checkpointed in ${
            join(recorder.dir, "checkpoints")
          }; continue with ` +
            `deno task train --resume ${recorder.dir}`,
        );
        return 130;
      }
      const started = performance.now();
      const draw = plan.next();
      const epoch = plan.epoch;
      const step = plan.step;

      // (1) Update D: maximize log D(x) + log(1 - D(G(z))), averaged over the global batch.
      const dRun = await this.#runPhase(step, "D", draw);
      const d = aggregateGradients(dRun.results, this.#gradD);
      this.adamD.apply(this.discriminator.trainable, this.#gradD);

      // (2) Update G through the updated D: maximize log D(G(z')) (non-saturating loss), fresh z' and labels.
      const gRun = await this.#runPhase(step, "G", draw);
      const g = aggregateGradients(gRun.results, this.#gradG);
      this.adamG.apply(this.generator.trainable, this.#gradG);
      this.#updateBatchNormStats(gRun.results, draw.count);

      const stepMs = performance.now() - started;
      const memory = Deno.memoryUsage();
      const line: MetricsLine = {
        epoch,
        step,
        lossD: d.loss,
        lossG: g.loss,
        dReal: d.realScore,
        dFakeD: d.fakeScore,
        dFakeG: g.fakeScore,
        imagesPerSec: draw.count / (stepMs / 1000),
        workers: Math.min(dRun.results.length, gRun.results.length),
        backends: gRun.backends,
        stepMs,
        computeMs: d.maxComputeMs + g.maxComputeMs,
        heapMb: memory.heapUsed / MB,
        rssMb: memory.rss / MB,
        time: new Date().toISOString(),
      };
      recorder.appendMetrics(line);
      const last = step === this.totalSteps;
      progress.update({
        epoch,
        epochs: config.epochs,
        step,
        totalSteps: this.totalSteps,
        batchSize: draw.count,
        lossD: line.lossD,
        lossG: line.lossG,
        imagesPerSec: line.imagesPerSec,
        workers: line.workers,
      }, plan.epochDone || last);
      if (plan.epochDone || last) {
        progress.breakLine();
        const samples = await recorder.writeSamples(epoch, this.#sampleGrid());
        // Once an epoch, not per step: rendering takes up to a second or two.
        await writeLossPlots(recorder.dir);
        await writeProgressGif(recorder.dir);
        const folder = await this.#checkpoint();
        log(`epoch ${epoch} done at step ${step}: samples ${samples}, checkpoint ${folder}`);
      } else if (config.checkpointEvery && step % config.checkpointEvery === 0) {
        await this.#checkpoint();
      }
    }
    return 0;
  }

  /** Runs one phase over the live workers, redoing it over the survivors when a worker fails. */
  async #runPhase(step: number, phase: Phase, draw: StepDraw): Promise<PhaseRun> {
    const { registry, config, log } = this.parts;
    let lastError = "";
    for (let attempt = 1; attempt <= config.phaseAttempts; attempt++) {
      const workers = await registry.waitForLive(1, config.joinTimeoutMs, this.parts.signal);
      const sizes = shardSizes(draw.count, workers.length);
      const shards = shardDraw(draw, sizes, config.latentDim);
      const settled = await Promise.allSettled(
        shards.map((shard, i) =>
          workers[i].request(this.#task(workers[i], step, phase, shard), config.stepTimeoutMs)
        ),
      );
      const failed = settled.filter((s): s is PromiseRejectedResult => s.status === "rejected");
      if (failed.length === 0) {
        return {
          results: settled.map((s) => (s as PromiseFulfilledResult<ResultMessage>).value),
          backends: workers.map((w) => w.backend.name),
        };
      }
      lastError = failed.map((f) => String(f.reason?.message ?? f.reason)).join("; ");
      log(`step ${step} phase ${phase}: ${failed.length} worker(s) failed (${lastError}); redoing it`);
    }
    throw new GantryError(
      "E_CLOSED",
      `step ${step} phase ${phase} failed ${config.phaseAttempts} times: ${lastError}`,
    );
  }

  #task(worker: WorkerHandle, step: number, phase: Phase, shard: StepDraw): TaskMessage {
    const gVersion = this.adamG.step;
    const dVersion = this.adamD.step;
    const task: TaskMessage = {
      type: "task",
      version: PROTOCOL_VERSION,
      step,
      phase,
      generatorVersion: gVersion,
      discriminatorVersion: dVersion,
      count: shard.count,
      z: phase === "D" ? shard.dZ : shard.gZ,
      labels: phase === "D" ? shard.dLabels : shard.gLabels,
    };
    // Weights travel only to workers whose copy is stale (msgpack has no undefined: leave the keys out).
    if (worker.generatorVersion !== gVersion) task.generator = this.generator.trainable;
    if (worker.discriminatorVersion !== dVersion) task.discriminator = this.discriminator.trainable;
    if (phase === "D") {
      task.real = shard.real;
      task.realLabels = shard.realLabels;
    }
    return task;
  }

  /** Folds the G phase's batch statistics (over the whole global batch) into the moving averages. */
  #updateBatchNormStats(results: ResultMessage[], batch: number): void {
    const { specs, config } = this.parts;
    const state = this.generator.state;
    if (state.length === 0) return;
    const sums = sumBatchNormSums(results, state.length);
    const momentum = config.bnMomentum;
    let at = 0;
    for (const bn of specs.generator.batchNorms) {
      const n = batch * bn.valuesPerExample;
      for (let c = 0; c < bn.channels; c++) {
        const mean = sums[at + c] / n;
        const variance = Math.max(0, sums[at + bn.channels + c] / n - mean * mean);
        state[at + c] = momentum * state[at + c] + (1 - momentum) * mean;
        state[at + bn.channels + c] = momentum * state[at + bn.channels + c] + (1 - momentum) * variance;
      }
      at += 2 * bn.channels;
    }
  }

  /** 10x10 grid: row r has label r, column c the fixed noise vector c. */
  #sampleGrid(): Uint8Array {
    const { specs, sampler } = this.parts;
    const latent = specs.latentDim;
    const n = GRID_SIDE * GRID_SIDE;
    const z = new Float32Array(n * latent);
    const labels = new Uint8Array(n);
    for (let r = 0; r < GRID_SIDE; r++) {
      for (let c = 0; c < GRID_SIDE; c++) {
        z.set(this.#fixedNoise.subarray(c * latent, (c + 1) * latent), (r * GRID_SIDE + c) * latent);
        labels[r * GRID_SIDE + c] = r;
      }
    }
    sampler.setGeneratorWeights(this.generator.trainable);
    const images = sampler.generateImages(z, labels, this.generator.state);
    return encodeGridPng(images, { rows: GRID_SIDE, cols: GRID_SIDE });
  }

  async #checkpoint(): Promise<string> {
    const { plan, recorder, specs, record } = this.parts;
    const name = `step-${String(plan.step).padStart(8, "0")}`;
    return await saveCheckpoint(
      join(recorder.dir, "checkpoints"),
      name,
      specs,
      {
        generator: this.generator,
        discriminator: this.discriminator,
        adamG: this.adamG.state(),
        adamD: this.adamD.state(),
        clock: plan.state(),
      },
      record,
      this.parts.config.keepCheckpoints,
    );
  }
}
