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

export class Adam {
  readonly settings: AdamSettings;
  #step = 0;
  readonly m: Float32Array;
  readonly v: Float32Array;

  constructor(size: number, settings: AdamSettings) {
    this.settings = settings;
    this.m = new Float32Array(size);
    this.v = new Float32Array(size);
  }

  get step(): number {
    return this.#step;
  }

  /** Moves `params` in place against the (already averaged) gradient. */
  apply(params: Float32Array, grads: Float32Array): void {
    if (params.length !== this.m.length || grads.length !== this.m.length) {
      throw new Error(`Adam.apply: sizes ${params.length} and ${grads.length} do not match ${this.m.length}`);
    }
    const { lr, beta1, beta2, epsilon } = this.settings;
    this.#step++;
    const t = this.#step;
    const lrT = lr * Math.sqrt(1 - beta2 ** t) / (1 - beta1 ** t);
    const m = this.m;
    const v = this.v;
    const c1 = 1 - beta1;
    const c2 = 1 - beta2;
    for (let i = 0; i < params.length; i++) {
      const g = grads[i];
      const mi = beta1 * m[i] + c1 * g;
      const vi = beta2 * v[i] + c2 * g * g;
      m[i] = mi;
      v[i] = vi;
      params[i] -= lrT * mi / (Math.sqrt(vi) + epsilon);
    }
  }

  state(): AdamState {
    return { step: this.#step, m: this.m.slice(), v: this.v.slice() };
  }

  restore(state: AdamState): void {
    if (state.m.length !== this.m.length || state.v.length !== this.v.length) {
      throw new Error(`Adam.restore: state of size ${state.m.length} does not fit ${this.m.length} weights`);
    }
    this.#step = state.step;
    this.m.set(state.m);
    this.v.set(state.v);
  }
}
