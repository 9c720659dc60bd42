/**
 * The main thread's handle on the connection thread (link_thread.ts): connect, send, close, and events for
 * frames and losses. Messages are copied once out of msgpackr's reused buffer, then moved to the thread.
 */
import { encodeMessage, type SharedPlacement } from "../shared/codec.ts";
import { GantryError } from "../shared/errors.ts";
import type { Message } from "../shared/protocol.ts";

/** Send buffers kept for reuse (a result frame per phase in flight is the most there can be). */
const MAX_SPARES = 2;
/** Buffers smaller than this are not worth returning from the thread. */
export const SPARE_MIN_BYTES = 64 * 1024;

export interface LinkOptions {
  url: string;
  retryMs: number;
  backoffMaxMs: number;
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
}

/** main → thread */
export type ToLink =
  | { kind: "options"; options: LinkOptions }
  | { kind: "connect"; timeoutMs: number; timeoutFlag: string; backoff: boolean }
  | { kind: "heartbeat"; intervalMs: number; timeoutMs: number }
  | { kind: "send"; data: ArrayBuffer; length: number }
  | { kind: "close"; code: number; reason: string };

/** thread → main */
export type FromLink =
  | { kind: "open" }
  | { kind: "failed"; message: string }
  | { kind: "frame"; data: ArrayBuffer }
  | { kind: "spare"; data: ArrayBuffer }
  | { kind: "closed"; code: number; reason: string }
  | { kind: "log"; line: string };

export interface LinkEvents {
  frame: (bytes: Uint8Array) => void;
  closed: (code: number, reason: string) => void;
  log: (line: string) => void;
}

export class CoordinatorLink {
  readonly #thread: Worker;
  readonly #events: LinkEvents;
  #connecting: { resolve: () => void; reject: (error: Error) => void } | null = null;
  #closing: (() => void) | null = null;
  /** Send buffers back from the thread once their bytes are on their way, to encode the next frames into. */
  #spares: ArrayBuffer[] = [];

  constructor(options: LinkOptions, events: LinkEvents) {
    this.#events = events;
    this.#thread = new Worker(new URL("./link_thread.ts", import.meta.url).href, { type: "module" });
    this.#thread.onmessage = (event: MessageEvent<FromLink>) => this.#receive(event.data);
    this.#thread.onerror = (event) => {
      event.preventDefault();
      this.#events.log(`connection thread failed: ${event.message}`);
      this.#events.closed(1011, "connection thread failed");
    };
    this.#post({ kind: "options", options });
  }

  /** Opens the connection, retrying for `timeoutMs`; rejects with E_TIMEOUT naming `timeoutFlag`. */
  connect(timeoutMs: number, timeoutFlag: string, backoff: boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#connecting = { resolve, reject };
      this.#post({ kind: "connect", timeoutMs, timeoutFlag, backoff });
    });
  }

  /** Adopts the coordinator's heartbeat settings (from its welcome). */
  setHeartbeat(intervalMs: number, timeoutMs: number): void {
    this.#post({ kind: "heartbeat", intervalMs, timeoutMs });
  }

  /** `shared`: tensors to put in shared memory rather than the frame (the gradients of a result). */
  send(message: Message, shared?: SharedPlacement): void {
    // Encoded into a spare buffer when one is large enough: a result's megabytes then cost a memcpy into
    // warm memory instead of a fresh allocation's page faults.
    const spare = this.#spares.pop();
    const frame = encodeMessage(message, undefined, spare, shared);
    if (spare && frame.buffer !== spare) this.#spares.push(spare);
    // A large frame owns its buffer and moves to the thread as is; a small one may sit in Node's Buffer
    // pool, shared with others: copy it (a memcpy) into bytes of its own first.
    const owned = frame.byteOffset === 0 &&
      (frame.buffer === spare || frame.byteLength === frame.buffer.byteLength);
    const bytes = owned ? frame : frame.slice();
    const data = bytes.buffer as ArrayBuffer;
    this.#post({ kind: "send", data, length: bytes.byteLength }, [data]);
  }

  /** Closes the connection; resolves once it is closed, or after `waitMs`. */
  close(code: number, reason: string, waitMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, waitMs);
      this.#closing = () => {
        clearTimeout(timer);
        resolve();
      };
      this.#post({ kind: "close", code, reason });
    });
  }

  terminate(): void {
    this.#thread.terminate();
  }

  #post(message: ToLink, transfer: Transferable[] = []): void {
    this.#thread.postMessage(message, { transfer });
  }

  #receive(message: FromLink): void {
    switch (message.kind) {
      case "open":
        this.#connecting?.resolve();
        this.#connecting = null;
        break;
      case "failed":
        this.#connecting?.reject(new GantryError("E_TIMEOUT", message.message));
        this.#connecting = null;
        break;
      case "frame":
        this.#events.frame(new Uint8Array(message.data));
        break;
      case "closed":
        if (this.#closing) {
          this.#closing();
          this.#closing = null;
        } else this.#events.closed(message.code, message.reason);
        break;
      case "log":
        this.#events.log(message.line);
        break;
      case "spare":
        if (this.#spares.length < MAX_SPARES) this.#spares.push(message.data);
        break;
    }
  }
}
