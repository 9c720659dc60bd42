/**
 * A helper thread of ParallelKernels (kernel_threads.ts): runs its part of each kernel call on the shared
 * memory, woken and answering through its control block. It ends when told to (-1) or terminated.
 */
/// <reference lib="deno.worker" />
import { integerArguments, KERNELS, type OptimizerKernels, optimizerKernels } from "./adam_kernel.ts";
import { CONTROL } from "./kernel_threads.ts";

self.onmessage = (event: MessageEvent<{ memory: WebAssembly.Memory; control: SharedArrayBuffer }>) => {
  const kernels: OptimizerKernels = optimizerKernels(event.data.memory);
  const ints = new Int32Array(event.data.control);
  const floats = new Float32Array(event.data.control);
  let seen = 0;
  // One call per turn; the thread has nothing else to do, and sleeps between calls.
  while (seen >= 0) {
    Atomics.wait(ints, CONTROL.seq, seen);
    const seq = Atomics.load(ints, CONTROL.seq);
    if (seq === seen) continue;
    if (seq < 0) break;
    const name = KERNELS[ints[CONTROL.kernel]];
    const args = [
      ...ints.subarray(CONTROL.ints, CONTROL.ints + integerArguments(name)),
      ...floats.subarray(CONTROL.floats, CONTROL.floats + ints[CONTROL.floatCount]),
    ];
    // deno-lint-ignore no-explicit-any
    ints[CONTROL.result] = (kernels[name] as (...a: number[]) => any)(...args) ?? 0;
    seen = seq;
    Atomics.store(ints, CONTROL.done, seq);
    Atomics.notify(ints, CONTROL.done);
  }
  self.close();
};
