/**
 * Frames on the wire: msgpack with typed arrays as msgpackr's typed-array extension. The default `pack()`
 * writes a Float32Array as one byte per float; `moreTypes` keeps the bytes exact.
 */
import { Packr } from "msgpackr";
import { GantryError } from "./errors.ts";
import type { Message } from "./protocol.ts";

const packr = new Packr({ moreTypes: true, useRecords: false });

export function encodeMessage(message: Message): Uint8Array {
  return packr.pack(message);
}

/** Decodes a frame's bytes; what it holds is checked afterwards by the protocol's validators. */
export function decodeFrame(bytes: Uint8Array): unknown {
  try {
    return packr.unpack(bytes);
  } catch (error) {
    throw new GantryError(
      "E_BAD_MESSAGE",
      `undecodable frame of ${bytes.length} bytes: ${(error as Error).message}`,
    );
  }
}
