/**
 * A stride-2, kernel-4 "same" transposed convolution split into its four output phases, each a 2x2
 * stride-1 convolution: the same multiply-adds as the transposed convolution, done by the backends' fast
 * convolution instead of their slower Conv2DBackpropInput. Used by ops.ts (tensorflow) and by the wasm
 * Conv2DBackpropInput kernel (wasm_kernels.ts).
 *
 * With filter [4, 4, O, C] and input [n, H, W, C], TF's "same" pads 1 row before, so output row 2q + r
 * reads input rows q - 1 + r and q + r through filter rows 3 - r and 1 - r. Output phase (r, c), the
 * outputs (2q + r, 2w + c) for q < H, w < W, is therefore a stride-1 convolution of the input padded by
 * 1 - r rows before and r after (1 - c columns before, c after) with the taps
 * [i, j, ch, o] = filter[3 - r - 2i, 3 - c - 2j, o, ch].
 */
export const PHASE_STRIDE = 2;
export const PHASE_KERNEL = 4;
/**
 * Output channels from which four separate phase convolutions beat one convolution computing all four
 * (combinedTaps); below it, the per-phase convolutions have too few output channels to run well.
 */
export const PHASE_MIN_CHANNELS = 16;
/** The phases in the order their outputs are concatenated: (r, c) = (0, 0), (0, 1), (1, 0), (1, 1). */
export const PHASES: ReadonlyArray<readonly [number, number]> = [[0, 0], [0, 1], [1, 0], [1, 1]];

/**
 * Whether a transposed convolution of an [n, H, W, C] input by a [kh, kw, O, C] filter into outShape is
 * one that splits: stride 2, 4x4 filter, output [n, 2H, 2W, O].
 */
export function splitsIntoPhases(
  inShape: readonly number[],
  filterShape: readonly number[],
  outShape: readonly number[],
  strides: readonly [number, number],
): boolean {
  const [kh, kw, outChannels] = filterShape;
  return strides[0] === PHASE_STRIDE && strides[1] === PHASE_STRIDE && kh === PHASE_KERNEL &&
    kw === PHASE_KERNEL && outShape[1] === inShape[1] * PHASE_STRIDE &&
    outShape[2] === inShape[2] * PHASE_STRIDE && outShape[3] === outChannels;
}

/**
 * Four arrays of `size` values for phaseTaps, the same ones at every call with that size: a fresh set per
 * call was a megabyte of garbage a step. Safe to reuse because the tensors made from them are consumed at
 * once by a convolution that copies them (wasm when the tensor is made, tensorflow when the op runs).
 */
export function reusedTaps(size: number): Float32Array[] {
  let taps = tapsBySize.get(size);
  if (!taps) tapsBySize.set(size, taps = PHASES.map(() => new Float32Array(size)));
  return taps;
}

const tapsBySize = new Map<number, Float32Array[]>();

/**
 * The [2, 2, C, O] taps of each phase, in PHASES order, from the filter's values [4, 4, O, C]; written into
 * `into` (four arrays of 4·C·O values) when given.
 */
export function phaseTaps(
  filter: Float32Array,
  outChannels: number,
  inChannels: number,
  into?: Float32Array[],
): Float32Array[] {
  return PHASES.map(([r, c], p) => {
    const taps = into?.[p] ?? new Float32Array(PHASE_STRIDE * PHASE_STRIDE * inChannels * outChannels);
    for (let i = 0; i < PHASE_STRIDE; i++) {
      for (let j = 0; j < PHASE_STRIDE; j++) {
        const kRow = PHASE_KERNEL - 1 - r - PHASE_STRIDE * i;
        const kCol = PHASE_KERNEL - 1 - c - PHASE_STRIDE * j;
        for (let o = 0; o < outChannels; o++) {
          const from = ((kRow * PHASE_KERNEL + kCol) * outChannels + o) * inChannels;
          const to = (i * PHASE_STRIDE + j) * inChannels * outChannels + o;
          for (let ch = 0; ch < inChannels; ch++) taps[to + ch * outChannels] = filter[from + ch];
        }
      }
    }
    return taps;
  });
}

/** The explicit padding [[0, 0], [top, bottom], [left, right], [0, 0]] of phase (r, c). */
export function phasePadding(r: number, c: number): [[0, 0], [number, number], [number, number], [0, 0]] {
  return [[0, 0], [1 - r, r], [1 - c, c], [0, 0]];
}

/**
 * The [2, 2, C, 4·O] taps of one convolution that computes every phase at once, over the input padded by 1
 * on every side: its output [n, H + 1, W + 1, 4·O] holds phase (r, c)'s output (q, w) at position
 * (q + r, w + c), channels (2r + c)·O to (2r + c + 1)·O. A third more multiply-adds than the four phases
 * (the padded border), but one convolution with 4·O output channels, which is faster when O is small.
 */
export function combinedTaps(filter: Float32Array, outChannels: number, inChannels: number): Float32Array {
  const phaseChannels = PHASES.length * outChannels;
  const combined = new Float32Array(PHASE_STRIDE * PHASE_STRIDE * inChannels * phaseChannels);
  phaseTaps(filter, outChannels, inChannels).forEach((taps, p) => {
    for (let tap = 0; tap < PHASE_STRIDE * PHASE_STRIDE * inChannels; tap++) {
      combined.set(
        taps.subarray(tap * outChannels, (tap + 1) * outChannels),
        tap * phaseChannels + p * outChannels,
      );
    }
  });
  return combined;
}

/** The explicit padding of the combined convolution: 1 on every side. */
export const COMBINED_PADDING: [[0, 0], [1, 1], [1, 1], [0, 0]] = [[0, 0], [1, 1], [1, 1], [0, 0]];
