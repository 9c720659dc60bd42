/**
 * The two gradient kernels that @tensorflow/tfjs-backend-wasm 4.22 lacks and that training our models needs,
 * and a faster version of one it has:
 *
 * - `Conv2DBackpropFilter`: the filter gradient of Conv2D, and of Conv2DTranspose (whose filter gradient
 *   tfjs-core also routes through this kernel);
 * - `UnsortedSegmentSum`: the gradient of `tf.gather`, hence of every Embedding layer;
 * - `Conv2DBackpropInput` (replacing wasm's naive loop for stride-2, kernel-4 "same" cases, the forward
 *   pass of G's Conv2DTranspose layers and the input gradient of D's convolutions).
 *
 * They are composed of kernels the wasm backend has (Transpose, Conv2D, Slice, OneHot, Cast, BatchMatMul),
 * called through `tf` ops: inside a kernel the engine does not record to the gradient tape, the ops run on
 * the current backend (wasm), and a kernel may return a `Tensor`, which the engine then uses as the output
 * as is (tfjs-node's kernels rely on the same path). Every intermediate is made inside `tf.tidy`, so a call
 * leaves exactly one new tensor, its output, which the engine tracks like any op's output.
 */
import * as tf from "@tensorflow/tfjs";
import {
  COMBINED_PADDING,
  combinedTaps,
  PHASE_MIN_CHANNELS,
  PHASE_STRIDE,
  phasePadding,
  PHASES,
  phaseTaps,
  reusedTaps,
  splitsIntoPhases,
} from "../models/phase_split.ts";
import { releaseReadCopy } from "./read_copy.ts";

const WASM_BACKEND = "wasm";

type Rank4Shape = [number, number, number, number];

interface KernelArgs {
  inputs: tf.NamedTensorInfoMap;
  backend: tf.KernelBackend;
  attrs?: tf.NamedAttrMap;
}

/** The named input of a kernel call; the engine leaves a missing input undefined rather than failing. */
function input(kernelName: string, inputs: tf.NamedTensorInfoMap, name: string): tf.TensorInfo {
  const info = inputs[name];
  if (info == null) throw new Error(`${kernelName} on wasm: input '${name}' is missing`);
  return info;
}

/**
 * Runs `compute` on the kernel's inputs as Tensors. The engine passes the Tensors the op was called with,
 * which are used as they are. A bare TensorInfo is wrapped in a Tensor that holds its own reference to the
 * data (incRef), so that disposing the wrapper at the end of the tidy leaves the caller's data alive.
 */
function withTensors<T extends tf.TensorContainer>(
  infos: tf.TensorInfo[],
  backend: tf.KernelBackend,
  compute: (tensors: tf.Tensor[]) => T,
): T {
  return tf.tidy(() => {
    const tensors = infos.map((info) => {
      if (info instanceof tf.Tensor) return info;
      backend.incRef(info.dataId);
      return tf.engine().makeTensorFromTensorInfo(info, backend);
    });
    return compute(tensors);
  });
}

/**
 * dW[i, j, ci, co] = sum over n, y, x of X[n, y·sh + i − padTop, x·sw + j − padLeft, ci] · dY[n, y, x, co]
 * (out-of-range X reads are zero: the padding).
 *
 * Read with the batch n as the channel being summed, this is a convolution in its own right: a batch of
 * Ci images X' = X transposed to [Ci, H, W, N], filtered by dY' = dY transposed to [Ho, Wo, N, Co], whose
 * taps are spaced by the forward stride (dilation = strides), with stride 1 over the kernel offsets (i, j).
 * Its output [Ci, kh, kw, Co] is dW with two axes swapped. The padding is the forward pass's top/left
 * padding, taken from computeConv2DInfo (so 'same', with the extra row/column tfjs puts at the bottom/
 * right, explicit and numeric padding all come out right), and a bottom/right padding chosen so that the
 * output is exactly kh × kw; when no padding is needed there (rows of X that no output read, as 'valid'
 * with a stride that does not divide), the output is larger and its first kh × kw window is the answer.
 * One XNNPACK convolution does the work, about as many flops as the direct sum; im2col with stridedSlice
 * was measured 15x slower.
 */
function conv2DBackpropFilter({ inputs, backend, attrs }: KernelArgs): tf.Tensor {
  const x = input(tf.Conv2DBackpropFilter, inputs, "x");
  const dy = input(tf.Conv2DBackpropFilter, inputs, "dy");
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } =
    attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  if (x.dtype !== "float32" || dy.dtype !== "float32") {
    throw new Error(`Conv2DBackpropFilter on wasm needs float32 x and dy: got ${x.dtype} and ${dy.dtype}`);
  }
  const channelsLast = tf.backend_util.convertConv2DDataFormat(dataFormat) === "channelsLast";
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as Rank4Shape,
    filterShape,
    strides,
    1, // The gradients of Conv2D and Conv2DTranspose refuse dilations > 1, so the kernel has no dilations attr.
    pad,
    dimRoundingMode,
    false,
    channelsLast ? "channelsLast" : "channelsFirst",
  );
  const expectedDy = channelsLast
    ? [info.batchSize, info.outHeight, info.outWidth, info.outChannels]
    : [info.batchSize, info.outChannels, info.outHeight, info.outWidth];
  if (!tf.util.arraysEqual(dy.shape, expectedDy)) {
    throw new Error(
      `Conv2DBackpropFilter on wasm: dy must have shape [${expectedDy}] for x [${x.shape}], ` +
        `filter [${filterShape}], strides ${strides} and pad ${
          JSON.stringify(pad)
        }: current shape is [${dy.shape}]`,
    );
  }
  const { filterHeight, filterWidth, strideHeight, strideWidth, inHeight, inWidth, outHeight, outWidth } =
    info;
  const padTop = info.padInfo.top;
  const padLeft = info.padInfo.left;
  // Bottom/right padding that makes the output exactly filterHeight × filterWidth, if that needs any.
  const padBottom = Math.max(0, filterHeight + (outHeight - 1) * strideHeight - inHeight - padTop);
  const padRight = Math.max(0, filterWidth + (outWidth - 1) * strideWidth - inWidth - padLeft);

  return withTensors([x, dy], backend, ([xT, dyT]) => {
    const images = tf.transpose(xT, channelsLast ? [3, 1, 2, 0] : [1, 2, 3, 0]) as tf.Tensor4D; // [Ci, H, W, N]
    const taps = tf.transpose(dyT, channelsLast ? [1, 2, 0, 3] : [2, 3, 0, 1]) as tf.Tensor4D; // [Ho, Wo, N, Co]
    const full = tf.conv2d(
      images,
      taps,
      1,
      [[0, 0], [padTop, padBottom], [padLeft, padRight], [0, 0]],
      "NHWC",
      [strideHeight, strideWidth],
    ); // [Ci, >= kh, >= kw, Co]
    const window = full.shape[1] === filterHeight && full.shape[2] === filterWidth
      ? full
      : tf.slice(full, [0, 0, 0, 0], [-1, filterHeight, filterWidth, -1]);
    return tf.transpose(window, [1, 2, 0, 3]); // [kh, kw, Ci, Co]
  });
}

/**
 * out[s, ...] = sum of the rows x[i, ...] whose segmentIds[i] == s, for s in [0, numSegments); rows with an
 * id outside that range are dropped, as TensorFlow and the cpu backend do. segmentIds may have any rank r:
 * x's first r axes are its rows, and out has shape [numSegments, ...x.shape.slice(r)].
 *
 * For float32 this is one matrix product: oneHot(ids)ᵀ [numSegments, S] · x [S, rowSize]. (OneHot is made
 * int32 and cast: the wasm OneHot kernel ignores its dtype attr and writes int32 bits, so asking it for
 * float32 gives 1.4e-45 for "on".) int32 data is summed exactly in JS instead, since wasm's BatchMatMul is
 * float32 only and a float sum would round above 2^24; nothing in training sends int32 here.
 */
function unsortedSegmentSum({ inputs, backend, attrs }: KernelArgs): tf.Tensor {
  const x = input(tf.UnsortedSegmentSum, inputs, "x");
  const segmentIds = input(tf.UnsortedSegmentSum, inputs, "segmentIds");
  const { numSegments } = attrs as unknown as tf.UnsortedSegmentSumAttrs;
  const idsRank = segmentIds.shape.length;
  if (!tf.util.arraysEqual(x.shape.slice(0, idsRank), segmentIds.shape)) {
    throw new Error(
      `UnsortedSegmentSum on wasm: segmentIds shape [${segmentIds.shape}] must be a prefix of x's [${x.shape}]`,
    );
  }
  const rowShape = x.shape.slice(idsRank);
  const outShape = [numSegments, ...rowShape];
  const rowCount = tf.util.sizeFromShape(segmentIds.shape);
  const rowSize = tf.util.sizeFromShape(rowShape);

  if (x.dtype === "int32") {
    const values = backend.readSync(x.dataId) as Int32Array;
    const ids = backend.readSync(segmentIds.dataId) as Int32Array;
    const sums = new Int32Array(numSegments * rowSize);
    for (let row = 0; row < rowCount; row++) {
      const segment = ids[row];
      if (segment < 0 || segment >= numSegments) continue;
      for (let k = 0; k < rowSize; k++) {
        sums[segment * rowSize + k] = (sums[segment * rowSize + k] + values[row * rowSize + k]) | 0;
      }
    }
    return tf.tensor(sums, outShape, "int32");
  }
  if (x.dtype !== "float32") {
    throw new Error(`UnsortedSegmentSum on wasm needs float32 or int32 x: got ${x.dtype}`);
  }
  return withTensors([x, segmentIds], backend, ([xT, idsT]) => {
    // A product over an empty axis is not worth trusting to XNNPACK: no rows or no segments sum to zeros.
    if (rowCount === 0 || rowSize === 0 || numSegments === 0) return tf.zeros(outShape, "float32");
    const membership = tf.cast(tf.oneHot(tf.reshape(idsT, [rowCount]), numSegments), "float32"); // [S, segs]
    const rows = tf.reshape(xT, [rowCount, rowSize]);
    return tf.reshape(tf.matMul(membership, rows, true, false), outShape);
  });
}

/** The parts of tfjs-backend-wasm's BackendWasm (backend_wasm.ts) that the phase split below uses. */
interface WasmHeapBackend {
  dataIdMap: { get(dataId: tf.DataId): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  readSync(dataId: tf.DataId): tf.TypedArray;
  wasm: { HEAPF32: Float32Array };
}

/** Marks our Conv2DBackpropInput, so that registering twice does not wrap it twice. */
const PHASE_SPLIT = Symbol("gantry phase-split Conv2DBackpropInput");

/**
 * Whether a Conv2DBackpropInput call is one that phaseSplitBackpropInput handles: float32, NHWC, "same",
 * and a shape that splits into phases (phase_split.ts).
 */
function isPhaseSplit(dy: tf.TensorInfo, filter: tf.TensorInfo, attrs: tf.Conv2DBackpropInputAttrs): boolean {
  const { strides, pad, dataFormat, inputShape } = attrs;
  const pair: [number, number] = typeof strides === "number" ? [strides, strides] : strides;
  return dy.dtype === "float32" && filter.dtype === "float32" && dataFormat === "NHWC" && pad === "same" &&
    splitsIntoPhases(dy.shape, filter.shape, inputShape, pair);
}

/**
 * The transposed convolution of dy [n, H, W, C] by filter [4, 4, O, C], stride 2, "same", as XNNPACK
 * convolutions (phase_split.ts): wasm's own Conv2DBackpropInput is a naive loop (~2 GFLOP/s, a third of a
 * cdcgan step). From PHASE_MIN_CHANNELS output channels, four convolutions, one per output phase (50
 * against ~375 ms CPU for G's first layer at batch 64); below, one convolution computing all four phases
 * (4 against 17 ms for G's last layer). The taps are gathered and the phases interleaved in JS on the wasm
 * heap: the same with Slice/DepthToSpace kernels was measured 3-4x slower.
 */
function phaseSplitBackpropInput(
  dy: tf.TensorInfo,
  filter: tf.TensorInfo,
  wasm: WasmHeapBackend,
): tf.TensorInfo {
  const [n, h, w, c] = dy.shape;
  const outChannels = filter.shape[2];
  const values = wasm.readSync(filter.dataId) as Float32Array;
  const separate = outChannels >= PHASE_MIN_CHANNELS;
  const phaseChannels = PHASES.length * outChannels;
  const phases = withTensors([dy], wasm as unknown as tf.KernelBackend, ([dyT]) => {
    const input = dyT as tf.Tensor4D;
    if (!separate) {
      const taps = tf.tensor4d(combinedTaps(values, outChannels, c), [
        PHASE_STRIDE,
        PHASE_STRIDE,
        c,
        phaseChannels,
      ]);
      return [tf.conv2d(input, taps, 1, COMBINED_PADDING)]; // [n, H + 1, W + 1, 4·O]
    }
    const taps = phaseTaps(values, outChannels, c, reusedTaps(values.length / PHASES.length));
    return PHASES.map(([r, col], i) => {
      const kernel = tf.tensor4d(taps[i], [PHASE_STRIDE, PHASE_STRIDE, c, outChannels]);
      return tf.conv2d(input, kernel, 1, phasePadding(r, col)); // [n, H, W, O]
    });
  });
  releaseReadCopy(values);
  try {
    const outH = h * PHASE_STRIDE;
    const outW = w * PHASE_STRIDE;
    const out = wasm.makeOutput([n, outH, outW, outChannels], "float32");
    // Views are taken after the last allocation: growing the heap replaces HEAPF32.
    const heap = wasm.wasm.HEAPF32;
    const offset = (info: tf.TensorInfo) =>
      wasm.dataIdMap.get(info.dataId).memoryOffset / Float32Array.BYTES_PER_ELEMENT;
    const dst = offset(out);
    PHASES.forEach(([r, col], p) => {
      // Phase (r, c)'s output (q, x) is read at (q, x) of its own tensor [n, H, W, O] (separate), or at
      // (q + r, x + c), channels p·O..., of the combined [n, H + 1, W + 1, 4·O].
      const source = offset(phases[separate ? p : 0]);
      const [rowStride, pixelStride] = separate
        ? [w * outChannels, outChannels]
        : [(w + 1) * phaseChannels, phaseChannels];
      const imageStride = separate ? h * rowStride : (h + 1) * rowStride;
      const shift = separate ? 0 : r * rowStride + col * pixelStride + p * outChannels;
      for (let b = 0; b < n; b++) {
        for (let q = 0; q < h; q++) {
          let from = source + b * imageStride + q * rowStride + shift;
          let to = dst + ((b * outH + PHASE_STRIDE * q + r) * outW + col) * outChannels;
          for (let x = 0; x < w; x++, from += pixelStride, to += PHASE_STRIDE * outChannels) {
            if (outChannels === 1) heap[to] = heap[from];
            else heap.copyWithin(to, from, from + outChannels);
          }
        }
      }
    });
    return out;
  } finally {
    tf.dispose(phases);
  }
}

/**
 * Conv2DBackpropInput for wasm: the phase split above where it applies, else wasm's own kernel. It is
 * both the input gradient of a convolution and the forward pass of a transposed convolution.
 */
function makeBackpropInput(original: tf.KernelFunc): tf.KernelFunc {
  const kernel = (args: KernelArgs) => {
    const dy = input(tf.Conv2DBackpropInput, args.inputs, "dy");
    const filter = input(tf.Conv2DBackpropInput, args.inputs, "filter");
    const attrs = args.attrs as unknown as tf.Conv2DBackpropInputAttrs;
    if (!isPhaseSplit(dy, filter, attrs)) return original(args as unknown as Parameters<tf.KernelFunc>[0]);
    return phaseSplitBackpropInput(dy, filter, args.backend as unknown as WasmHeapBackend);
  };
  return Object.assign(kernel, { [PHASE_SPLIT]: true }) as unknown as tf.KernelFunc;
}

const TRAINING_KERNELS: tf.KernelConfig[] = [
  {
    kernelName: tf.Conv2DBackpropFilter,
    backendName: WASM_BACKEND,
    kernelFunc: conv2DBackpropFilter as unknown as tf.KernelFunc,
  },
  {
    kernelName: tf.UnsortedSegmentSum,
    backendName: WASM_BACKEND,
    kernelFunc: unsortedSegmentSum as unknown as tf.KernelFunc,
  },
];

/**
 * Registers the kernels above for the 'wasm' backend, and replaces wasm's Conv2DBackpropInput by the phase
 * split (which falls back to the original outside its case). Idempotent, and it leaves alone a missing
 * kernel that is already registered, so that a future tfjs-backend-wasm that brings its own (native)
 * version keeps it. Kernels are looked up at call time, so this may run before or after the wasm backend
 * is initialized.
 */
export function registerWasmTrainingKernels(): void {
  for (const config of TRAINING_KERNELS) {
    if (tf.getKernel(config.kernelName, WASM_BACKEND) == null) tf.registerKernel(config);
  }
  const backprop = tf.getKernel(tf.Conv2DBackpropInput, WASM_BACKEND);
  if (backprop != null && !(PHASE_SPLIT in backprop.kernelFunc)) {
    tf.unregisterKernel(tf.Conv2DBackpropInput, WASM_BACKEND);
    // setupFunc (the native function lookup) stays with the original, which the fallback calls.
    tf.registerKernel({ ...backprop, kernelFunc: makeBackpropInput(backprop.kernelFunc) });
  }
}
