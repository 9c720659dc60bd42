/**
 * The coordinator's side of shared memory: one weights segment that every local worker maps, and one
 * segment per local worker for its gradients (which it writes) and its tasks' tensors (which it reads). A
 * worker gets them only after proving (with a probe segment) that it sees this machine's /dev/shm; the
 * others keep using the socket alone.
 *
 * A worker unlinks its own segment's name once it has mapped it, so a crash leaves at most the weights
 * segment's name behind, which the next coordinator removes. A departed worker's memory is given back at
 * the next phase, not at once: a result it sent before leaving may still be summed in the phase in flight.
 */
import { align8, type SharedPlacement } from "../shared/codec.ts";
import type { HelloMessage, Phase, SharedMemoryOffer } from "../shared/protocol.ts";
import {
  probeMatches,
  segmentName,
  sharedMemorySupport,
  SharedSegment,
  sweepStaleSegments,
  unlinkSegment,
} from "../shared/shared_memory.ts";
import type { WorkerHandle } from "./registry.ts";

/** The largest task a worker can be sent: a shard of the whole global batch. */
export interface TaskShape {
  maxCount: number;
  latentDim: number;
  imageBytes: number;
}

export class SharedTransport {
  readonly #weights: SharedSegment;
  readonly #discriminatorOffset: number;
  readonly #gradsBytes: number;
  readonly #taskBytes: number;
  readonly #taskOffsets: Record<string, number>;
  readonly #segments = new Map<WorkerHandle, SharedSegment>();
  readonly #departed: SharedSegment[] = [];
  readonly #log: (line: string) => void;

  private constructor(
    weights: SharedSegment,
    discriminatorOffset: number,
    gradsBytes: number,
    task: TaskShape,
    log: (line: string) => void,
  ) {
    this.#log = log;
    this.#weights = weights;
    this.#discriminatorOffset = discriminatorOffset;
    this.#gradsBytes = gradsBytes;
    // A task's tensors, each at a fixed place sized for a shard of the whole batch.
    let at = gradsBytes;
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
    this.#taskBytes = at - gradsBytes;
  }

  /** The transport for nets of these sizes (floats), or null with the reason logged. */
  static start(
    generatorSize: number,
    discriminatorSize: number,
    task: TaskShape,
    log: (line: string) => void,
  ): SharedTransport | null {
    const why = sharedMemorySupport();
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
    const discriminatorOffset = align8(generatorSize * 4);
    let weights: SharedSegment;
    try {
      weights = SharedSegment.create(segmentName("weights"), discriminatorOffset + discriminatorSize * 4);
    } catch (error) {
      log(`shared memory off: ${(error as Error).message}; workers use the socket for everything`);
      return null;
    }
    const gradsBytes = align8(Math.max(generatorSize, discriminatorSize) * 4);
    return new SharedTransport(weights, discriminatorOffset, gradsBytes, task, log);
  }

  /**
   * Offers shared memory to a worker whose hello carries a probe this process can read; returns what its
   * welcome says, or undefined (it then uses the socket alone).
   */
  attach(worker: WorkerHandle, hello: HelloMessage): SharedMemoryOffer | undefined {
    const probe = hello.sharedMemory;
    if (!probe || !probeMatches(probe.probe, probe.nonce)) return undefined;
    let segment: SharedSegment;
    try {
      segment = SharedSegment.create(segmentName("worker"), this.#gradsBytes + this.#taskBytes);
    } catch (error) {
      this.#log(`worker ${worker.id} uses the socket only: ${(error as Error).message}`);
      return undefined;
    }
    this.#segments.set(worker, segment);
    worker.sharedRegions = { grads: segment.bytes.subarray(0, this.#gradsBytes) };
    worker.taskPlacement = { region: "task", memory: segment.bytes, offsets: this.#taskOffsets };
    return {
      weights: this.#weights.name,
      weightsBytes: this.#weights.bytes.byteLength,
      discriminatorOffset: this.#discriminatorOffset,
      segment: segment.name,
      segmentBytes: segment.bytes.byteLength,
      taskOffset: this.#gradsBytes,
    };
  }

  /** A worker left: its segment is released at the next `releaseDeparted()`. */
  departed(worker: WorkerHandle): void {
    const segment = this.#segments.get(worker);
    if (!segment) return;
    this.#segments.delete(worker);
    unlinkSegment(segment.name);
    this.#departed.push(segment);
  }

  /** Between phases, when no result of a departed worker can still be read. */
  releaseDeparted(): void {
    for (const segment of this.#departed.splice(0)) segment.close();
  }

  /** Where a weights frame for `net` puts its values. */
  placement(net: Phase): SharedPlacement {
    return {
      region: "weights",
      memory: this.#weights.bytes,
      offsets: { values: net === "G" ? 0 : this.#discriminatorOffset },
    };
  }

  close(): void {
    unlinkSegment(this.#weights.name);
    for (const segment of this.#segments.values()) unlinkSegment(segment.name);
  }
}
