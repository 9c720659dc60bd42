/**
 * The worker's side of the socket, opened with retries so that workers may be started before the
 * coordinator, and reopened with backoff when it goes.
 *
 * npm:ws, not Deno's built-in WebSocket: Deno's client leaves Nagle's algorithm on, so a frame of tens of
 * kilobytes (a result with its BatchNorm sums) waits for the coordinator's delayed ACK: 43 ms against
 * 0.3 ms with ws, measured here; for 5 MB frames the two are alike (8.6 and 7.6 ms).
 */
import { WebSocket } from "ws";
import { GantryError } from "../shared/errors.ts";

export { WebSocket };

export interface ConnectOptions {
  url: string;
  /** How long to keep trying, and the flag that sets it (named in the error). */
  timeoutMs: number;
  timeoutFlag: string;
  retryMs: number;
  /** When set, the pause doubles after each failure up to this; otherwise it stays `retryMs`. */
  backoffMaxMs?: number;
  log: (line: string) => void;
}

function openOnce(url: string, timeoutMs: number): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { perMessageDeflate: false });
    socket.binaryType = "arraybuffer";
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error(`no answer in ${timeoutMs} ms`));
    }, timeoutMs);
    socket.onopen = () => {
      clearTimeout(timer);
      socket.onopen = socket.onerror = null;
      resolve(socket);
    };
    socket.onerror = (event: { message?: string }) => {
      clearTimeout(timer);
      reject(new Error(event.message || "connection failed"));
    };
  });
}

/** Opens a connection, retrying (with backoff, when asked) until `timeoutMs` has passed. */
export async function connectWithRetry(options: ConnectOptions): Promise<WebSocket> {
  const deadline = Date.now() + options.timeoutMs;
  let attempts = 0;
  let last = "";
  let pauseMs = options.retryMs;
  while (Date.now() < deadline) {
    attempts++;
    try {
      return await openOnce(options.url, Math.max(1, deadline - Date.now()));
    } catch (error) {
      last = (error as Error).message;
      if (attempts === 1) options.log(`coordinator ${options.url} not reachable (${last}); retrying`);
    }
    await new Promise((r) => setTimeout(r, Math.min(pauseMs, Math.max(0, deadline - Date.now()))));
    if (options.backoffMaxMs) pauseMs = Math.min(2 * pauseMs, options.backoffMaxMs);
  }
  throw new GantryError(
    "E_TIMEOUT",
    `could not reach the coordinator at ${options.url} in ${options.timeoutMs} ms ` +
      `(${attempts} attempts; last: ${last}); is it running? see --coordinator and --${options.timeoutFlag}`,
  );
}
