/**
 * Turns a task into a result: installs the weights that came before it (or with it), checks it holds the
 * versions the task names, and runs the phase on the StepComputer, or, with --compute simulated, waits
 * --step-ms and answers with gradient-sized zeros, as a worker on a fast GPU would, to measure the
 * coordinator and the network alone.
 */
import { GantryError } from "../shared/errors.ts";
import type { ModelSpecs } from "../shared/models/types.ts";
import {
  type FloatArray,
  type Phase,
  PROTOCOL_VERSION,
  type ResultMessage,
  type TaskMessage,
  type WeightsMessage,
  type Wire,
} from "../shared/protocol.ts";
import type { StepComputer } from "../shared/step.ts";
import { SpanLog } from "../shared/trace.ts";
import { widenFloat16 } from "../shared/float16.ts";

/** Float16 gradients are scaled by a power of two so that their largest value lands near this. */
const FLOAT16_TARGET_MAX = 2 ** 14;

export interface RunnerOptions {
  /** How to send the gradients (the coordinator's --wire, from its welcome). */
  wire?: Wire;
  /** --trace: where this worker's spans go until sent with the next result. */
  spans?: SpanLog;
  /** --compute simulated: no math; each phase takes half of `stepMs`. */
  simulated?: { stepMs: number; specs: ModelSpecs };
  /** Where a phase's float32 gradient is written (shared memory: then the coordinator reads it in place). */
  gradsInto?: (size: number) => Float32Array;
}

/** Blocks this thread for `ms` without spinning, as a synchronous GPU computation would. */
function blockFor(ms: number): void {
  if (ms <= 0) return;
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Where gradients are scaled before narrowing, kept between steps (no megabytes allocated per step). */
let scaledScratch = new Float32Array(0);

/** `grads` as float16 scaled into its range: the values and what they must be multiplied by. */
export function toFloat16(grads: Float32Array, into?: Float16Array): { values: Float16Array; scale: number } {
  let max = 0;
  for (let i = 0; i < grads.length; i++) {
    const a = Math.abs(grads[i]);
    if (a > max) max = a;
  }
  const exponent = max > 0 ? Math.floor(Math.log2(FLOAT16_TARGET_MAX / max)) : 0;
  const factor = 2 ** exponent;
  const values = into && into.length === grads.length ? into : new Float16Array(grads.length);
  // Scaled in float32 (exact: a power of two), then narrowed by the engine in one call: writing
  // Float16Array elements one by one is slow in V8.
  if (factor !== 1) {
    if (scaledScratch.length !== grads.length) scaledScratch = new Float32Array(grads.length);
    const scaled = scaledScratch;
    for (let i = 0; i < grads.length; i++) scaled[i] = grads[i] * factor;
    values.set(scaled);
  } else values.set(grads);
  return { values, scale: 1 / factor };
}

export class TaskRunner {
  readonly #computer: StepComputer | null;
  readonly #options: RunnerOptions;
  readonly #spans: SpanLog;
  #generatorVersion = -1;
  #discriminatorVersion = -1;
  /** Simulated gradients (zeros), one per net, allocated once. */
  #zeros = new Map<string, Float32Array>();
  /** float16 gradients of each phase, reused from step to step. */
  #halves = new Map<Phase, Float16Array>();

  constructor(computer: StepComputer | null, options: RunnerOptions = {}) {
    if (!computer && !options.simulated) {
      throw new Error("TaskRunner: a computer or simulated compute is needed");
    }
    this.#computer = computer;
    this.#options = options;
    this.#spans = options.spans ?? new SpanLog(false);
  }

  /** Installs a weights frame (float16 ones are widened to float32 first). */
  weights(message: WeightsMessage): void {
    this.#install(message.net, message.values, message.weightsVersion);
  }

  #install(net: Phase, values: FloatArray, version: number): void {
    if (this.#computer) {
      // A fresh float32 copy for float16: some backends keep the array they are given.
      const f32 = values instanceof Float32Array ? values : widenFloat16(values);
      if (net === "G") this.#computer.setGeneratorWeights(f32);
      else this.#computer.setDiscriminatorWeights(f32);
    }
    if (net === "G") this.#generatorVersion = version;
    else this.#discriminatorVersion = version;
  }

  run(task: TaskMessage, decodeMs = 0): ResultMessage {
    if (task.generator) this.#install("G", task.generator, task.generatorVersion);
    if (task.discriminator) this.#install("D", task.discriminator, task.discriminatorVersion);
    if (
      this.#generatorVersion !== task.generatorVersion ||
      this.#discriminatorVersion !== task.discriminatorVersion
    ) {
      // Computing with other weights than the coordinator means would silently break the math.
      throw new GantryError(
        "E_PROTOCOL",
        `task of step ${task.step} wants weights G${task.generatorVersion}/D${task.discriminatorVersion}, ` +
          `this worker holds G${this.#generatorVersion}/D${this.#discriminatorVersion}`,
      );
    }
    const started = performance.now();
    const result = this.#spans.time(`compute ${task.phase}`, () => this.#compute(task));
    const message: ResultMessage = {
      type: "result",
      version: PROTOCOL_VERSION,
      step: task.step,
      phase: task.phase,
      count: task.count,
      grads: result.grads,
      lossSum: result.lossSum,
      realScoreSum: result.realScoreSum,
      fakeScoreSum: result.fakeScoreSum,
      computeMs: performance.now() - started,
      decodeMs,
    };
    if (this.#options.wire === "float16") {
      // Into an array kept per phase: the frame gets a copy of it when encoded.
      let into = this.#halves.get(task.phase);
      if (into?.length !== result.grads.length) {
        this.#halves.set(task.phase, into = new Float16Array(result.grads.length));
      }
      const half = this.#spans.time("to float16", () => toFloat16(result.grads, into));
      message.grads = half.values;
      if (half.scale !== 1) message.gradScale = half.scale;
    }
    if (result.batchNormSums) message.batchNormSums = result.batchNormSums;
    if (this.#spans.enabled) message.spans = this.#spans.take();
    return message;
  }

  #compute(task: TaskMessage): {
    grads: Float32Array;
    lossSum: number;
    realScoreSum: number;
    fakeScoreSum: number;
    batchNormSums?: Float32Array;
  } {
    const simulated = this.#options.simulated;
    const specs = simulated?.specs ?? this.#computer!.specs;
    const net = task.phase === "D" ? specs.discriminator : specs.generator;
    const into = this.#options.gradsInto?.(net.trainableSize);
    if (simulated) {
      blockFor(simulated.stepMs / 2);
      const grads = into ? into.fill(0) : this.#zerosOf(task.phase, net.trainableSize);
      const out = { grads, lossSum: 0, realScoreSum: 0, fakeScoreSum: 0 };
      const bn = simulated.specs.generator.stateSize;
      return task.phase === "G" && bn > 0 ? { ...out, batchNormSums: this.#zerosOf("bn", bn) } : out;
    }
    const computer = this.#computer!;
    return task.phase === "D"
      ? computer.discriminatorPhase({
        count: task.count,
        real: task.real!,
        realLabels: task.realLabels!,
        z: task.z,
        fakeLabels: task.labels,
      }, into)
      : computer.generatorPhase({ count: task.count, z: task.z, labels: task.labels }, into);
  }

  #zerosOf(key: string, size: number): Float32Array {
    let zeros = this.#zeros.get(key);
    if (!zeros) this.#zeros.set(key, zeros = new Float32Array(size));
    return zeros;
  }
}
