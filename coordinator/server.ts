/**
 * The coordinator's WebSocket endpoint (npm:ws): handshake with timeout, frame size limit, validation of
 * every frame, and routing of results to the worker that owes them.
 */
import { type WebSocket, WebSocketServer } from "ws";
import { decodeFrame, encodeMessage } from "../shared/codec.ts";
import { errorMessage, GantryError } from "../shared/errors.ts";
import {
  type ExpectedSizes,
  type HelloMessage,
  PROTOCOL_VERSION,
  validateFromWorker,
  type WelcomeMessage,
} from "../shared/protocol.ts";
import type { WorkerHandle, WorkerRegistry } from "./registry.ts";

export interface ServerOptions {
  host: string;
  port: number;
  maxFrameBytes: number;
  handshakeTimeoutMs: number;
  sizes: ExpectedSizes;
  welcome: Omit<WelcomeMessage, "workerId" | "type" | "version">;
  /** The step a joining worker will first take part in (for the registry's record). */
  currentStep: () => number;
  onJoin: (worker: WorkerHandle) => void;
  log: (line: string) => void;
}

function toBytes(data: unknown): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (Array.isArray(data)) {
    const parts = data as Uint8Array[];
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
  throw new GantryError("E_BAD_MESSAGE", "frame is not binary");
}

export class CoordinatorServer {
  readonly #wss: WebSocketServer;
  readonly port: number;

  private constructor(wss: WebSocketServer, port: number) {
    this.#wss = wss;
    this.port = port;
  }

  static start(options: ServerOptions, registry: WorkerRegistry): Promise<CoordinatorServer> {
    return new Promise((resolve, reject) => {
      const wss = new WebSocketServer({
        host: options.host,
        port: options.port,
        maxPayload: options.maxFrameBytes,
      });
      wss.once("error", (error: Error) => {
        reject(
          new GantryError("E_CONFIG", `cannot listen on ${options.host}:${options.port}: ${error.message}`),
        );
      });
      wss.once("listening", () => {
        const address = wss.address();
        const port = typeof address === "object" && address ? address.port : options.port;
        wss.on("connection", (socket: WebSocket) => acceptConnection(socket, options, registry));
        resolve(new CoordinatorServer(wss, port));
      });
    });
  }

  close(): Promise<void> {
    for (const client of this.#wss.clients) client.terminate();
    return new Promise((resolve) => this.#wss.close(() => resolve()));
  }
}

/** Refuses a connection that is not a worker yet: error frame with the reason, then close. */
function refuse(socket: WebSocket, error: GantryError, log: (line: string) => void): void {
  log(`refused a connection: ${error.code}: ${error.message}`);
  try {
    socket.send(
      encodeMessage({ type: "error", version: PROTOCOL_VERSION, code: error.code, message: error.message }),
    );
  } finally {
    socket.close(error.closeCode, error.code);
  }
}

function acceptConnection(socket: WebSocket, options: ServerOptions, registry: WorkerRegistry): void {
  let worker: WorkerHandle | null = null;
  const handshake = setTimeout(() => {
    refuse(
      socket,
      new GantryError("E_TIMEOUT", `no hello within ${options.handshakeTimeoutMs} ms`),
      options.log,
    );
  }, options.handshakeTimeoutMs);

  socket.on("message", (data: unknown) => {
    let message;
    try {
      message = validateFromWorker(decodeFrame(toBytes(data)), options.sizes);
    } catch (error) {
      const e = error instanceof GantryError ? error : new GantryError("E_BAD_MESSAGE", errorMessage(error));
      if (worker) worker.drop(e);
      else {
        clearTimeout(handshake);
        refuse(socket, e, options.log);
      }
      return;
    }
    if (!worker) {
      if (message.type !== "hello") {
        clearTimeout(handshake);
        refuse(
          socket,
          new GantryError("E_PROTOCOL", `first frame must be hello, got ${message.type}`),
          options.log,
        );
        return;
      }
      clearTimeout(handshake);
      worker = registry.add(message as HelloMessage, socket, options.currentStep());
      worker.send({ type: "welcome", version: PROTOCOL_VERSION, workerId: worker.id, ...options.welcome });
      options.onJoin(worker);
      return;
    }
    if (message.type === "result") worker.receiveResult(message);
    else if (message.type === "error") {
      worker.drop(new GantryError("E_CLOSED", `worker reported ${message.code}: ${message.message}`));
    } else worker.drop(new GantryError("E_PROTOCOL", `unexpected ${message.type} after hello`));
  });

  socket.on("close", (code: number, reason: Uint8Array) => {
    clearTimeout(handshake);
    worker?.closed(code, new TextDecoder().decode(reason));
  });

  // ws reports oversized frames (it closes with 1009 itself) and socket faults here.
  socket.on("error", (error: Error & { code?: string }) => {
    const what = error.code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH"
      ? new GantryError("E_FRAME_TOO_LARGE", `frame larger than --max-frame-bytes ${options.maxFrameBytes}`)
      : new GantryError("E_CLOSED", error.message);
    if (worker) worker.drop(what);
    else options.log(`connection error before hello: ${what.message}`);
  });
}
