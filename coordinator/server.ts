/**
 * The coordinator's WebSocket endpoint (npm:ws): handshake with timeout, frame size limit, validation of
 * every frame, and routing of results to the worker that owes them.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { type WebSocket, WebSocketServer } from "ws";
// ws unmasks every client frame; with bufferutil (native, prebuilt in its npm package; pure-JS fallback
// otherwise) that costs ~8 ms less per 4.9 MB frame than ws's own JS loop. ws finds it by itself once it
// is installed: this import only keeps it in the module graph.
import "bufferutil";
import { decodeFrame, encodeMessage } from "../shared/codec.ts";
import type { SharedTransport } from "./shared_transport.ts";
import { errorMessage, GantryError } from "../shared/errors.ts";
import {
  type ExpectedSizes,
  type HelloMessage,
  PROTOCOL_VERSION,
  validateFromWorker,
  type WelcomeMessage,
} from "../shared/protocol.ts";
import { closeFirmly, type WorkerHandle, type WorkerRegistry } from "./registry.ts";

export interface ServerOptions {
  host: string;
  port: number;
  maxFrameBytes: number;
  handshakeTimeoutMs: number;
  /** Connections that have not said hello yet, at most; more are refused at once. */
  maxPendingConnections: number;
  /** The shared secret a hello must carry (none: any hello is welcome). */
  token?: string;
  sizes: ExpectedSizes;
  welcome: Omit<WelcomeMessage, "workerId" | "type" | "version">;
  /** The step a joining worker will first take part in (for the registry's record). */
  currentStep: () => number;
  onJoin: (worker: WorkerHandle) => void;
  log: (line: string) => void;
  /** Float32 gradients are checked for NaN and infinity when summed (the trainer's SIMD sum), not here. */
  float32CheckedLater?: boolean;
  /** Shared memory for workers on this machine (--shared-memory auto); without it, sockets only. */
  sharedTransport?: SharedTransport;
  /** Plain HTTP requests on the same port (the dashboard); without it they get 404. */
  http?: (req: IncomingMessage, res: ServerResponse) => void;
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

function notFound(_req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
  res.end("not found\n");
}

export class CoordinatorServer {
  readonly #http: Server;
  readonly #wss: WebSocketServer;
  readonly port: number;

  private constructor(http: Server, wss: WebSocketServer, port: number) {
    this.#http = http;
    this.#wss = wss;
    this.port = port;
  }

  static start(options: ServerOptions, registry: WorkerRegistry): Promise<CoordinatorServer> {
    return new Promise((resolve, reject) => {
      // One port for both: WebSocket upgrades go to the workers' endpoint, other requests to options.http.
      const http = createServer(options.http ?? notFound);
      const wss = new WebSocketServer({ server: http, maxPayload: options.maxFrameBytes });
      // A connection that never sends a request would stay open for good: give it the handshake's time.
      // A request (a page, its event stream) or a WebSocket upgrade (ws clears it) lifts the limit.
      http.on("connection", (socket: Socket) => {
        socket.setTimeout(options.handshakeTimeoutMs, () => socket.destroy());
      });
      http.on("request", (request: IncomingMessage) => request.socket.setTimeout(0));
      let listening = false;
      // ws re-emits the HTTP server's errors here.
      wss.on("error", (error: Error) => {
        if (listening) options.log(`server error: ${error.message}`);
        else {
          reject(
            new GantryError("E_CONFIG", `cannot listen on ${options.host}:${options.port}: ${error.message}`),
          );
        }
      });
      http.listen(options.port, options.host, () => {
        listening = true;
        const address = http.address();
        const port = typeof address === "object" && address ? address.port : options.port;
        const handshakes = { pending: 0 };
        wss.on("connection", (socket: WebSocket) => acceptConnection(socket, options, registry, handshakes));
        resolve(new CoordinatorServer(http, wss, port));
      });
    });
  }

  close(): Promise<void> {
    for (const client of this.#wss.clients) client.terminate();
    return new Promise((resolve) => {
      this.#wss.close(() => {
        this.#http.close(() => resolve());
        // Idle keep-alive connections of dashboard pages would hold close() open.
        this.#http.closeAllConnections();
      });
    });
  }
}

/** Refuses a connection that is not a worker yet: error frame with the reason, then close. */
function refuse(socket: WebSocket, error: GantryError, log: (line: string) => void, graceMs: number): void {
  log(`refused a connection: ${error.code}: ${error.message}`);
  try {
    socket.send(
      encodeMessage({ type: "error", version: PROTOCOL_VERSION, code: error.code, message: error.message }),
    );
  } finally {
    closeFirmly(socket, error.closeCode, error.code, graceMs);
  }
}

/** Equal strings, compared in time that does not depend on where they differ (digests have equal length). */
export function sameSecret(given: string, expected: string): boolean {
  const digest = (text: string) => createHash("sha256").update(text).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

/** Why a hello may not join, or null when it may. */
function helloRefusal(hello: HelloMessage, token: string | undefined): GantryError | null {
  if (token === undefined) return null;
  if (hello.token === undefined) {
    return new GantryError("E_AUTH", "this coordinator requires a token: set --token or GANTRY_TOKEN");
  }
  return sameSecret(hello.token, token) ? null : new GantryError("E_AUTH", "wrong token");
}

function acceptConnection(
  socket: WebSocket,
  options: ServerOptions,
  registry: WorkerRegistry,
  handshakes: { pending: number },
): void {
  if (handshakes.pending >= options.maxPendingConnections) {
    refuse(
      socket,
      new GantryError(
        "E_OVERLOADED",
        `${handshakes.pending} connections are already waiting to say hello (--max-pending-connections)`,
      ),
      options.log,
      options.handshakeTimeoutMs,
    );
    return;
  }
  handshakes.pending++;
  let pending = true;
  const settle = () => {
    if (pending) handshakes.pending--;
    pending = false;
    clearTimeout(handshake);
  };
  let worker: WorkerHandle | null = null;
  const handshake = setTimeout(() => {
    settle();
    refuse(
      socket,
      new GantryError("E_TIMEOUT", `no hello within ${options.handshakeTimeoutMs} ms`),
      options.log,
      options.handshakeTimeoutMs,
    );
  }, options.handshakeTimeoutMs);

  socket.on("message", (data: unknown, isBinary: boolean) => {
    let message;
    const decodeStarted = performance.now();
    try {
      if (!isBinary) throw new GantryError("E_BAD_MESSAGE", "a text frame: the protocol is binary msgpack");
      message = validateFromWorker(
        decodeFrame(toBytes(data), worker?.sharedRegions),
        options.sizes,
        options.float32CheckedLater,
      );
    } catch (error) {
      const e = error instanceof GantryError ? error : new GantryError("E_BAD_MESSAGE", errorMessage(error));
      if (worker) worker.drop(e);
      else if (pending) {
        settle();
        refuse(socket, e, options.log, options.handshakeTimeoutMs);
      }
      return;
    }
    if (worker) worker.lastSeen = Date.now();
    if (!worker) {
      if (!pending) return; // refused already; the socket is closing
      settle();
      if (message.type !== "hello") {
        refuse(
          socket,
          new GantryError("E_PROTOCOL", `first frame must be hello, got ${message.type}`),
          options.log,
          options.handshakeTimeoutMs,
        );
        return;
      }
      const refusal = helloRefusal(message, options.token);
      if (refusal) {
        refuse(socket, refusal, options.log, options.handshakeTimeoutMs);
        return;
      }
      worker = registry.add(message, socket, options.currentStep());
      const sharedMemory = options.sharedTransport?.attach(worker, message);
      worker.send({
        type: "welcome",
        version: PROTOCOL_VERSION,
        workerId: worker.id,
        ...options.welcome,
        ...(sharedMemory ? { sharedMemory } : {}),
      });
      options.onJoin(worker);
      return;
    }
    if (message.type === "heartbeat") return;
    if (message.type === "result") worker.receiveResult(message, performance.now() - decodeStarted);
    else if (message.type === "error") {
      worker.drop(new GantryError("E_CLOSED", `worker reported ${message.code}: ${message.message}`));
    } else worker.drop(new GantryError("E_PROTOCOL", `unexpected ${message.type} after hello`));
  });

  socket.on("close", (code: number, reason: Uint8Array) => {
    settle();
    worker?.closed(code, new TextDecoder().decode(reason));
  });

  // ws reports oversized frames (it closes with 1009 itself) and socket faults here.
  socket.on("error", (error: Error & { code?: string }) => {
    const what = error.code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH"
      ? new GantryError("E_FRAME_TOO_LARGE", `frame larger than --max-frame-bytes ${options.maxFrameBytes}`)
      : new GantryError("E_CLOSED", error.message);
    if (worker) worker.drop(what);
    else options.log(`connection error before hello: ${what.code}: ${what.message}`);
  });
}
