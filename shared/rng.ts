/**
 * Seeded random numbers (sfc32 + Box-Muller). The coordinator draws every random value of a run from one
 * of these, so a seed fixes the run whatever the number of workers, and its state can be checkpointed.
 */
export type RngState = [number, number, number, number];

/** Where the ziggurat's base strip ends and its tail begins, and the strips' common area. */
const ZIGGURAT_R = 3.442619855899;
const ZIGGURAT_AREA = 9.91256303526217e-3;

/**
 * The ziggurat's tables (Marsaglia & Tsang 2000, RNOR): for strip i, `k` bounds the draws that fall inside
 * its rectangle, `w` scales a 31-bit draw to x, and `f` is the density at the strip's edge.
 */
const ZIGGURAT = (() => {
  const m = 2147483648; // 2^31
  const k = new Uint32Array(128), w = new Float64Array(128), f = new Float64Array(128);
  let d = ZIGGURAT_R, t = d;
  const q = ZIGGURAT_AREA / Math.exp(-0.5 * d * d);
  k[0] = Math.floor((d / q) * m);
  k[1] = 0;
  w[0] = q / m;
  w[127] = d / m;
  f[0] = 1;
  f[127] = Math.exp(-0.5 * d * d);
  for (let i = 126; i >= 1; i--) {
    d = Math.sqrt(-2 * Math.log(ZIGGURAT_AREA / d + Math.exp(-0.5 * d * d)));
    k[i + 1] = Math.floor((d / t) * m);
    t = d;
    f[i] = Math.exp(-0.5 * d * d);
    w[i] = d / m;
  }
  return { k, w, f };
})();

export class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  constructor(seed: number | RngState) {
    if (typeof seed === "number") {
      // splitmix32 spreads a small integer seed over the four state words.
      let s = seed >>> 0;
      const next = () => {
        s = (s + 0x9e3779b9) >>> 0;
        let z = s;
        z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
        z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
        return (z ^ (z >>> 16)) >>> 0;
      };
      [this.#a, this.#b, this.#c, this.#d] = [next(), next(), next(), next()];
      for (let i = 0; i < 12; i++) this.nextUint32();
    } else {
      [this.#a, this.#b, this.#c, this.#d] = seed.map((v) => v >>> 0) as RngState;
    }
  }

  /** The state from which `new Rng(state)` continues exactly where this one is. */
  state(): RngState {
    return [this.#a, this.#b, this.#c, this.#d];
  }

  nextUint32(): number {
    const t = (((this.#a + this.#b) >>> 0) + this.#d) >>> 0;
    this.#d = (this.#d + 1) >>> 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) >>> 0;
    this.#c = ((this.#c << 21) | (this.#c >>> 11)) >>> 0;
    this.#c = (this.#c + t) >>> 0;
    return t;
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** Standard normal (Box-Muller; one value per call so the stream does not depend on call parity). */
  normal(): number {
    const u1 = 1 - this.uniform(); // (0, 1]: log stays finite
    const u2 = this.uniform();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /**
   * Standard normals by Marsaglia and Tsang's ziggurat (128 strips): nearly every value costs one 32-bit draw,
   * a compare and a multiply, with no logarithm or sine. Box-Muller pairs took 1.2 ms for a 128-example
   * step's two noise batches, time the coordinator spends while the workers compute, on their cores.
   */
  fillNormal(out: Float32Array): Float32Array {
    const { k, w } = ZIGGURAT;
    // nextUint32() inlined on int32 locals (the same bits): the fields' >>> 0 conversions doubled the cost.
    let a = this.#a | 0, b = this.#b | 0, c = this.#c | 0, d = this.#d | 0;
    for (let i = 0; i < out.length; i++) {
      const h = (a + b + d) | 0;
      d = (d + 1) | 0;
      a = b ^ (b >>> 9);
      b = (c + (c << 3)) | 0;
      c = (((c << 21) | (c >>> 11)) + h) | 0;
      const strip = h & 127;
      if (Math.abs(h) < k[strip]) out[i] = h * w[strip];
      else {
        [this.#a, this.#b, this.#c, this.#d] = [a >>> 0, b >>> 0, c >>> 0, d >>> 0];
        out[i] = this.#normalSlow(h, strip);
        [a, b, c, d] = [this.#a | 0, this.#b | 0, this.#c | 0, this.#d | 0];
      }
    }
    [this.#a, this.#b, this.#c, this.#d] = [a >>> 0, b >>> 0, c >>> 0, d >>> 0];
    return out;
  }

  /** The ziggurat's rare cases: a draw past a strip's rectangle, or in the base strip's tail. */
  #normalSlow(h: number, strip: number): number {
    const { k, w, f } = ZIGGURAT;
    // Each try succeeds with probability over 0.9: the loop ends after a few at most, in practice.
    for (;;) {
      const x = h * w[strip];
      if (strip === 0) {
        let tail: number, y: number;
        do {
          tail = -Math.log(1 - this.uniform()) / ZIGGURAT_R;
          y = -Math.log(1 - this.uniform());
        } while (y + y < tail * tail);
        return h > 0 ? ZIGGURAT_R + tail : -ZIGGURAT_R - tail;
      }
      if (f[strip] + this.uniform() * (f[strip - 1] - f[strip]) < Math.exp(-0.5 * x * x)) return x;
      h = this.nextUint32() | 0;
      strip = h & 127;
      if (Math.abs(h) < k[strip]) return h * w[strip];
    }
  }

  fillUniform(out: Float32Array, low: number, high: number): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = low + (high - low) * this.uniform();
    return out;
  }

  fillInts(out: Uint8Array, n: number): Uint8Array {
    for (let i = 0; i < out.length; i++) out[i] = this.int(n);
    return out;
  }

  /** A random permutation of 0..n-1 (Fisher-Yates). */
  permutation(n: number): Uint32Array {
    const p = new Uint32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
    return p;
  }
}
