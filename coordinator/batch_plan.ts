/**
 * The epoch/step clock and the random draws of each step. Everything random comes from one seeded Rng in a
 * fixed order, so the draws of a step do not depend on how many workers share it.
 */
import { type Dataset, IMAGE_PIXELS as IMAGE_SIZE } from "../shared/data/dataset.ts";
import { Rng, type RngState } from "../shared/rng.ts";

export interface ClockState {
  epoch: number; // 1-based epoch in progress
  step: number; // steps completed over the whole run
  position: number; // examples of this epoch already used
  order: number[]; // this epoch's permutation of the example indices
  rng: RngState;
}

/** One step's global batch and noise, before sharding. */
export interface StepDraw {
  count: number;
  real: Uint8Array;
  realLabels: Uint8Array;
  /** D phase: the fakes' noise and labels. */
  dZ: Float32Array;
  dLabels: Uint8Array;
  /** G phase: fresh noise and labels. */
  gZ: Float32Array;
  gLabels: Uint8Array;
}

export class BatchPlan {
  readonly dataset: Dataset;
  readonly batchSize: number;
  readonly latentDim: number;
  readonly stepsPerEpoch: number;
  #rng: Rng;
  #order: Uint32Array;
  epoch = 1;
  step = 0;
  position = 0;

  constructor(dataset: Dataset, batchSize: number, latentDim: number, seed: number) {
    this.dataset = dataset;
    // A global batch larger than the data would make an epoch of zero steps.
    this.batchSize = Math.min(batchSize, dataset.count);
    this.latentDim = latentDim;
    // The last partial batch of an epoch is dropped, as Keras's drop_remainder and DataLoader(drop_last).
    this.stepsPerEpoch = Math.floor(dataset.count / this.batchSize);
    this.#rng = new Rng(seed);
    this.#order = this.#rng.permutation(dataset.count);
  }

  /** Draws the next step's batch and noise and advances the clock; a new epoch reshuffles. */
  next(): StepDraw {
    if (this.position + this.batchSize > this.dataset.count) this.startEpoch(this.epoch + 1);
    const n = this.batchSize;
    const real = new Uint8Array(n * IMAGE_SIZE);
    const realLabels = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const index = this.#order[this.position + i];
      real.set(this.dataset.images.subarray(index * IMAGE_SIZE, (index + 1) * IMAGE_SIZE), i * IMAGE_SIZE);
      realLabels[i] = this.dataset.labels[index];
    }
    this.position += n;
    this.step++;
    const rng = this.#rng;
    const dZ = rng.fillNormal(new Float32Array(n * this.latentDim));
    const dLabels = rng.fillInts(new Uint8Array(n), 10);
    const gZ = rng.fillNormal(new Float32Array(n * this.latentDim));
    const gLabels = rng.fillInts(new Uint8Array(n), 10);
    return { count: n, real, realLabels, dZ, dLabels, gZ, gLabels };
  }

  /** True when the step just drawn was the last of its epoch. */
  get epochDone(): boolean {
    return this.position + this.batchSize > this.dataset.count;
  }

  startEpoch(epoch: number): void {
    this.epoch = epoch;
    this.position = 0;
    this.#order = this.#rng.permutation(this.dataset.count);
  }

  /** A cheap undo point (no copy of the permutation, which is replaced, never changed): call it to go back. */
  mark(): () => void {
    const { epoch, step, position } = this;
    const order = this.#order;
    const rng = this.#rng.state();
    return () => {
      this.epoch = epoch;
      this.step = step;
      this.position = position;
      this.#order = order;
      this.#rng = new Rng(rng);
    };
  }

  state(): ClockState {
    return {
      epoch: this.epoch,
      step: this.step,
      position: this.position,
      order: Array.from(this.#order),
      rng: this.#rng.state(),
    };
  }

  restore(state: ClockState): void {
    if (state.order.length !== this.dataset.count) {
      throw new Error(
        `checkpoint clock covers ${state.order.length} examples, the data has ${this.dataset.count}`,
      );
    }
    this.epoch = state.epoch;
    this.step = state.step;
    this.position = state.position;
    this.#order = Uint32Array.from(state.order);
    this.#rng = new Rng(state.rng);
  }
}

/** Cuts a step's draw into consecutive shards of the given sizes (views, no copies). */
export function shardDraw(draw: StepDraw, sizes: number[], latentDim: number): StepDraw[] {
  const shards: StepDraw[] = [];
  let start = 0;
  for (const n of sizes) {
    const end = start + n;
    shards.push({
      count: n,
      real: draw.real.subarray(start * IMAGE_SIZE, end * IMAGE_SIZE),
      realLabels: draw.realLabels.subarray(start, end),
      dZ: draw.dZ.subarray(start * latentDim, end * latentDim),
      dLabels: draw.dLabels.subarray(start, end),
      gZ: draw.gZ.subarray(start * latentDim, end * latentDim),
      gLabels: draw.gLabels.subarray(start, end),
    });
    start = end;
  }
  return shards;
}
