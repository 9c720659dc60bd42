/**
 * The coordinator's side of shared memory: one weights segment that every local worker maps, and one
 * segment per local worker for its gradients (which it writes) and its tasks' tensors (which it reads). A
 * worker gets them only after proving (with a probe segment) that it sees this machine's /dev/shm; the
 * others keep using the socket alone.
 *
 * Both kinds are mapped into the coordinator's KernelMemory (master_arrays.ts): the weights segment over
 * the master weights themselves, each worker's gradients over a slot of its own. Adam's output is then what
 * the workers read, and the gradient sum reads what the workers wrote, with no copy either way.
 *
 * A worker unlinks its own segment's name once it has mapped it, so a crash leaves at most the weights
 * segment's name behind, which the next coordinator removes. A departed worker's memory is given back at
 * the next phase, not at once: a result it sent before leaving may still be summed in the phase in flight.
 */
import { align8, type SharedPlacement } from "../shared/codec.ts";
import type { HelloMessage, SharedMemoryOffer } from "../shared/protocol.ts";
import {
  probeMatches,
  segmentName,
  sharedMemorySupport,
  SharedSegment,
  sweepStaleSegments,
  unlinkSegment,
} from "../shared/shared_memory.ts";
import type { MasterArrays } from "./master_arrays.ts";
import { regionBytes } from "./kernel_memory.ts";
import type { WorkerHandle } from "./registry.ts";

/** The largest task a worker can be sent: a shard of the whole global batch. */
export interface TaskShape {
  maxCount: number;
  latentDim: number;
  imageBytes: number;
}

/** A local worker's memory: its own segment, and the same segment's gradients mapped over its slot. */
interface Attached {
  segment: SharedSegment;
  slotMapping: SharedSegment;
  slot: number;
}

export class SharedTransport {
  readonly #arrays: MasterArrays;
  readonly #weights: SharedSegment;
  readonly #gradsBytes: number;
  readonly #taskBytes: number;
  readonly #taskOffsets: Record<string, number>;
  readonly #attached = new Map<WorkerHandle, Attached>();
  readonly #departed: Attached[] = [];
  readonly #freeSlots: number[];
  readonly #log: (line: string) => void;

  private constructor(
    arrays: MasterArrays,
    weights: SharedSegment,
    task: TaskShape,
    log: (line: string) => void,
  ) {
    this.#log = log;
    this.#arrays = arrays;
    this.#weights = weights;
    this.#gradsBytes = regionBytes(arrays.slots[0].length);
    this.#freeSlots = arrays.slots.map((_, i) => arrays.slots.length - 1 - i);
    // A task's tensors, each at a fixed place sized for a shard of the whole batch.
    let at = this.#gradsBytes;
    this.#taskOffsets = {};
    const sizes = {
      z: task.maxCount * task.latentDim * 4,
      labels: task.maxCount,
      real: task.maxCount * task.imageBytes,
      realLabels: task.maxCount,
    };
    for (const [key, bytes] of Object.entries(sizes)) {
      this.#taskOffsets[key] = at;
      at = align8(at + bytes);
    }
    this.#taskBytes = at - this.#gradsBytes;
  }

  /** The transport for these master arrays, or null with the reason logged. */
  static start(arrays: MasterArrays, task: TaskShape, log: (line: string) => void): SharedTransport | null {
    const why = arrays.slots.length === 0 ? "--shared-memory-workers is 0" : sharedMemorySupport();
    if (why) {
      log(`shared memory off: ${why}; workers use the socket for everything`);
      return null;
    }
    const swept = sweepStaleSegments();
    if (swept.length > 0) {
      log(
        `removed ${swept.length} shared-memory segment(s) of gantry processes that were killed: ${
          swept.join(" ")
        }`,
      );
    }
    const published = arrays.published;
    // The mapping replaces the pages' contents with the new segment's zeros.
    const kept = published.slice();
    let weights: SharedSegment;
    try {
      weights = SharedSegment.create(
        segmentName("weights"),
        published.byteLength,
        arrays.memory.pointerTo(arrays.generator),
      );
    } catch (error) {
      log(`shared memory off: ${(error as Error).message}; workers use the socket for everything`);
      return null;
    }
    published.set(kept);
    return new SharedTransport(arrays, weights, task, log);
  }

  /**
   * Offers shared memory to a worker whose hello carries a probe this process can read; returns what its
   * welcome says, or undefined (it then uses the socket alone).
   */
  attach(worker: WorkerHandle, hello: HelloMessage): SharedMemoryOffer | undefined {
    const probe = hello.sharedMemory;
    if (!probe || !probeMatches(probe.probe, probe.nonce)) return undefined;
    const slot = this.#freeSlots.pop();
    if (slot === undefined) {
      this.#log(
        `worker ${worker.id} uses the socket only: all ${this.#arrays.slots.length} shared-memory slots ` +
          "are taken (--shared-memory-workers)",
      );
      return undefined;
    }
    const memory = this.#arrays.memory;
    const slotArray = this.#arrays.slots[slot];
    let segment: SharedSegment | null = null;
    try {
      segment = SharedSegment.create(segmentName("worker"), this.#gradsBytes + this.#taskBytes);
      const slotMapping = SharedSegment.open(segment.name, this.#gradsBytes, memory.pointerTo(slotArray));
      this.#attached.set(worker, { segment, slotMapping, slot });
    } catch (error) {
      if (segment) {
        unlinkSegment(segment.name);
        segment.close();
      }
      this.#freeSlots.push(slot);
      this.#log(`worker ${worker.id} uses the socket only: ${(error as Error).message}`);
      return undefined;
    }
    worker.sharedRegions = { grads: memory.bytesFrom(slotArray, this.#gradsBytes) };
    worker.taskPlacement = { region: "task", memory: segment.bytes, offsets: this.#taskOffsets };
    return {
      weights: this.#weights.name,
      weightsBytes: this.#weights.bytes.byteLength,
      segment: segment.name,
      segmentBytes: segment.bytes.byteLength,
      taskOffset: this.#gradsBytes,
    };
  }

  /** A worker left: its memory is released at the next `releaseDeparted()`. */
  departed(worker: WorkerHandle): void {
    const attached = this.#attached.get(worker);
    if (!attached) return;
    this.#attached.delete(worker);
    unlinkSegment(attached.segment.name);
    this.#departed.push(attached);
  }

  /** Between phases, when no result of a departed worker can still be read. */
  releaseDeparted(): void {
    for (const { segment, slotMapping, slot } of this.#departed.splice(0)) {
      segment.close();
      // Back to private zero pages: the slot is part of the kernels' memory again, free for the next worker.
      slotMapping.close();
      this.#freeSlots.push(slot);
    }
  }

  /**
   * Where a task's weights lie (`fields`: "generator" and/or "discriminator"), which must be published
   * master weights: the worker reads them in place.
   */
  placement(fields: Record<string, Float32Array>): SharedPlacement {
    const published = this.#arrays.published;
    const offsets: Record<string, number> = {};
    for (const [key, values] of Object.entries(fields)) {
      const offset = values.byteOffset - published.byteOffset;
      if (
        values.buffer !== published.buffer || offset < 0 || offset + values.byteLength > published.byteLength
      ) {
        throw new Error(`SharedTransport.placement: "${key}" is not published master weights`);
      }
      offsets[key] = offset;
    }
    return { region: "weights", memory: published, offsets };
  }

  close(): void {
    unlinkSegment(this.#weights.name);
    for (const { segment } of this.#attached.values()) unlinkSegment(segment.name);
  }
}
