/**
 * Per-kernel time of a piece of work, from tf.profile (which times every kernel the engine runs, on any
 * backend). A kernel implemented with other kernels (this project's wasm Conv2DBackpropFilter, say) is
 * listed with its total time and its inner kernels are listed too, so "self" subtracts them.
 */
import * as tf from "@tensorflow/tfjs-core";

export interface KernelTime {
  name: string;
  calls: number;
  /** Wall time inside the kernel, including kernels it calls. */
  totalMs: number;
  /** totalMs less the time of the kernels it called (what the kernel itself costs). */
  selfMs: number;
}

export interface KernelProfile {
  kernels: KernelTime[];
  /** Sum of the self times: the time spent in kernels at all. */
  kernelMs: number;
  /** Wall time of the profiled work (kernels + everything around them, slower than unprofiled). */
  wallMs: number;
}

interface RecordedKernel {
  name: string;
  inputShapes: Array<number[] | null>;
  kernelTimeMs: number | { error: string } | Promise<number | { error: string }>;
  /** Snapshot of the engine's tensor count after the kernel; unused here. */
  totalTensorsSnapshot: number;
}

/**
 * Runs `work` under tf.profile and sums its kernels by name (or by name and input shapes). tf.profile lists kernels in the order they
 * finish, a composite kernel after the kernels inside it; its inner kernels are attributed to it by the
 * engine's nesting depth, which the profile does not record, so self time is computed from a wrapper that
 * counts how deep the engine is when each kernel runs.
 */
export async function profileKernels(work: () => void, byShape = false): Promise<KernelProfile> {
  const depths: number[] = [];
  const restore = trackDepth(depths);
  const started = performance.now();
  let info: Awaited<ReturnType<typeof tf.profile>>;
  try {
    info = await tf.profile(work);
  } finally {
    restore();
  }
  const wallMs = performance.now() - started;
  const recorded = info.kernels as unknown as RecordedKernel[];
  const times = await Promise.all(recorded.map(async (k) => {
    const t = await k.kernelTimeMs;
    return typeof t === "number" ? t : 0;
  }));
  // Self time: a kernel at depth d that finishes after kernels at depth d+1 contains them.
  const self = times.slice();
  const childTotals: number[] = [];
  recorded.forEach((_, i) => {
    const depth = depths[i] ?? 0;
    self[i] = times[i] - (childTotals[depth + 1] ?? 0);
    childTotals[depth + 1] = 0;
    childTotals[depth] = (childTotals[depth] ?? 0) + times[i];
  });
  const byName = new Map<string, KernelTime>();
  recorded.forEach((k, i) => {
    const name = byShape
      ? `${k.name || "(custom op)"} ${k.inputShapes.map((s) => `[${s}]`).join(" ")}`
      : k.name;
    const entry = byName.get(name) ?? { name, calls: 0, totalMs: 0, selfMs: 0 };
    entry.calls++;
    entry.totalMs += times[i];
    entry.selfMs += self[i];
    byName.set(name, entry);
  });
  const kernels = [...byName.values()].sort((a, b) => b.selfMs - a.selfMs);
  return { kernels, kernelMs: self.reduce((a, b) => a + b, 0), wallMs };
}

/**
 * Records, for each kernel the profile will list (in finishing order), how many kernels were running
 * around it. The engine's runKernelFunc is wrapped for the duration of the profile only.
 */
function trackDepth(depths: number[]): () => void {
  const engine = tf.engine() as unknown as { runKernelFunc: (...args: unknown[]) => unknown };
  const original = engine.runKernelFunc;
  let depth = 0;
  engine.runKernelFunc = function (this: unknown, ...args: unknown[]) {
    const mine = depth++;
    try {
      return original.apply(this, args);
    } finally {
      depth--;
      depths.push(mine);
    }
  };
  return () => {
    engine.runKernelFunc = original;
  };
}
