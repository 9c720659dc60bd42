/**
 * The coordinator's big arrays, laid out once in one KernelMemory: the master weights, Adam's moments, the
 * gradient sums, and a slot per local worker for its gradients. The weights the workers read (G and D,
 * each with its staged update) sit next to each other, so that one shared-memory segment mapped over them
 * publishes all four: Adam then writes the weights the workers read, and nothing is copied to broadcast them.
 */
import { Adam, type AdamSettings } from "./adam.ts";
import { KernelMemory, regionBytes } from "./kernel_memory.ts";

export interface MasterArrays {
  memory: KernelMemory;
  generator: Float32Array;
  /** G's update, staged at the end of its phase; it trades places with `generator` when the step commits. */
  stagedGenerator: Float32Array;
  discriminator: Float32Array;
  /** D's update staged during G's phase; it trades places with `discriminator` when the step commits. */
  stagedDiscriminator: Float32Array;
  /** The bytes of the four weight arrays above, in this order, as one span of `memory`. */
  published: Uint8Array;
  gradG: Float32Array;
  gradD: Float32Array;
  adamG: Adam;
  adamD: Adam;
  /** Room for one worker's gradient each (either net's), where its shared memory is mapped. */
  slots: Float32Array[];
}

export function masterArrays(
  generatorSize: number,
  discriminatorSize: number,
  adam: AdamSettings,
  slots: number,
  threads = 1,
  timeoutMs?: number,
): MasterArrays {
  const g = generatorSize, d = discriminatorSize, slot = Math.max(g, d);
  // G and D with their staged updates, in this order: the published span.
  const weights = [g, g, d, d];
  const memory = new KernelMemory(
    [
      ...weights,
      // The gradient sums.
      g,
      d,
      ...new Array(Adam.REGIONS).fill(g),
      ...new Array(Adam.REGIONS).fill(d),
      ...new Array(slots).fill(slot),
    ],
    threads,
    timeoutMs,
  );
  const [generator, stagedGenerator, discriminator, stagedDiscriminator] = weights.map((n) =>
    memory.floats(n)
  );
  const published = memory.bytesFrom(generator, weights.reduce((sum, n) => sum + regionBytes(n), 0));
  return {
    memory,
    generator,
    stagedGenerator,
    discriminator,
    stagedDiscriminator,
    published,
    gradG: memory.floats(g),
    gradD: memory.floats(d),
    adamG: new Adam(g, adam, memory),
    adamD: new Adam(d, adam, memory),
    slots: Array.from({ length: slots }, () => memory.floats(slot)),
  };
}
