/**
 * A WebSocket client that speaks the framing by hand (RFC 6455), so tests can send what no well-behaved
 * client would: a header announcing 300 MB, bytes that are no frame at all, a text frame, silence.
 */

export interface ServerFrame {
  opcode: number;
  payload: Uint8Array;
}

export interface Ending {
  frames: ServerFrame[];
  /** The status of the server's close frame, when it sent one. */
  closeCode: number | null;
  /** True when the server closed the TCP connection within the wait. */
  closed: boolean;
}

const OPCODE_BINARY = 2;
const OPCODE_CLOSE = 8;

/** A client frame: FIN set, masked (clients must mask), the length as given unless `declaredLength`. */
export function clientFrame(
  payload: Uint8Array,
  opcode = OPCODE_BINARY,
  declaredLength?: number,
): Uint8Array {
  const length = declaredLength ?? payload.length;
  const header: number[] = [0x80 | opcode];
  if (length < 126) header.push(0x80 | length);
  else if (length < 65536) header.push(0x80 | 126, length >> 8, length & 255);
  else {
    header.push(0x80 | 127);
    const big = BigInt(length);
    for (let i = 7; i >= 0; i--) header.push(Number((big >> BigInt(8 * i)) & 255n));
  }
  const mask = crypto.getRandomValues(new Uint8Array(4));
  const out = new Uint8Array(header.length + 4 + payload.length);
  out.set(header);
  out.set(mask, header.length);
  for (let i = 0; i < payload.length; i++) out[header.length + 4 + i] = payload[i] ^ mask[i & 3];
  return out;
}

/** Splits the server's bytes into frames (unmasked); returns the frames and the bytes left over. */
function parseFrames(bytes: Uint8Array): { frames: ServerFrame[]; rest: Uint8Array } {
  const frames: ServerFrame[] = [];
  let at = 0;
  while (bytes.length - at >= 2) {
    const opcode = bytes[at] & 15;
    let length = bytes[at + 1] & 127;
    let start = at + 2;
    if (length === 126) {
      if (bytes.length - at < 4) break;
      length = (bytes[at + 2] << 8) | bytes[at + 3];
      start = at + 4;
    } else if (length === 127) {
      if (bytes.length - at < 10) break;
      length = Number(new DataView(bytes.buffer, bytes.byteOffset + at + 2, 8).getBigUint64(0));
      start = at + 10;
    }
    if (bytes.length < start + length) break;
    frames.push({ opcode, payload: bytes.slice(start, start + length) });
    at = start + length;
  }
  return { frames, rest: bytes.slice(at) };
}

export class RawClient {
  readonly #conn: Deno.TcpConn;
  #buffered: Uint8Array;

  private constructor(conn: Deno.TcpConn, buffered: Uint8Array) {
    this.#conn = conn;
    this.#buffered = buffered;
  }

  /** Connects and completes the opening handshake (or only the TCP connection, with `upgrade: false`). */
  static async open(port: number, upgrade = true, timeoutMs = 10_000): Promise<RawClient> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    if (!upgrade) return new RawClient(conn, new Uint8Array());
    const timer = setTimeout(() => conn.close(), timeoutMs);
    try {
      return await RawClient.#handshake(conn, port);
    } catch (error) {
      throw new Error(`WebSocket handshake with 127.0.0.1:${port}: ${(error as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }

  static async #handshake(conn: Deno.TcpConn, port: number): Promise<RawClient> {
    const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
    const request =
      `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`;
    await conn.write(new TextEncoder().encode(request));
    let received: Uint8Array = new Uint8Array();
    const buffer = new Uint8Array(4096);
    for (let reads = 0; reads < 100; reads++) {
      const n = await conn.read(buffer);
      if (n === null) throw new Error("connection closed during the WebSocket handshake");
      received = concat(received, buffer.subarray(0, n));
      const text = new TextDecoder().decode(received);
      const end = text.indexOf("\r\n\r\n");
      if (end < 0) continue;
      if (!text.startsWith("HTTP/1.1 101")) throw new Error(`handshake refused: ${text.split("\r\n")[0]}`);
      return new RawClient(conn, received.slice(new TextEncoder().encode(text.slice(0, end + 4)).length));
    }
    throw new Error("no handshake answer");
  }

  async send(bytes: Uint8Array): Promise<void> {
    try {
      await this.#conn.write(bytes);
    } catch {
      // The server may close at once (that is often what is tested): a failed write is not the test's failure.
    }
  }

  /** Reads until the server closes the connection or `timeoutMs` passes. */
  async readUntilClosed(timeoutMs: number): Promise<Ending> {
    let expired = false;
    const timer = setTimeout(() => {
      expired = true;
      this.close();
    }, timeoutMs);
    let closed = false;
    const buffer = new Uint8Array(65536);
    let received = this.#buffered;
    let acknowledged = false;
    try {
      for (;;) {
        const n = await this.#conn.read(buffer);
        if (n === null) {
          closed = true;
          break;
        }
        received = concat(received, buffer.subarray(0, n));
        // Answer the server's close frame, as a real client does, so the server may end the connection now.
        const close = parseFrames(received).frames.find((f) => f.opcode === OPCODE_CLOSE);
        if (close && !acknowledged) {
          acknowledged = true;
          await this.send(clientFrame(close.payload.subarray(0, 2), OPCODE_CLOSE));
        }
      }
    } catch {
      // Reset by the server, or closed by our own timer.
      closed = !expired;
    } finally {
      clearTimeout(timer);
    }
    const { frames } = parseFrames(received);
    const close = frames.find((f) => f.opcode === OPCODE_CLOSE);
    const closeCode = close && close.payload.length >= 2 ? (close.payload[0] << 8) | close.payload[1] : null;
    this.close();
    return { frames, closeCode, closed };
  }

  close(): void {
    try {
      this.#conn.close();
    } catch { /* closed already */ }
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
