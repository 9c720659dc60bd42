/**
 * The worker's side of shared memory (coordinator/shared_transport.ts): it offers a probe in its hello when
 * the coordinator is on this machine, and, if the welcome takes the offer, maps the weights segment (read
 * only: they are the coordinator's master weights) and its own segment (gradients written, tasks read),
 * whose name it then unlinks: nobody else needs to open it.
 */
import type { Config } from "../config/config.ts";
import { isLoopback } from "../config/load.ts";
import type { SharedPlacement } from "../shared/codec.ts";
import type { SharedMemoryOffer } from "../shared/protocol.ts";
import { sharedMemorySupport, SharedSegment, unlinkSegment, writeProbe } from "../shared/shared_memory.ts";

export class LocalMemory {
  #probe: { probe: string; nonce: string } | null = null;
  #weights: SharedSegment | null = null;
  #own: SharedSegment | null = null;
  /** The regions a coordinator's frame may place tensors in. */
  regions: Readonly<Record<string, Uint8Array>> = {};
  /** Where a result's gradients go, when shared memory is on. */
  gradsPlacement: SharedPlacement | undefined;

  /** Why shared memory is off for this worker, or null when it will be offered. */
  static unavailable(config: Config): string | null {
    if (config.sharedMemory === "off") return "--shared-memory off";
    if (!isLoopback(new URL(config.coordinator).hostname.replace(/^\[|\]$/g, ""))) {
      return "the coordinator is on another machine";
    }
    return sharedMemorySupport();
  }

  /** What a hello offers: a fresh probe (any earlier one is removed). */
  offer(): { probe: string; nonce: string } {
    this.#removeProbe();
    const { name, nonce } = writeProbe();
    this.#probe = { probe: name, nonce };
    return this.#probe;
  }

  /** Takes up a welcome's offer (or, without one, keeps to the socket); returns what the log should say. */
  accept(offer: SharedMemoryOffer | undefined): string {
    this.#removeProbe();
    this.close();
    if (!offer) return "socket only";
    this.#weights = SharedSegment.openReadOnly(offer.weights, offer.weightsBytes);
    this.#own = SharedSegment.open(offer.segment, offer.segmentBytes);
    unlinkSegment(offer.segment);
    const own = this.#own.bytes;
    this.regions = { weights: this.#weights.bytes, task: own };
    this.gradsPlacement = {
      region: "grads",
      memory: own.subarray(0, offer.taskOffset),
      offsets: { grads: 0 },
    };
    return "shared memory";
  }

  /** The first `size` floats of the gradient region, where a phase's gradient can be computed in place. */
  gradsView(size: number): Float32Array {
    if (!this.gradsPlacement) throw new Error("LocalMemory.gradsView: no shared memory");
    const memory = this.gradsPlacement.memory;
    return new Float32Array(memory.buffer, memory.byteOffset, size);
  }

  close(): void {
    this.#removeProbe();
    this.#weights?.close();
    this.#own?.close();
    [this.#weights, this.#own, this.regions, this.gradsPlacement] = [null, null, {}, undefined];
  }

  #removeProbe(): void {
    if (this.#probe) unlinkSegment(this.#probe.probe);
    this.#probe = null;
  }
}
