import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { assert, assertClose, assertEquals } from "../testing.ts";
import { registerWasmTrainingKernels } from "./wasm_kernels.ts";

/** Largest allowed |wasm − cpu|, relative to the largest |cpu| value of the result. */
const RELATIVE_TOLERANCE = 1e-4;
/**
 * Batch of the model-shape checks: more than one example, so that the kernel's sum over the batch is
 * checked, and small because the cpu reference is slow (its Conv2DBackpropFilter takes about 2 s per
 * example for the 64 -> 128 channel shapes, against milliseconds on wasm).
 */
const BATCH = 2;

interface MemorySnapshot {
  numTensors: number;
  numDataBuffers: number;
  numBytes: number;
  /** What the wasm backend itself holds, which the engine's counts would not show if a kernel leaked. */
  backendDataIds: number;
}

function snapshot(): MemorySnapshot {
  const { numTensors, numDataBuffers, numBytes } = tf.memory();
  return { numTensors, numDataBuffers, numBytes, backendDataIds: tf.backend().numDataIds() };
}

async function useBackend(name: "cpu" | "wasm"): Promise<void> {
  assert(await tf.setBackend(name), `backend ${name} failed to initialize`);
  await tf.ready();
}

/**
 * Runs `compute` on wasm with the kernels registered and returns its result's values and dtype. The
 * engine's own per-kernel leak check is on (IS_TEST), and the memory counts must be the same before and
 * after.
 */
async function onWasm(compute: () => tf.Tensor): Promise<{ values: tf.TypedArray; dtype: tf.DataType }> {
  await useBackend("wasm");
  registerWasmTrainingKernels();
  const before = snapshot();
  const wasIsTest = tf.env().getBool("IS_TEST");
  tf.env().set("IS_TEST", true);
  try {
    const result = tf.tidy(compute);
    const out = { values: (await result.data()).slice(), dtype: result.dtype };
    result.dispose();
    assertEquals(snapshot(), before, "wasm memory after the computation");
    return out;
  } finally {
    tf.env().set("IS_TEST", wasIsTest);
  }
}

/** Runs `compute` on the cpu backend (the reference), then on wasm as `onWasm` does. */
async function onCpuAndWasm(compute: () => tf.Tensor): Promise<{ cpu: Float32Array; wasm: Float32Array }> {
  await useBackend("cpu");
  const cpu = tf.tidy(compute);
  const cpuValues = Float32Array.from(await cpu.data());
  cpu.dispose();
  const wasm = await onWasm(compute);
  return { cpu: cpuValues, wasm: Float32Array.from(wasm.values) };
}

function maxAbs(values: Float32Array): number {
  return values.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
}

async function assertWasmMatchesCpu(what: string, compute: () => tf.Tensor): Promise<void> {
  const { cpu, wasm } = await onCpuAndWasm(compute);
  assert(maxAbs(cpu) > 0, `${what}: the reference is all zeros, which would check nothing`);
  assertClose(wasm, cpu, RELATIVE_TOLERANCE * maxAbs(cpu), what);
}

/** Seeded normal values: the same on both backends, since TF.js draws them in JS. */
function normal(shape: number[], seed: number): tf.Tensor {
  return tf.randomNormal(shape, 0, 1, "float32", seed);
}

type Pad = "same" | "valid";

/** d/dfilter of sum(conv2d(x, filter) · r), with r random so that dy is not uniform. */
function conv2dFilterGrad(
  xShape: number[],
  filterShape: number[],
  strides: number | [number, number],
  pad: Pad,
) {
  return () => {
    const x = normal(xShape, 1) as tf.Tensor4D;
    const filter = normal(filterShape, 2) as tf.Tensor4D;
    const y = tf.conv2d(x, filter, strides, pad);
    const r = normal(y.shape, 3);
    return tf.grad((f: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(x, f as tf.Tensor4D, strides, pad), r)))(filter);
  };
}

/** d/dfilter of sum(conv2dTranspose(x, filter) · r): tfjs-core routes it through Conv2DBackpropFilter too. */
function conv2dTransposeFilterGrad(
  xShape: number[],
  filterShape: number[],
  outShape: number[],
  strides: number,
) {
  return () => {
    const x = normal(xShape, 4) as tf.Tensor4D;
    const filter = normal(filterShape, 5) as tf.Tensor4D;
    const out = outShape as [number, number, number, number];
    const r = normal(outShape, 6);
    return tf.grad((f: tf.Tensor) =>
      tf.sum(tf.mul(tf.conv2dTranspose(x, f as tf.Tensor4D, out, strides, "same"), r))
    )(
      filter,
    );
  };
}

Deno.test("registerWasmTrainingKernels() registers its kernels for wasm, once", () => {
  registerWasmTrainingKernels();
  const conv = tf.getKernel(tf.Conv2DBackpropFilter, "wasm");
  const segment = tf.getKernel(tf.UnsortedSegmentSum, "wasm");
  const backprop = tf.getKernel(tf.Conv2DBackpropInput, "wasm");
  assert(conv !== undefined && segment !== undefined, "both missing kernels are registered");
  assert(backprop !== undefined, "Conv2DBackpropInput is still registered");
  registerWasmTrainingKernels();
  for (const [name, first] of [[tf.Conv2DBackpropFilter, conv], [tf.UnsortedSegmentSum, segment]] as const) {
    assert(tf.getKernel(name, "wasm") === first, `a second call keeps the first ${name} registration`);
  }
  assert(
    tf.getKernel(tf.Conv2DBackpropInput, "wasm")!.kernelFunc === backprop!.kernelFunc,
    "a second call does not wrap Conv2DBackpropInput again",
  );
});

Deno.test("Conv2DBackpropFilter on wasm matches cpu for the discriminator's first conv (28x28x2 -> 64, k4 s2 same)", async () => {
  await assertWasmMatchesCpu("D conv 1", conv2dFilterGrad([BATCH, 28, 28, 2], [4, 4, 2, 64], 2, "same"));
});

Deno.test("Conv2DBackpropFilter on wasm matches cpu for the discriminator's second conv (14x14x64 -> 128, k4 s2 same)", async () => {
  await assertWasmMatchesCpu("D conv 2", conv2dFilterGrad([BATCH, 14, 14, 64], [4, 4, 64, 128], 2, "same"));
});

Deno.test("Conv2DBackpropFilter on wasm matches cpu for the generator's first Conv2DTranspose (7x7x128 -> 14x14x64)", async () => {
  await assertWasmMatchesCpu(
    "G deconv 1",
    conv2dTransposeFilterGrad([BATCH, 7, 7, 128], [4, 4, 64, 128], [BATCH, 14, 14, 64], 2),
  );
});

Deno.test("Conv2DBackpropFilter on wasm matches cpu for the generator's second Conv2DTranspose (14x14x64 -> 28x28x1)", async () => {
  await assertWasmMatchesCpu(
    "G deconv 2",
    conv2dTransposeFilterGrad([BATCH, 14, 14, 64], [4, 4, 1, 64], [BATCH, 28, 28, 1], 2),
  );
});

Deno.test("Conv2DBackpropFilter on wasm matches cpu with stride 1 and 'same' padding split 1/2 (even kernel)", async () => {
  await assertWasmMatchesCpu("k4 s1 same", conv2dFilterGrad([3, 9, 9, 3], [4, 4, 3, 5], 1, "same"));
});

Deno.test("Conv2DBackpropFilter on wasm matches cpu with stride 2 and 'same' padding split 0/1 (odd kernel)", async () => {
  await assertWasmMatchesCpu("k3 s2 same", conv2dFilterGrad([3, 28, 28, 2], [3, 3, 2, 5], 2, "same"));
});

Deno.test("Conv2DBackpropFilter on wasm matches cpu with stride 1 and 'valid' padding, non-square kernel", async () => {
  await assertWasmMatchesCpu("k3x2 s1 valid", conv2dFilterGrad([3, 9, 8, 3], [3, 2, 3, 4], 1, "valid"));
});

Deno.test("Conv2DBackpropFilter on wasm matches cpu with 'valid' padding that leaves input rows unread", async () => {
  // 28 rows, kernel 3, stride 2: 13 outputs read rows 0..26, row 27 is never read.
  await assertWasmMatchesCpu("k3 s2 valid", conv2dFilterGrad([3, 28, 28, 2], [3, 3, 2, 5], 2, "valid"));
});

Deno.test("Conv2DBackpropFilter on wasm matches cpu with different strides along height and width", async () => {
  await assertWasmMatchesCpu("k3x2 s2x1 same", conv2dFilterGrad([2, 10, 7, 3], [3, 2, 3, 4], [2, 1], "same"));
});

Deno.test("Conv2DBackpropFilter on wasm matches cpu for explicit padding, NCHW and rounded numeric padding", async () => {
  const cases: { what: string; xShape: number[]; dyShape: number[]; attrs: tf.NamedAttrMap }[] = [
    {
      what: "explicit asymmetric padding",
      xShape: [2, 9, 8, 3],
      dyShape: [2, 5, 5, 4],
      attrs: {
        strides: [2, 2],
        pad: [[0, 0], [2, 0], [1, 3], [0, 0]],
        dataFormat: "NHWC",
        filterShape: [3, 3, 3, 4],
      },
    },
    {
      what: "NCHW",
      xShape: [2, 3, 10, 10],
      dyShape: [2, 4, 5, 5],
      attrs: { strides: [2, 2], pad: "same", dataFormat: "NCHW", filterShape: [4, 4, 3, 4] },
    },
    {
      what: "numeric padding with dimRoundingMode floor",
      xShape: [2, 10, 10, 3],
      dyShape: [2, 5, 5, 4],
      attrs: {
        strides: [2, 2],
        pad: 1,
        dimRoundingMode: "floor",
        dataFormat: "NHWC",
        filterShape: [3, 3, 3, 4],
      },
    },
  ];
  for (const { what, xShape, dyShape, attrs } of cases) {
    await assertWasmMatchesCpu(what, () => {
      const x = normal(xShape, 7);
      const dy = normal(dyShape, 8);
      return tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, attrs) as tf.Tensor;
    });
  }
});

Deno.test("UnsortedSegmentSum on wasm gives the embedding gradient through tf.gather with repeated ids", async () => {
  // The discriminator's Embedding(10, 784); labels repeat and 2, 4, 6 never occur, so their rows stay zero.
  const ids = [3, 3, 7, 0, 9, 3, 1, 0];
  const { cpu, wasm } = await onCpuAndWasm(() => {
    const table = normal([10, 784], 9);
    const r = normal([ids.length, 784], 10);
    return tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, tf.tensor1d(ids, "int32")), r)))(table);
  });
  assertClose(wasm, cpu, RELATIVE_TOLERANCE * maxAbs(cpu), "embedding gradient");
  for (const unused of [2, 4, 5, 6, 8]) {
    assert(wasm.subarray(unused * 784, (unused + 1) * 784).every((v) => v === 0), `row ${unused} is zero`);
  }
});

Deno.test("UnsortedSegmentSum on wasm gives the gradient of a [N, 1] label lookup, as Keras' Embedding does", async () => {
  // The generator's Embedding(10, 50), fed labels shaped [N, 1].
  await assertWasmMatchesCpu("Embedding(10, 50) gradient", () => {
    const table = normal([10, 50], 11);
    const labels = tf.tensor2d([5, 5, 5, 2, 9, 0, 5, 2], [8, 1], "int32");
    const r = normal([8, 1, 50], 12);
    return tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, labels), r)))(table);
  });
});

Deno.test("UnsortedSegmentSum on wasm drops out-of-range ids and takes multi-axis ids as TensorFlow defines", async () => {
  // tfjs-backend-cpu mishandles ids of rank > 1 (it broadcasts them against the wrong axes), so the
  // reference here is TensorFlow's definition: out[s, k] = sum of x[i, j, k] over segmentIds[i, j] == s.
  const x = [[[1, 2], [3, 4], [5, 6]], [[7, 8], [9, 10], [11, 12]]];
  const ids = [[0, 3, -1], [2, 0, 5]];
  const { values, dtype } = await onWasm(() =>
    tf.engine().runKernel(tf.UnsortedSegmentSum, {
      x: tf.tensor3d(x, [2, 3, 2], "float32"),
      segmentIds: tf.tensor2d(ids, [2, 3], "int32"),
    }, { numSegments: 4 }) as tf.Tensor
  );
  assertEquals(dtype, "float32");
  assertEquals(Array.from(values), [1 + 9, 2 + 10, 0, 0, 7, 8, 3, 4]);
});

Deno.test("UnsortedSegmentSum on wasm sums int32 data exactly, into int32", async () => {
  const big = 2 ** 24 + 1; // Not representable in float32: a float path would round the sum.
  const { values, dtype } = await onWasm(() =>
    tf.engine().runKernel(tf.UnsortedSegmentSum, {
      x: tf.tensor2d([[big, 1], [1, 2], [-3, 4]], [3, 2], "int32"),
      segmentIds: tf.tensor1d([1, 1, 0], "int32"),
    }, { numSegments: 3 }) as tf.Tensor
  );
  assertEquals(dtype, "int32");
  assertEquals(Array.from(values), [-3, 4, big + 1, 3, 0, 0]);
});

Deno.test("the wasm kernels accept bare TensorInfo inputs and leave the caller's data alive", async () => {
  await useBackend("wasm");
  registerWasmTrainingKernels();
  const x = normal([2, 6, 6, 3], 14);
  const dy = normal([2, 3, 3, 4], 15);
  const attrs = { strides: [2, 2], pad: "same", dataFormat: "NHWC", filterShape: [3, 3, 3, 4] };
  const viaEngine = tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, attrs) as tf.Tensor;
  const before = snapshot();
  const kernel = tf.getKernel(tf.Conv2DBackpropFilter, "wasm");
  const bare = (t: tf.Tensor): tf.TensorInfo => ({ dataId: t.dataId, shape: t.shape, dtype: t.dtype });
  const direct = tf.tidy(() =>
    kernel.kernelFunc({ inputs: { x: bare(x), dy: bare(dy) }, backend: tf.backend(), attrs }) as tf.Tensor
  );
  assertEquals(Array.from(await direct.data()), Array.from(await viaEngine.data()));
  direct.dispose();
  assertEquals(snapshot(), before, "memory after the direct call");
  assertEquals((await x.data()).length, 2 * 6 * 6 * 3, "x is still readable");
  tf.dispose([x, dy, viaEngine]);
});

/** conv2dTranspose(x, filter, outShape, strides, pad): the forward pass runs Conv2DBackpropInput. */
function transposedConv(
  xShape: number[],
  filterShape: number[],
  outShape: number[],
  strides: number,
  pad: Pad = "same",
) {
  return () => {
    const x = normal(xShape, 7) as tf.Tensor4D;
    const filter = normal(filterShape, 8) as tf.Tensor4D;
    return tf.conv2dTranspose(x, filter, outShape as [number, number, number, number], strides, pad);
  };
}

Deno.test("Conv2DBackpropInput on wasm matches cpu for G's first Conv2DTranspose (four phase convolutions)", async () => {
  await assertWasmMatchesCpu(
    "G deconv 1",
    transposedConv([BATCH, 7, 7, 128], [4, 4, 64, 128], [BATCH, 14, 14, 64], 2),
  );
});

Deno.test("Conv2DBackpropInput on wasm matches cpu for G's last Conv2DTranspose (one combined convolution)", async () => {
  await assertWasmMatchesCpu(
    "G deconv 2",
    transposedConv([BATCH, 14, 14, 64], [4, 4, 1, 64], [BATCH, 28, 28, 1], 2),
  );
});

Deno.test("Conv2DBackpropInput on wasm matches cpu as the input gradient of D's second conv", async () => {
  await assertWasmMatchesCpu("D conv 2 input gradient", () => {
    const x = normal([BATCH, 14, 14, 64], 9) as tf.Tensor4D;
    const filter = normal([4, 4, 64, 128], 10) as tf.Tensor4D;
    const r = normal([BATCH, 7, 7, 128], 11);
    return tf.grad((input: tf.Tensor) =>
      tf.sum(tf.mul(tf.conv2d(input as tf.Tensor4D, filter, 2, "same"), r))
    )(x);
  });
});

Deno.test("Conv2DBackpropInput on wasm matches cpu for non-square inputs, both phase layouts", async () => {
  await assertWasmMatchesCpu(
    "5x3, 16 channels",
    transposedConv([3, 5, 3, 6], [4, 4, 16, 6], [3, 10, 6, 16], 2),
  );
  await assertWasmMatchesCpu("5x3, 3 channels", transposedConv([3, 5, 3, 6], [4, 4, 3, 6], [3, 10, 6, 3], 2));
});

Deno.test("Conv2DBackpropInput on wasm still matches cpu where it falls back to wasm's own kernel", async () => {
  await assertWasmMatchesCpu("stride 1", transposedConv([2, 6, 6, 4], [4, 4, 5, 4], [2, 6, 6, 5], 1));
  await assertWasmMatchesCpu("kernel 3", transposedConv([2, 6, 6, 4], [3, 3, 5, 4], [2, 12, 12, 5], 2));
  await assertWasmMatchesCpu("valid", transposedConv([2, 6, 6, 4], [4, 4, 5, 4], [2, 14, 14, 5], 2, "valid"));
});
