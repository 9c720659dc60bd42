/**
 * The worker's connection, on a thread of its own: the main thread blocks for a whole phase while tfjs
 * computes, and heartbeats must flow meanwhile, or a busy worker would look like a stalled one. This thread
 * opens the socket, relays frames both ways (moving the bytes, never copying them), sends a heartbeat every
 * interval and drops a connection whose coordinator has gone silent.
 */
/// <reference lib="deno.worker" />
import { encodeMessage } from "../shared/codec.ts";
import { errorMessage } from "../shared/errors.ts";
import { PROTOCOL_VERSION } from "../shared/protocol.ts";
import { connectWithRetry, WebSocket } from "./connection.ts";
import { type FromLink, type LinkOptions, SPARE_MIN_BYTES, type ToLink } from "./link.ts";

/** The close code this side reports when it gives up on a silent coordinator (4000-4999: private use). */
export const SILENT_CLOSE_CODE = 4000;

let options: LinkOptions | null = null;
let socket: WebSocket | null = null;
let lastHeard = 0;
let timer: ReturnType<typeof setInterval> | undefined;
const heartbeat = new Uint8Array(encodeMessage({ type: "heartbeat", version: PROTOCOL_VERSION }));

function post(message: FromLink, transfer: Transferable[] = []): void {
  self.postMessage(message, { transfer });
}

function log(line: string): void {
  post({ kind: "log", line });
}

/** Forgets the socket and tells the main thread, once. */
function lost(s: WebSocket, code: number, reason: string): void {
  if (socket !== s) return;
  socket = null;
  clearInterval(timer);
  s.onmessage = s.onclose = s.onerror = null;
  post({ kind: "closed", code, reason });
}

function attach(s: WebSocket, o: LinkOptions): void {
  socket = s;
  lastHeard = Date.now();
  s.onmessage = (event: { data: unknown }) => {
    lastHeard = Date.now();
    const data = event.data as ArrayBuffer;
    post({ kind: "frame", data }, [data]);
  };
  s.onclose = (event: { code: number; reason: string }) => lost(s, event.code, event.reason);
  beat(s, o);
}

function beat(s: WebSocket, o: LinkOptions): void {
  clearInterval(timer);
  timer = setInterval(() => {
    const silentMs = Date.now() - lastHeard;
    if (silentMs > o.heartbeatTimeoutMs) {
      // A stopped or wedged coordinator may never finish a closing handshake: report the loss now.
      lost(s, SILENT_CLOSE_CODE, `coordinator silent for ${silentMs} ms (--heartbeat-timeout-ms)`);
      try {
        s.close(SILENT_CLOSE_CODE, "silent");
      } catch { /* closing anyway */ }
      return;
    }
    if (s.readyState === WebSocket.OPEN) s.send(heartbeat);
  }, o.heartbeatIntervalMs);
}

async function connect(message: Extract<ToLink, { kind: "connect" }>): Promise<void> {
  const o = options!;
  try {
    const s = await connectWithRetry({
      url: o.url,
      timeoutMs: message.timeoutMs,
      timeoutFlag: message.timeoutFlag,
      retryMs: o.retryMs,
      ...(message.backoff ? { backoffMaxMs: o.backoffMaxMs } : {}),
      log,
    });
    attach(s, o);
    post({ kind: "open" });
  } catch (error) {
    post({ kind: "failed", message: errorMessage(error) });
  }
}

self.onmessage = (event: MessageEvent<ToLink>) => {
  const message = event.data;
  switch (message.kind) {
    case "options":
      options = message.options;
      break;
    case "connect":
      void connect(message);
      break;
    case "heartbeat":
      options = {
        ...options!,
        heartbeatIntervalMs: message.intervalMs,
        heartbeatTimeoutMs: message.timeoutMs,
      };
      if (socket) beat(socket, options);
      break;
    case "send": {
      // The buffer goes back for reuse once ws has written it out.
      const data = message.data;
      const spare = () => {
        if (data.byteLength >= SPARE_MIN_BYTES) post({ kind: "spare", data }, [data]);
      };
      if (socket?.readyState === WebSocket.OPEN) socket.send(new Uint8Array(data, 0, message.length), spare);
      else spare();
      break;
    }
    case "close": {
      const s = socket;
      if (!s) {
        post({ kind: "closed", code: message.code, reason: "closed by this worker" });
        break;
      }
      s.close(message.code, message.reason);
      break;
    }
  }
};
