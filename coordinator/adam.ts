/**
 * Adam over one flat Float32Array of master weights, in one fused pass (Kingma & Ba, with Keras's epsilon
 * placement: p -= lr_t * m / (sqrt(v) + eps), lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t)).
 */
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

/**
 * The moments are double-buffered: `stage()` computes an update without committing it, so that a step can
 * be abandoned halfway (its workers all gone) and checkpointed as it was before it began.
 */
export class Adam {
  readonly settings: AdamSettings;
  #step = 0;
  #m: Float32Array;
  #v: Float32Array;
  #mNext: Float32Array;
  #vNext: Float32Array;
  #staged = false;

  constructor(size: number, settings: AdamSettings) {
    this.settings = settings;
    this.#m = new Float32Array(size);
    this.#v = new Float32Array(size);
    this.#mNext = new Float32Array(size);
    this.#vNext = new Float32Array(size);
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
    const size = this.#m.length;
    if (params.length !== size || grads.length !== size || out.length !== size) {
      throw new Error(
        `Adam.stage: sizes ${params.length}, ${grads.length} and ${out.length} do not match ${size}`,
      );
    }
    if (this.#staged) throw new Error("Adam.stage: an update is staged already; commit() or discard() it");
    const { lr, beta1, beta2, epsilon } = this.settings;
    const t = this.#step + 1;
    const lrT = lr * Math.sqrt(1 - beta2 ** t) / (1 - beta1 ** t);
    const m = this.#m, v = this.#v, mNext = this.#mNext, vNext = this.#vNext;
    const c1 = 1 - beta1;
    const c2 = 1 - beta2;
    for (let i = 0; i < size; i++) {
      const g = grads[i];
      const mi = beta1 * m[i] + c1 * g;
      const vi = beta2 * v[i] + c2 * g * g;
      mNext[i] = mi;
      vNext[i] = vi;
      out[i] = params[i] - lrT * mi / (Math.sqrt(vi) + epsilon);
    }
    this.#staged = true;
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
    if (state.m.length !== this.#m.length || state.v.length !== this.#v.length) {
      throw new Error(`Adam.restore: state of size ${state.m.length} does not fit ${this.#m.length} weights`);
    }
    this.#step = state.step;
    this.#m.set(state.m);
    this.#v.set(state.v);
    this.#staged = false;
  }
}
