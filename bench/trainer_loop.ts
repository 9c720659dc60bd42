/**
 * One worker's whole training step without the network: what a worker computes (StepComputer's D phase and
 * G phase, with the weight installs a task brings, its gradients read into buffers kept from step to step as
 * a local worker's shared memory is) plus what the coordinator computes between them (the gradient average,
 * then Adam, on D and then on G, over the flat master vectors). Not included: drawing the batch plan, the
 * wire codec, the BatchNorm moving statistics and the metrics line, which together take well under 1% of a
 * step.
 */
import process from "node:process";
import { Adam } from "../coordinator/adam.ts";
import { IMAGE_PIXELS, initialWeights, modelSpecs, NUM_CLASSES } from "../shared/models/specs.ts";
import type { ModelName, NetWeights } from "../shared/models/types.ts";
import { Rng } from "../shared/rng.ts";
import { StepComputer } from "../shared/step.ts";

const LATENT_DIM = 100;
/** MODEL.md's recipe. */
const ADAM = { lr: 2e-4, beta1: 0.5, beta2: 0.999, epsilon: 1e-7 };
/** Distinct real batches cycled through, so that the step never sees one constant input. */
const REAL_BATCHES = 4;

export interface StepLosses {
  lossD: number;
  lossG: number;
}

/** Time spent in each part of the steps so far, in milliseconds of wall time and of process CPU time. */
export interface StepParts {
  dPhase: number;
  gPhase: number;
  adam: number;
  setWeights: number;
}

function emptyParts(): StepParts {
  return { dPhase: 0, gPhase: 0, adam: 0, setWeights: 0 };
}

function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

export class BenchLoop {
  wall: StepParts = emptyParts();
  cpu: StepParts = emptyParts();
  readonly #computer: StepComputer;
  readonly #g: NetWeights;
  readonly #d: NetWeights;
  readonly #adamG: Adam;
  readonly #adamD: Adam;
  readonly #gradG: Float32Array;
  readonly #gradD: Float32Array;
  /** The worker's side: where its phases write their gradient sums. */
  readonly #workerGradG: Float32Array;
  readonly #workerGradD: Float32Array;
  readonly #rng: Rng;
  readonly #batch: number;
  readonly #real: Array<{ images: Uint8Array; labels: Uint8Array }>;
  #step = 0;

  constructor(model: ModelName, batch: number, seed: number) {
    const specs = modelSpecs(model, LATENT_DIM);
    this.#rng = new Rng(seed);
    this.#batch = batch;
    this.#g = initialWeights(specs.generator, this.#rng);
    this.#d = initialWeights(specs.discriminator, this.#rng);
    this.#adamG = new Adam(this.#g.trainable.length, ADAM);
    this.#adamD = new Adam(this.#d.trainable.length, ADAM);
    // As on the coordinator: master weights and gradients in the optimizers' memories.
    this.#g.trainable = this.#adamG.buffer(this.#g.trainable);
    this.#d.trainable = this.#adamD.buffer(this.#d.trainable);
    this.#gradG = this.#adamG.buffer();
    this.#gradD = this.#adamD.buffer();
    this.#workerGradG = new Float32Array(this.#g.trainable.length);
    this.#workerGradD = new Float32Array(this.#d.trainable.length);
    this.#computer = new StepComputer(specs, 0);
    this.#computer.setGeneratorWeights(this.#g.trainable);
    this.#computer.setDiscriminatorWeights(this.#d.trainable);
    this.#real = Array.from({ length: REAL_BATCHES }, () => ({
      images: Uint8Array.from({ length: batch * IMAGE_PIXELS }, () => this.#rng.int(256)),
      labels: this.#labels(),
    }));
  }

  /** (1) D phase, Adam on D, new D to the worker; (2) G phase through it, Adam on G, new G to the worker. */
  step(): StepLosses {
    const n = this.#batch;
    const real = this.#real[this.#step++ % REAL_BATCHES];
    const dShard = {
      count: n,
      real: real.images,
      realLabels: real.labels,
      z: this.#noise(),
      fakeLabels: this.#labels(),
    };
    const gShard = { count: n, z: this.#noise(), labels: this.#labels() };
    let wall = performance.now();
    let cpu = cpuMs();
    const lap = (part: keyof StepParts) => {
      const [nowWall, nowCpu] = [performance.now(), cpuMs()];
      this.wall[part] += nowWall - wall;
      this.cpu[part] += nowCpu - cpu;
      [wall, cpu] = [nowWall, nowCpu];
    };
    const d = this.#computer.discriminatorPhase(dShard, this.#workerGradD);
    lap("dPhase");
    this.#adamD.sumInto(this.#gradD, [d.grads], [1 / n]);
    this.#adamD.apply(this.#d.trainable, this.#gradD);
    lap("adam");
    this.#computer.setDiscriminatorWeights(this.#d.trainable);
    lap("setWeights");
    const g = this.#computer.generatorPhase(gShard, this.#workerGradG);
    lap("gPhase");
    this.#adamG.sumInto(this.#gradG, [g.grads], [1 / n]);
    this.#adamG.apply(this.#g.trainable, this.#gradG);
    lap("adam");
    this.#computer.setGeneratorWeights(this.#g.trainable);
    lap("setWeights");
    return { lossD: d.lossSum / n, lossG: g.lossSum / n };
  }

  /** Forgets the times so far (after the warm-up). */
  resetTimes(): void {
    this.wall = emptyParts();
    this.cpu = emptyParts();
  }

  dispose(): void {
    this.#computer.dispose();
  }

  #noise(): Float32Array {
    return this.#rng.fillNormal(new Float32Array(this.#batch * LATENT_DIM));
  }

  #labels(): Uint8Array {
    return this.#rng.fillInts(new Uint8Array(this.#batch), NUM_CLASSES);
  }
}
