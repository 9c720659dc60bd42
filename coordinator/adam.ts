/**
 * Adam over one flat Float32Array of master weights, in one fused pass (Kingma & Ba, with Keras's epsilon
 * placement: p -= lr_t * m / (sqrt(v) + eps), lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t)).
 */
import { MAX_FUSED_INPUTS, type OptimizerKernels } from "./adam_kernel.ts";
import { KernelMemory } from "./kernel_memory.ts";

export interface AdamSettings {
  lr: number;
  beta1: number;
  beta2: number;
  epsilon: number;
}

export interface AdamState {
  step: number;
  m: Float32Array;
  v: Float32Array;
}

/** Float32 lanes per SIMD vector: the kernels work on whole vectors (regions are padded to them). */
const LANES = 4;
/** Regions for arrays the caller passes that live outside this Adam's memory (params in, grads, out). */
const SCRATCH_REGIONS = 3;

/**
 * The moments are double-buffered: `stage()` computes an update without committing it, so that a step can
 * be abandoned halfway (its workers all gone) and checkpointed as it was before it began.
 *
 * Moments, and arrays made by `buffer()`, live in a WebAssembly memory (kernel_memory.ts: the coordinator's
 * one, or one of this instance's own), where the SIMD kernel reads and writes them in place. Arrays from
 * elsewhere work too, at the cost of a copy in and out.
 */
export class Adam {
  /** The regions an Adam takes from a KernelMemory: moments (twice) and scratch. */
  static readonly REGIONS = 4 + SCRATCH_REGIONS;
  readonly settings: AdamSettings;
  readonly size: number;
  #step = 0;
  readonly #memory: KernelMemory;
  readonly #kernels: OptimizerKernels;
  /** Bytes the kernels process per array: whole vectors. */
  readonly #vectorBytes: number;
  #m: Float32Array;
  #v: Float32Array;
  #mNext: Float32Array;
  #vNext: Float32Array;
  readonly #scratch: Float32Array[];
  #staged = false;

  /**
   * `memory`: where the moments go (Adam.REGIONS regions of `size`); without it, a memory of its own with
   * room for `buffers` more arrays from `buffer()` (weights, staged weights, gradient).
   */
  constructor(size: number, settings: AdamSettings, memory?: KernelMemory, buffers = 3) {
    this.settings = settings;
    this.size = size;
    this.#vectorBytes = Math.ceil(size / LANES) * LANES * 4;
    this.#memory = memory ?? new KernelMemory(new Array(Adam.REGIONS + buffers).fill(size));
    this.#kernels = this.#memory.kernels;
    [this.#m, this.#v, this.#mNext, this.#vNext] = [0, 1, 2, 3].map(() => this.#memory.floats(size));
    this.#scratch = Array.from({ length: SCRATCH_REGIONS }, () => this.#memory.floats(size));
  }

  /** A zeroed array of `size` floats (or a copy of `initial`) that the kernel uses without copying. */
  buffer(initial?: Float32Array): Float32Array {
    const view = this.#memory.floats(this.size);
    if (initial) view.set(initial);
    return view;
  }

  /** The array's byte address in this memory, copying it into scratch region `k` if it lives elsewhere. */
  #address(array: Float32Array, k: number, copyIn: boolean): number {
    if (this.#memory.holds(array)) return array.byteOffset;
    if (copyIn) this.#scratch[k].set(array);
    return this.#scratch[k].byteOffset;
  }

  /**
   * out = sum_k inputs[k] * scales[k], with `out` one of this Adam's buffers. Inputs from elsewhere (a
   * worker's shared memory, a frame) are copied in first: a memcpy, then the SIMD sum. Returns the index
   * of the first input holding a NaN or an infinity, or -1.
   */
  sumInto(out: Float32Array, inputs: Float32Array[], scales: number[]): number {
    if (!this.#memory.holds(out) || out.length !== this.size) {
      throw new Error("Adam.sumInto: `out` must be a buffer() of this Adam");
    }
    let bad = -1;
    inputs.forEach((input, k) => {
      if (input.length !== this.size) throw new Error(`Adam.sumInto: input ${k} has ${input.length} values`);
      const address = this.#address(input, 1, true);
      const kernel = k === 0 ? this.#kernels.scaleInto : this.#kernels.addScaled;
      if (kernel(out.byteOffset, address, this.#vectorBytes, scales[k]) && bad < 0) bad = k;
    });
    return bad;
  }

  /** Updates committed so far: the version of the weights they produced. */
  get step(): number {
    return this.#step;
  }

  get staged(): boolean {
    return this.#staged;
  }

  get m(): Float32Array {
    return this.#m;
  }

  get v(): Float32Array {
    return this.#v;
  }

  /** Moves `params` in place against the (already averaged) gradient. */
  apply(params: Float32Array, grads: Float32Array): void {
    this.stage(params, grads, params);
    this.commit();
  }

  /**
   * Writes `params` moved against `grads` into `out` (which may be `params`); the moments change only on
   * commit().
   */
  stage(params: Float32Array, grads: Float32Array, out: Float32Array): void {
    const size = this.size;
    if (params.length !== size || grads.length !== size || out.length !== size) {
      throw new Error(
        `Adam.stage: sizes ${params.length}, ${grads.length} and ${out.length} do not match ${size}`,
      );
    }
    if (this.#staged) throw new Error("Adam.stage: an update is staged already; commit() or discard() it");
    const pIn = this.#address(params, 0, true);
    const g = this.#address(grads, 1, true);
    const pOut = out === params ? pIn : this.#address(out, 2, false);
    this.#kernels.adam(
      pIn,
      g,
      this.#m.byteOffset,
      this.#v.byteOffset,
      pOut,
      this.#mNext.byteOffset,
      this.#vNext.byteOffset,
      this.#vectorBytes,
      ...this.#scalars() as [number, number, number, number, number, number],
    );
    if (!this.#memory.holds(out)) out.set(new Float32Array(this.#memory.memory.buffer, pOut, size));
    this.#staged = true;
  }

  /**
   * Stages the update from the gradient sum_k inputs[k] * scales[k], computed into `gradient` (a buffer of
   * this Adam's memory) unless every input already lives in that memory: then the sum and the update are
   * one pass (adamSum<k>), and the gradient is never written out. The bits are the same either way.
   * Returns the index of the first input holding a NaN or an infinity (nothing is staged then), or -1.
   */
  stageSum(
    params: Float32Array,
    inputs: Float32Array[],
    scales: number[],
    out: Float32Array,
    gradient: Float32Array,
  ): number {
    const memory = this.#memory;
    const fused = inputs.length >= 1 && inputs.length <= MAX_FUSED_INPUTS &&
      [params, out, ...inputs].every((a) => memory.holds(a) && a.length === this.size);
    if (!fused) {
      const bad = this.sumInto(gradient, inputs, scales);
      if (bad < 0) this.stage(params, gradient, out);
      return bad;
    }
    if (this.#staged) throw new Error("Adam.stageSum: an update is staged already; commit() or discard() it");
    const kernel = this.#kernels[`adamSum${inputs.length}` as `adamSum${1 | 2 | 3 | 4}`];
    const bad = kernel(
      ...inputs.map((x) => x.byteOffset),
      this.#m.byteOffset,
      this.#v.byteOffset,
      params.byteOffset,
      out.byteOffset,
      this.#mNext.byteOffset,
      this.#vNext.byteOffset,
      this.#vectorBytes,
      ...scales,
      ...this.#scalars(),
    );
    if (bad !== 0) return 31 - Math.clz32(bad & -bad);
    this.#staged = true;
    return -1;
  }

  /** beta1, 1 - beta1, beta2, 1 - beta2, the bias-corrected rate of the next step, epsilon. */
  #scalars(): number[] {
    const { lr, beta1, beta2, epsilon } = this.settings;
    const t = this.#step + 1;
    const lrT = lr * Math.sqrt(1 - beta2 ** t) / (1 - beta1 ** t);
    return [beta1, 1 - beta1, beta2, 1 - beta2, lrT, epsilon];
  }

  commit(): void {
    if (!this.#staged) throw new Error("Adam.commit: nothing is staged");
    [this.#m, this.#mNext] = [this.#mNext, this.#m];
    [this.#v, this.#vNext] = [this.#vNext, this.#v];
    this.#step++;
    this.#staged = false;
  }

  discard(): void {
    this.#staged = false;
  }

  state(): AdamState {
    return { step: this.#step, m: this.#m.slice(), v: this.#v.slice() };
  }

  restore(state: AdamState): void {
    if (state.m.length !== this.size || state.v.length !== this.size) {
      throw new Error(`Adam.restore: state of size ${state.m.length} does not fit ${this.#m.length} weights`);
    }
    this.#step = state.step;
    this.#m.set(state.m);
    this.#v.set(state.v);
    this.#staged = false;
  }
}
