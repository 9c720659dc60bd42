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
import type { Adam } from "./adam.ts";
import type { MasterArrays } from "./master_arrays.ts";
import type { SharedTransport } from "./shared_transport.ts";
import {
  balancedShardSizes,
  NonFiniteGradient,
  type PhaseTotals,
  shardSizes,
  stageMeanGradient,
  sumBatchNormSums,
} from "./aggregate.ts";
import { encodeMessage, type SharedPlacement, type WireFormat } from "../shared/codec.ts";
import { nowUs, type Trace } from "../shared/trace.ts";
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

/** A step's batch with its undo point and clock. */
interface DrawnStep {
  draw: StepDraw;
  undo: () => void;
  epoch: number;
  step: number;
  epochDone: boolean;
}

/** A phase's results, the backend of the worker behind each, and where its time went (ms). */
interface PhaseRun {
  results: ResultMessage[];
  backends: string[];
  /** Encoding and sending the weights frames (once for all workers). */
  broadcastMs: number;
  /** Encoding and sending the tasks. */
  encodeMs: number;
  /** From the last task sent to the last result in (the workers' compute and the network both ways). */
  waitMs: number;
  /** The coordinator's decoding and checking of the results (inside waitMs), summed over workers. */
  decodeMs: number;
  /** The means over the global batch, from the gradient sum. */
  totals: PhaseTotals;
}

/**
 * How long after sending a phase's tasks the coordinator starts its own work of the phase (drawing the next
 * batch): time for the workers to wake and start computing first. Batch-scheduled workers do not preempt
 * it, and drawing at once made the last of two simulated workers start 1.6 ms late instead of 0.3 ms.
 */
const WHILE_WAITING_DELAY_MS = 1;
/** The process id of the coordinator in a trace; workers are their worker ids (from 1). */
const TRACE_COORDINATOR_PID = 0;
/** Under --wire float16, the fields sent as float16 (from coordinator: weights; from workers: gradients). */
export const FLOAT16_WIRE: WireFormat = { float16: ["values", "grads"] };

/** A step given up before its end (workers gone, or Ctrl-C while paused): the run stops with `exitCode`. */
class StepAbandoned extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number) {
    super(message);
    this.exitCode = exitCode;
  }
}

export interface TrainerParts {
  config: Config & { seed: number };
  /** Where the weights, gradients and optimizers live (and local workers' memory is mapped). */
  arrays: MasterArrays;
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
  /** Called at each epoch end (and the last step) before the plots are drawn: --eval-every's evaluation. */
  evaluateEpoch?: (epoch: number, step: number, last: boolean) => Promise<void>;
  /** --trace: the run's spans, written by the coordinator at its end. */
  trace?: Trace;
  /** Shared memory for the workers on this machine that took it. */
  sharedTransport?: SharedTransport;
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
  /** The nets' staged weights (D's during G's phase); swapped with the committed ones at a step's end. */
  #nextG: Float32Array;
  #nextD: Float32Array;
  #fixedNoise: Float32Array;
  /** The last weights frame of each net, encoded once and sent to every stale worker. */
  #weightsFrames = new Map<Phase, { version: number; frame: Uint8Array }>();
  /** Buffers to encode weights frames into, each with the number of sends still using its bytes. */
  #frameBuffers: Array<{ net: Phase; buffer: ArrayBuffer; inFlight: number }> = [];
  #tracedWorkers = new Set<number>();
  /** The next step's batch, drawn during this step's G phase (coordinator time the workers wait for). */
  #ahead: DrawnStep | null = null;

  constructor(parts: TrainerParts) {
    this.parts = parts;
    const { config, specs, plan } = parts;
    const { arrays } = parts;
    const rng = new Rng(config.seed + SEED_STREAMS.weights);
    let generator = initialWeights(specs.generator, rng);
    let discriminator = initialWeights(specs.discriminator, rng);
    this.adamG = arrays.adamG;
    this.adamD = arrays.adamD;
    this.#gradG = arrays.gradG;
    this.#gradD = arrays.gradD;
    this.#nextG = arrays.stagedGenerator;
    this.#nextD = arrays.stagedDiscriminator;
    const allSteps = config.epochs * plan.stepsPerEpoch;
    this.totalSteps = config.maxSteps ? Math.min(config.maxSteps, allSteps) : allSteps;
    if (parts.resumeFrom) {
      const r = parts.resumeFrom;
      generator = { trainable: r.generator.trainable, state: r.generator.state.slice() };
      discriminator = { trainable: r.discriminator.trainable, state: r.discriminator.state.slice() };
      this.adamG.restore(r.adamG);
      this.adamD.restore(r.adamD);
      plan.restore(r.clock);
    }
    // The master weights live in the arrays' memory, where Adam updates them and local workers read them.
    arrays.generator.set(generator.trainable);
    arrays.discriminator.set(discriminator.trainable);
    this.generator = { trainable: arrays.generator, state: generator.state };
    this.discriminator = { trainable: arrays.discriminator, state: discriminator.state };
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
    while ((this.#ahead ? this.#ahead.step - 1 : plan.step) < this.totalSteps) {
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
      const { draw, undo: undoDraw, epoch, step, epochDone } = this.#ahead ?? this.#drawStep();
      this.#ahead = null;
      const last = step === this.totalSteps;
      // The next batch is drawn while the workers compute this step's G phase, unless this step ends with
      // a checkpoint, which must record the clock of this step.
      const drawAhead = !last && !epochDone &&
        !(config.checkpointEvery && step % config.checkpointEvery === 0);

      // (1) Update D: maximize log D(x) + log(1 - D(G(z))), averaged over the global batch. The update is
      // staged: G's phase computes through it, but it is committed only with the whole step.
      let dRun, d, gRun, g;
      const timed = { optimizerMs: 0 };
      const span = <T>(name: string, key: keyof typeof timed, f: () => T): T => {
        const t0 = performance.now();
        const startUs = nowUs();
        try {
          return f();
        } finally {
          const ms = performance.now() - t0;
          timed[key] += ms;
          this.parts.trace?.add(name, startUs, ms * 1000, TRACE_COORDINATOR_PID, { step });
        }
      };
      try {
        dRun = await this.#runPhase(
          step,
          "D",
          draw,
          () => {},
          (results) =>
            span(
              "D sum+adam",
              "optimizerMs",
              () =>
                stageMeanGradient(
                  results,
                  this.adamD,
                  this.discriminator.trainable,
                  this.#nextD,
                  this.#gradD,
                ),
            ),
        );
        d = dRun.totals;

        // (2) Update G through the updated D: maximize log D(G(z')) (non-saturating loss), fresh z', labels.
        gRun = await this.#runPhase(
          step,
          "G",
          draw,
          () => {
            if (drawAhead) this.#ahead ??= this.#drawStep();
          },
          (results) =>
            span(
              "G sum+adam",
              "optimizerMs",
              () =>
                stageMeanGradient(results, this.adamG, this.generator.trainable, this.#nextG, this.#gradG),
            ),
        );
        g = gRun.totals;
      } catch (error) {
        if (!(error instanceof StepAbandoned)) throw error;
        // Back to the state before this step, which is then the checkpoint: nothing done is lost.
        this.adamD.discard();
        this.adamG.discard();
        this.#ahead = null;
        undoDraw();
        await this.#checkpoint();
        log(`${error.message}; checkpointed at step ${plan.step}; continue with --resume ${recorder.dir}`);
        return error.exitCode;
      }
      this.adamG.commit();
      this.adamD.commit();
      [this.generator.trainable, this.#nextG] = [this.#nextG, this.generator.trainable];
      [this.discriminator.trainable, this.#nextD] = [this.#nextD, this.discriminator.trainable];
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
        broadcastMs: dRun.broadcastMs + gRun.broadcastMs,
        encodeMs: dRun.encodeMs + gRun.encodeMs,
        networkMs: Math.max(0, dRun.waitMs - d.maxComputeMs) + Math.max(0, gRun.waitMs - g.maxComputeMs),
        decodeMs: dRun.decodeMs + gRun.decodeMs,
        optimizerMs: timed.optimizerMs,
        shards: gRun.results.map((r) => r.count),
        heapMb: memory.heapUsed / MB,
        rssMb: memory.rss / MB,
        time: new Date().toISOString(),
      };
      recorder.appendMetrics(line);
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
      }, epochDone || last);
      if (epochDone || last) {
        progress.breakLine();
        const samples = await recorder.writeSamples(epoch, this.#sampleGrid());
        await this.parts.evaluateEpoch?.(epoch, step, last);
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

  /** The workers for a phase of `step`; below --min-workers, pauses until enough join or time runs out. */
  async #workersFor(step: number): Promise<WorkerHandle[]> {
    const { registry, config, log, signal } = this.parts;
    const live = registry.live.length;
    if (live < config.minWorkers) {
      log(
        `paused at step ${step}: ${live} live worker(s), --min-workers is ${config.minWorkers}; waiting up to ` +
          `${config.joinTimeoutMs} ms (--join-timeout-ms) for workers to join`,
      );
      try {
        await registry.waitForLive(config.minWorkers, config.joinTimeoutMs, signal);
      } catch (error) {
        if (signal.aborted) throw new StepAbandoned(`interrupted while paused at step ${step}`, 130);
        if (error instanceof GantryError && error.code === "E_TIMEOUT") {
          throw new StepAbandoned(
            `gave up at step ${step}: ${registry.live.length} of ${config.minWorkers} workers after ` +
              `${config.joinTimeoutMs} ms (--join-timeout-ms)`,
            3,
          );
        }
        throw error;
      }
      log(`going on at step ${step} with ${registry.live.length} workers`);
    }
    return registry.forStep(step);
  }

  /**
   * Runs one phase over the live workers, redoing it over the survivors when a worker fails. `whileWaiting`
   * runs once the tasks are out, unless the results are in first; `aggregate` sums the results' gradients,
   * and a worker whose gradient holds a NaN or an infinity is dropped there, and the phase redone without it.
   */
  async #runPhase(
    step: number,
    phase: Phase,
    draw: StepDraw,
    whileWaiting: () => void,
    aggregate: (results: ResultMessage[]) => PhaseTotals,
  ): Promise<PhaseRun> {
    const { config, log } = this.parts;
    let lastError = "";
    for (let attempt = 1; attempt <= config.phaseAttempts; attempt++) {
      // No result of a departed worker is read any more: its shared memory can go.
      this.parts.sharedTransport?.releaseDeparted();
      const workers = await this.#workersFor(step);
      if (workers.length === 0) {
        lastError = "no live worker";
        continue;
      }
      const sizes = config.balance
        ? balancedShardSizes(draw.count, workers.map((w) => w.smoothedImagesPerSec))
        : shardSizes(draw.count, workers.length);
      const shards = shardDraw(draw, sizes, config.latentDim);
      const trace = this.parts.trace;
      const t0 = performance.now();
      const us0 = nowUs();
      this.#broadcastWeights(workers.slice(0, shards.length), phase);
      const t1 = performance.now();
      const requests = shards.map((shard, i) => {
        const task = this.#task(workers[i], step, phase, shard);
        return workers[i].request(task, config.stepTimeoutMs, this.#weightsPlacement(workers[i], task));
      });
      const t2 = performance.now();
      // Not at once: the workers woken by their tasks (SCHED_BATCH under the launcher) get the cores first.
      const waiting = setTimeout(() => {
        const startUs = nowUs();
        whileWaiting();
        trace?.add(`${phase} while waiting`, startUs, nowUs() - startUs, TRACE_COORDINATOR_PID, { step });
      }, WHILE_WAITING_DELAY_MS);
      const settled = await Promise.allSettled(requests);
      clearTimeout(waiting);
      const t3 = performance.now();
      const failed = settled.filter((s): s is PromiseRejectedResult => s.status === "rejected");
      if (failed.length === 0) {
        const results = settled.map((s) => (s as PromiseFulfilledResult<ResultMessage>).value);
        const used = workers.slice(0, shards.length);
        if (trace) {
          trace.add(`${phase} broadcast`, us0, (t1 - t0) * 1000, TRACE_COORDINATOR_PID, { step });
          trace.add(`${phase} tasks`, us0 + (t1 - t0) * 1000, (t2 - t1) * 1000, TRACE_COORDINATOR_PID, {
            step,
          });
          trace.add(`${phase} wait`, us0 + (t2 - t0) * 1000, (t3 - t2) * 1000, TRACE_COORDINATOR_PID, {
            step,
          });
          used.forEach((w, i) => this.#traceWorker(trace, w, results[i]));
        }
        let totals: PhaseTotals;
        try {
          totals = aggregate(results);
        } catch (error) {
          if (!(error instanceof NonFiniteGradient)) throw error;
          used[error.index].drop(error);
          lastError = `worker ${used[error.index].id}: ${error.message}`;
          log(`step ${step} phase ${phase}: ${lastError}; redoing it`);
          continue;
        }
        return {
          totals,
          results,
          backends: used.map((w) => w.backend.name),
          broadcastMs: t1 - t0,
          encodeMs: t2 - t1,
          waitMs: t3 - t2,
          decodeMs: used.reduce((sum, w) => sum + w.lastDecodeMs, 0),
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

  /** The weights a phase computes with: G's committed ones, and D's staged update during G's phase. */
  #phaseWeights(): {
    g: { version: number; values: Float32Array };
    d: { version: number; values: Float32Array };
  } {
    const dStaged = this.adamD.staged;
    return {
      g: { version: this.adamG.step, values: this.generator.trainable },
      d: {
        version: dStaged ? this.adamD.step + 1 : this.adamD.step,
        values: dStaged ? this.#nextD : this.discriminator.trainable,
      },
    };
  }

  /**
   * Sends each net's current weights to the workers whose copy is stale, encoded once per version (in the
   * --wire format) and sent as the same bytes to all of them.
   */
  #broadcastWeights(workers: WorkerHandle[], _phase: Phase): void {
    const weights = this.#phaseWeights();
    for (const [net, w] of [["G", weights.g], ["D", weights.d]] as const) {
      let stale = workers.filter((k) =>
        (net === "G" ? k.generatorVersion : k.discriminatorVersion) !== w.version
      );
      // Workers on shared memory read the weights in place, told where by their task.
      stale = stale.filter((k) => !k.sharedMemory);
      if (stale.length === 0) continue;
      let cached = this.#weightsFrames.get(net);
      if (!cached || cached.version !== w.version) {
        // Into a buffer no send still reads (ws writes without copying): warm memory, no page faults.
        const held = new Set([...this.#weightsFrames.values()].map((f) => f.frame.buffer));
        const free = this.#frameBuffers.find((b) => b.net === net && b.inFlight === 0 && !held.has(b.buffer));
        const frame = encodeMessage(
          { type: "weights", version: PROTOCOL_VERSION, net, weightsVersion: w.version, values: w.values },
          this.parts.config.wire === "float16" ? FLOAT16_WIRE : undefined,
          free?.buffer,
        );
        if (frame.buffer !== free?.buffer && frame.byteLength === frame.buffer.byteLength) {
          // A fresh buffer of its own: keep it for reuse (a few per net at most).
          if (this.#frameBuffers.filter((b) => b.net === net).length < 3) {
            this.#frameBuffers.push({ net, buffer: frame.buffer as ArrayBuffer, inFlight: 0 });
          }
        }
        cached = { version: w.version, frame };
        this.#weightsFrames.set(net, cached);
      }
      const pool = this.#frameBuffers.find((b) => b.buffer === cached!.frame.buffer);
      for (const k of stale) {
        if (pool) pool.inFlight++;
        k.sendWeights(net, w.version, cached.frame, () => {
          if (pool) pool.inFlight--;
        });
      }
    }
  }

  /**
   * For a worker on shared memory, where its task's weights lie: the master weights themselves (float32
   * whatever --wire says: nothing crosses a network). Rewriting them in place is safe: a worker reads the
   * weights on receiving its task, before computing the phase whose results the next version waits for,
   * and each net's staged update goes to the other of its two arrays.
   */
  #weightsPlacement(worker: WorkerHandle, task: TaskMessage): SharedPlacement | undefined {
    const shared = this.parts.sharedTransport;
    if (!shared || !worker.sharedMemory) return undefined;
    const fields: Record<string, Float32Array> = {};
    if (task.generator) fields.generator = task.generator as Float32Array;
    if (task.discriminator) fields.discriminator = task.discriminator as Float32Array;
    return Object.keys(fields).length > 0 ? shared.placement(fields) : undefined;
  }

  /** A worker's spans (sent with its result) into the trace, under its worker id. */
  #traceWorker(trace: Trace, worker: WorkerHandle, result: ResultMessage): void {
    if (!this.#tracedWorkers.has(worker.id)) {
      this.#tracedWorkers.add(worker.id);
      trace.nameProcess(worker.id, `worker ${worker.id} (${worker.name})`);
    }
    if (result.spans) trace.addSpans(result.spans, worker.id);
  }

  #task(worker: WorkerHandle, step: number, phase: Phase, shard: StepDraw): TaskMessage {
    const gVersion = this.adamG.step;
    // In G's phase, D's weights are the staged update of this step.
    const dStaged = this.adamD.staged;
    const dVersion = dStaged ? this.adamD.step + 1 : this.adamD.step;
    const dWeights = dStaged ? this.#nextD : this.discriminator.trainable;
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
    if (worker.discriminatorVersion !== dVersion) task.discriminator = dWeights;
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

  /** An undo point, then the next step's batch, and the clock that goes with it. */
  #drawStep(): DrawnStep {
    const { plan } = this.parts;
    const undo = plan.mark();
    const draw = plan.next();
    return { draw, undo, epoch: plan.epoch, step: plan.step, epochDone: plan.epochDone };
  }

  async #checkpoint(): Promise<string> {
    const { plan, recorder, specs, record } = this.parts;
    // A batch drawn ahead goes back: the checkpoint's clock is that of the last finished step.
    this.#ahead?.undo();
    this.#ahead = null;
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
