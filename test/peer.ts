/**
 * A test's own worker-side connection that speaks gantry's protocol on Deno's WebSocket: to join as a
 * worker that then misbehaves, or to check what the coordinator answers a bad hello with.
 */
import { decodeFrame, encodeMessage } from "../shared/codec.ts";
import { within } from "../shared/testing.ts";
import { modelSpecs } from "../shared/models/specs.ts";
import {
  type ExpectedSizes,
  expectedSizes,
  type HelloMessage,
  type Message,
  PROTOCOL_VERSION,
  type TaskMessage,
  type WelcomeMessage,
} from "../shared/protocol.ts";

type Frame = Record<string, unknown>;

export function helloMessage(token?: string, version = PROTOCOL_VERSION): HelloMessage {
  return {
    type: "hello",
    version,
    name: "test-peer",
    gpu: null,
    pid: Deno.pid,
    backend: { name: "none", tfjsVersion: "0", devices: [], fallbackReasons: [] },
    ...(token ? { token } : {}),
  };
}

export class TestPeer {
  readonly #socket: WebSocket;
  readonly #frames: Frame[] = [];
  #wake: (() => void) | null = null;
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(socket: WebSocket) {
    this.#socket = socket;
    socket.onmessage = (event) => {
      const frame = decodeFrame(new Uint8Array(event.data as ArrayBuffer)) as Frame;
      if (frame.type === "heartbeat") return;
      this.#frames.push(frame);
      this.#wake?.();
    };
    this.closed = new Promise((resolve) => {
      socket.onclose = (event) => {
        resolve({ code: event.code, reason: event.reason });
        this.#wake?.();
      };
    });
  }

  static open(url: string, timeoutMs: number): Promise<TestPeer> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url);
      socket.binaryType = "arraybuffer";
      const timer = setTimeout(
        () => reject(new Error(`no connection to ${url} in ${timeoutMs} ms`)),
        timeoutMs,
      );
      socket.onopen = () => {
        clearTimeout(timer);
        resolve(new TestPeer(socket));
      };
      socket.onerror = () => {
        clearTimeout(timer);
        reject(new Error(`cannot connect to ${url}`));
      };
    });
  }

  send(message: Message | Frame): void {
    this.#socket.send(encodeMessage(message as Message));
  }

  sendBytes(bytes: Uint8Array | string): void {
    this.#socket.send(bytes);
  }

  /** The next frame other than a heartbeat; throws after `timeoutMs` or when the connection closes first. */
  async next(timeoutMs: number): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    while (this.#frames.length === 0) {
      if (this.#socket.readyState === WebSocket.CLOSED) throw new Error("closed before the next frame");
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no frame within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = null;
    }
    return this.#frames.shift()!;
  }

  /** Resolves with the close, or throws after `timeoutMs`. */
  closedWithin(timeoutMs: number): Promise<{ code: number; reason: string }> {
    return within(timeoutMs, "the close", this.closed);
  }

  close(): void {
    try {
      this.#socket.close();
    } catch { /* closed already */ }
  }

  /** Joins as a worker: hello, then the welcome (throws when refused instead). */
  async join(
    token: string | undefined,
    timeoutMs: number,
  ): Promise<WelcomeMessage & { sizes: ExpectedSizes }> {
    this.send(helloMessage(token));
    const welcome = await this.next(timeoutMs);
    if (welcome.type !== "welcome") throw new Error(`expected a welcome, got ${JSON.stringify(welcome)}`);
    const w = welcome as unknown as WelcomeMessage;
    return { ...w, sizes: expectedSizes(modelSpecs(w.model, w.latentDim)) };
  }

  /** Waits for the next task (weights frames, which come ahead of it, are passed over). */
  async task(timeoutMs: number): Promise<TaskMessage> {
    let frame = await this.next(timeoutMs);
    while (frame.type === "weights") frame = await this.next(timeoutMs);
    if (frame.type !== "task") throw new Error(`expected a task, got ${String(frame.type)}`);
    return frame as unknown as TaskMessage;
  }
}
