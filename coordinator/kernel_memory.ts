/**
 * One WebAssembly memory for the arrays the coordinator's SIMD kernels (adam_kernel.ts) work on: master
 * weights, gradient sums, Adam's moments, and the slots where local workers' gradients appear. The kernels
 * read and write only their own memory, so whatever they touch must live here to be touched without a copy.
 *
 * Every region starts on a 64 KiB boundary and spans whole 64 KiB: a whole number of pages on every Linux
 * platform, so any region can be replaced by a mapping of a shared-memory segment (SharedSegment's `at`).
 * That is how the workers read the master weights, and the coordinator sums their gradients, where they lie.
 * The memory has a fixed size (growing it would detach every view); pages never touched cost no RAM. With
 * more than one thread it is a shared memory, and the kernels' work is split over threads (kernel_threads.ts).
 */
import { type OptimizerKernels, optimizerKernels } from "./adam_kernel.ts";
import { ParallelKernels } from "./kernel_threads.ts";

const WASM_PAGE = 65536;
/** Regions start and end on this boundary. */
export const REGION_ALIGN = WASM_PAGE;

/** The bytes a region of `floats` float32 values takes. */
export function regionBytes(floats: number): number {
  return Math.max(1, Math.ceil((floats * 4) / REGION_ALIGN)) * REGION_ALIGN;
}

export class KernelMemory {
  readonly memory: WebAssembly.Memory;
  readonly kernels: OptimizerKernels;
  #next = 0;

  /**
   * Room for regions of these many floats each (see regionBytes). `threads`: how many run each kernel call
   * (this one and helpers), each waited for at most `timeoutMs`.
   */
  constructor(regionFloats: number[], threads = 1, timeoutMs = 60_000) {
    const bytes = regionFloats.reduce((sum, n) => sum + regionBytes(n), 0);
    const pages = Math.max(1, bytes / WASM_PAGE);
    const shared = threads > 1;
    this.memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared });
    this.kernels = shared
      ? new ParallelKernels(this.memory, threads, timeoutMs)
      : optimizerKernels(this.memory);
  }

  /** Stops the helper threads, if any. */
  close(): void {
    if (this.kernels instanceof ParallelKernels) this.kernels.close();
  }

  /** The next region: `size` zeroed floats (the region itself may be longer: see regionBytes). */
  floats(size: number): Float32Array {
    const bytes = regionBytes(size);
    if (this.#next + bytes > this.memory.buffer.byteLength) {
      throw new Error(
        `KernelMemory: no room for ${size} more floats (${this.#next} of ${this.memory.buffer.byteLength} bytes used)`,
      );
    }
    const view = new Float32Array(this.memory.buffer, this.#next, size);
    this.#next += bytes;
    return view;
  }

  /** True when `array` is a view of this memory. */
  holds(array: ArrayBufferView): boolean {
    return array.buffer === this.memory.buffer;
  }

  /** The bytes from `array`'s start over `bytes` bytes, as a view of this memory. */
  bytesFrom(array: Float32Array, bytes: number): Uint8Array {
    if (!this.holds(array)) throw new Error("KernelMemory.bytesFrom: the array is not in this memory");
    return new Uint8Array(this.memory.buffer, array.byteOffset, bytes);
  }

  /** The address of `array`'s first byte, for mapping shared memory over it. */
  pointerTo(array: Float32Array): Deno.PointerObject {
    if (!this.holds(array)) throw new Error("KernelMemory.pointerTo: the array is not in this memory");
    const base = Deno.UnsafePointer.of(new Uint8Array(this.memory.buffer));
    const at = base && Deno.UnsafePointer.offset(base, array.byteOffset);
    if (!at) throw new Error("KernelMemory.pointerTo: no address for the memory");
    return at;
  }
}
