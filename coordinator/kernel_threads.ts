/**
 * The kernels' work split over threads. Between a phase's last result and the next phase's tasks, every
 * worker waits for the coordinator's gradient sum and Adam, so the machine's other cores are idle then:
 * each kernel call is cut into contiguous byte ranges, the first done on this thread and the others by
 * helper threads that share the (shared) WebAssembly memory. The results are the same to the bit, since
 * every float is computed by the same instructions whichever thread computes it.
 *
 * A helper sleeps in Atomics.wait on its control block until given a call, and wakes this thread the same
 * way when done: 40 to 90 microseconds for the round trip here, against about a millisecond of work per
 * call. (Polling instead of sleeping was faster in simulated runs and much slower in real ones, where a
 * polling thread could share a core with the thread it waited for.)
 */
import {
  integerArguments,
  type KernelName,
  KERNELS,
  type OptimizerKernels,
  optimizerKernels,
} from "./adam_kernel.ts";

/** Control block layout (Int32 slots; the float arguments share the block through a Float32 view). */
export const CONTROL = {
  /** Call number; a helper runs each new one; -1 stops it. */
  seq: 0,
  /** The last call number done. */
  done: 1,
  kernel: 2,
  result: 3,
  floatCount: 4,
  /** Integer arguments (addresses, then the byte count), then float ones. */
  ints: 5,
  floats: 17,
  length: 29,
} as const;
/** Ranges are cut at whole SIMD vectors. */
const VECTOR = 16;

interface Helper {
  thread: Worker;
  ints: Int32Array;
  floats: Float32Array;
  seq: number;
}

export class ParallelKernels implements OptimizerKernels {
  readonly #local: OptimizerKernels;
  readonly #helpers: Helper[];
  readonly #timeoutMs: number;

  /** `memory` must be shared; `threads` counts this one. */
  constructor(memory: WebAssembly.Memory, threads: number, timeoutMs: number) {
    if (!(memory.buffer instanceof SharedArrayBuffer)) {
      throw new Error("ParallelKernels: the memory must be shared");
    }
    this.#local = optimizerKernels(memory);
    this.#timeoutMs = timeoutMs;
    this.#helpers = Array.from({ length: threads - 1 }, () => {
      const control = new SharedArrayBuffer(CONTROL.length * 4);
      const thread = new Worker(new URL("./kernel_thread.ts", import.meta.url).href, { type: "module" });
      thread.postMessage({ memory, control });
      return { thread, ints: new Int32Array(control), floats: new Float32Array(control), seq: 0 };
    });
  }

  readonly adam = this.#kernel("adam");
  readonly scaleInto = this.#kernel("scaleInto");
  readonly addScaled = this.#kernel("addScaled");
  readonly adamSum1 = this.#kernel("adamSum1");
  readonly adamSum2 = this.#kernel("adamSum2");
  readonly adamSum3 = this.#kernel("adamSum3");
  readonly adamSum4 = this.#kernel("adamSum4");

  #kernel(name: KernelName): (...args: number[]) => number {
    const ints = integerArguments(name);
    return (...args: number[]) => this.#split(name, args.slice(0, ints), args.slice(ints));
  }

  /** Runs `kernel` over its byte range cut into one part per thread; ORs the parts' results. */
  #split(kernel: KernelName, ints: number[], floats: number[]): number {
    const bytesAt = ints.length - 1;
    const bytes = ints[bytesAt];
    const parts = this.#helpers.length + 1;
    const cut = (k: number) => Math.min(bytes, Math.ceil((bytes * k) / parts / VECTOR) * VECTOR);
    const part = (k: number): number[] => {
      const start = cut(k);
      return ints.map((v, i) => (i === bytesAt ? cut(k + 1) - start : v + start));
    };
    this.#helpers.forEach((h, i) => {
      const args = part(i + 1);
      h.ints[CONTROL.kernel] = KERNELS.indexOf(kernel);
      h.ints[CONTROL.floatCount] = floats.length;
      h.ints.set(args, CONTROL.ints);
      h.floats.set(floats, CONTROL.floats);
      h.seq++;
      Atomics.store(h.ints, CONTROL.seq, h.seq);
      Atomics.notify(h.ints, CONTROL.seq);
    });
    const mine = part(0);
    // deno-lint-ignore no-explicit-any
    let result = (this.#local[kernel] as (...a: number[]) => any)(...mine, ...floats) ?? 0;
    for (const h of this.#helpers) {
      const deadline = performance.now() + this.#timeoutMs;
      while (Atomics.load(h.ints, CONTROL.done) !== h.seq) {
        const left = deadline - performance.now();
        if (left <= 0) throw new Error(`a kernel thread did not finish ${kernel} in ${this.#timeoutMs} ms`);
        Atomics.wait(h.ints, CONTROL.done, h.seq - 1, left);
      }
      result |= h.ints[CONTROL.result];
    }
    return result;
  }

  close(): void {
    for (const h of this.#helpers) {
      Atomics.store(h.ints, CONTROL.seq, -1);
      Atomics.notify(h.ints, CONTROL.seq);
      h.thread.terminate();
    }
    this.#helpers.length = 0;
  }
}
