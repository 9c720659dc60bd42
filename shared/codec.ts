/**
 * Frames on the wire. A frame is a small msgpack header followed by the raw bytes of the message's
 * top-level typed arrays, each 8-byte aligned:
 *
 *   [u32 LE header length H][msgpack header, H bytes][zero padding to 8][tensor bytes, each at an 8-aligned offset]
 *
 * The header is the message without its typed arrays, plus `$tensors: [[key, dtype, offset, length], ...]`.
 * Encoding is one memcpy per array (msgpack's typed-array extension cost ~10 ms for 4 MB); decoding returns
 * views on the frame's bytes when they are aligned, so a 4 MB gradient costs no copy at all. A Float32Array
 * field may be sent as float16 (`--wire float16`): it is then decoded as a Float16Array view, and the
 * receiver converts it (or reads it directly, as the gradient sum does).
 *
 * Between processes of one machine, a tensor may live in a shared-memory region instead of the frame
 * (shared/shared_memory.ts): its entry then names the region, `[key, dtype, offset, length, region]`, and
 * the receiver decodes it as a view on its own mapping of that region, if it has been given one.
 */
import { Buffer } from "node:buffer";
import { Packr } from "msgpackr";
import { GantryError } from "./errors.ts";
import type { Message } from "./protocol.ts";

// moreTypes: typed arrays nested below the top level still keep their bytes exact (the default writes one
// byte per float).
const packr = new Packr({ moreTypes: true, useRecords: false });

const TENSORS_KEY = "$tensors";
type DType = "f32" | "f16" | "u8";
const ELEMENT_BYTES: Record<DType, number> = { f32: 4, f16: 2, u8: 1 };
type Tensor = Float32Array | Float16Array | Uint8Array;

/** Tensors start at 8-byte aligned offsets, in frames and in shared regions alike. */
export function align8(n: number): number {
  return (n + 7) & ~7;
}

/** Which Float32Array fields travel as float16 (empty: all as float32). */
export interface WireFormat {
  float16: readonly string[];
}

export const FLOAT32_WIRE: WireFormat = { float16: [] };

/** Where some of a message's tensors go instead of the frame: byte offsets in a shared region. */
export interface SharedPlacement {
  /** The region's name in frames, as both sides call it ("grads", "weights"). */
  region: string;
  memory: Uint8Array;
  offsets: Readonly<Record<string, number>>;
}

/**
 * Encodes a message into one frame; `shared` places some of its tensors in shared regions instead (the
 * first placement naming a key takes it). With `into` large enough, the frame is written there (a reused
 * buffer: no page faults on fresh megabytes) and returned as a view of its start; otherwise it gets bytes of
 * its own (small frames may share a pooled ArrayBuffer: check byteOffset/byteLength before transferring).
 */
export function encodeMessage(
  message: Message,
  wire: WireFormat = FLOAT32_WIRE,
  into?: ArrayBuffer,
  shared?: SharedPlacement | readonly SharedPlacement[],
): Uint8Array {
  const placements = shared === undefined ? [] : Array.isArray(shared) ? shared : [shared as SharedPlacement];
  const header: Record<string, unknown> = {};
  const tensors: Array<[string, DType, number, number]> = [];
  const sharedTensors: Array<[string, DType, number, number, string]> = [];
  const sources: Tensor[] = [];
  let dataBytes = 0;
  for (const [key, value] of Object.entries(message)) {
    let tensor: Tensor | null = null;
    let dtype: DType = "u8";
    if (value instanceof Float32Array) {
      tensor = value;
      dtype = wire.float16.includes(key) ? "f16" : "f32";
    } else if (value instanceof Float16Array) [tensor, dtype] = [value, "f16"];
    else if (value instanceof Uint8Array) [tensor, dtype] = [value, "u8"];
    if (tensor === null) {
      header[key] = value;
      continue;
    }
    const place = placements.find((p) => p.offsets[key] !== undefined);
    if (place) {
      const at = place.offsets[key];
      writeTensor(place.memory, at, dtype, tensor);
      sharedTensors.push([key, dtype, at, tensor.length, place.region]);
      continue;
    }
    tensors.push([key, dtype, dataBytes, tensor.length]);
    sources.push(tensor);
    dataBytes = align8(dataBytes + tensor.length * ELEMENT_BYTES[dtype]);
  }
  header[TENSORS_KEY] = [...tensors, ...sharedTensors];
  const head = packr.pack(header);
  const dataStart = align8(4 + head.length);
  const size = dataStart + dataBytes;
  let out: Uint8Array;
  if (into && into.byteLength >= size) out = new Uint8Array(into, 0, size);
  else {
    // allocUnsafe: no zeroing of megabytes that are overwritten at once; large sizes never come from a pool.
    const frame = Buffer.allocUnsafe(size);
    out = new Uint8Array(frame.buffer, frame.byteOffset, frame.length);
  }
  new DataView(out.buffer, out.byteOffset, 4).setUint32(0, head.length, true);
  out.set(head, 4);
  out.fill(0, 4 + head.length, dataStart);
  for (let i = 0; i < tensors.length; i++) {
    writeTensor(out, dataStart + tensors[i][2], tensors[i][1], sources[i]);
  }
  return out;
}

/** Copies a tensor into `target` at byte `offset`, converting float32 to float16 on the way if asked. */
function writeTensor(target: Uint8Array, offset: number, dtype: DType, source: Tensor): void {
  const at = target.byteOffset + offset;
  if (at + source.length * ELEMENT_BYTES[dtype] > target.byteOffset + target.byteLength) {
    throw new RangeError(`encodeMessage: a tensor of ${source.length} values overruns its target`);
  }
  // Computed in place already (a worker's gradient in shared memory): nothing to copy.
  if (
    source.buffer === target.buffer && source.byteOffset === at &&
    ELEMENT_BYTES[dtype] === source.BYTES_PER_ELEMENT
  ) {
    return;
  }
  if (dtype === "f16" && source instanceof Float32Array) {
    // One conversion pass straight into place: rounds to nearest float16, as Math.f16round.
    new Float16Array(target.buffer, at, source.length).set(source);
  } else {
    target.set(new Uint8Array(source.buffer, source.byteOffset, source.byteLength), offset);
  }
}

function bad(bytes: Uint8Array, why: string): GantryError {
  return new GantryError("E_BAD_MESSAGE", `undecodable frame of ${bytes.length} bytes: ${why}`);
}

/** A typed array over frame bytes: a view when aligned, else a copy (the frame's offset is the sender's). */
function tensorAt(bytes: Uint8Array, dtype: DType, start: number, length: number): Tensor {
  const position = bytes.byteOffset + start;
  const size = ELEMENT_BYTES[dtype];
  if (dtype === "u8") return new Uint8Array(bytes.buffer, position, length);
  let buffer = bytes.buffer as ArrayBuffer;
  let offset = position;
  if (position % size !== 0) {
    // Node Buffers' slice() is a view: copy by hand.
    const copy = new Uint8Array(length * size);
    copy.set(bytes.subarray(start, start + length * size));
    [buffer, offset] = [copy.buffer, 0];
  }
  return dtype === "f32"
    ? new Float32Array(buffer, offset, length)
    : new Float16Array(buffer, offset, length);
}

/**
 * Decodes a frame's bytes; what it holds is checked afterwards by the protocol's validators. `regions`: the
 * shared regions this sender may place tensors in, by name.
 */
export function decodeFrame(bytes: Uint8Array, regions: Readonly<Record<string, Uint8Array>> = {}): unknown {
  if (bytes.length < 4) throw bad(bytes, "shorter than its 4-byte header length");
  const headLength = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true);
  if (4 + headLength > bytes.length) throw bad(bytes, `header of ${headLength} bytes overruns the frame`);
  let header: unknown;
  try {
    header = packr.unpack(bytes.subarray(4, 4 + headLength));
  } catch (error) {
    throw bad(bytes, (error as Error).message);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) return header;
  const m = header as Record<string, unknown>;
  const tensors = m[TENSORS_KEY];
  delete m[TENSORS_KEY];
  if (tensors === undefined) return m;
  if (!Array.isArray(tensors)) throw bad(bytes, `"${TENSORS_KEY}" must be a list`);
  const dataStart = align8(4 + headLength);
  for (const entry of tensors) {
    if (!Array.isArray(entry) || (entry.length !== 4 && entry.length !== 5)) {
      throw bad(bytes, "a tensor entry must be a 4- or 5-item list");
    }
    const [key, dtype, offset, length, region] = entry as unknown[];
    if (
      typeof key !== "string" || key === "__proto__" ||
      !(dtype === "f32" || dtype === "f16" || dtype === "u8")
    ) {
      throw bad(bytes, `bad tensor entry ${JSON.stringify(entry)}`);
    }
    if (
      !Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || (offset as number) < 0 ||
      (length as number) < 0 || (offset as number) % 8 !== 0
    ) {
      throw bad(bytes, `tensor "${key}": bad offset ${offset} or length ${length}`);
    }
    if (region !== undefined) {
      const memory = typeof region === "string" && Object.hasOwn(regions, region)
        ? regions[region]
        : undefined;
      if (!memory) {
        throw bad(bytes, `tensor "${key}" is in shared region ${JSON.stringify(region)}, not mapped here`);
      }
      if ((offset as number) + (length as number) * ELEMENT_BYTES[dtype] > memory.length) {
        throw bad(bytes, `tensor "${key}" overruns shared region "${region}"`);
      }
      m[key] = tensorAt(memory, dtype, offset as number, length as number);
      continue;
    }
    const start = dataStart + (offset as number);
    if (start + (length as number) * ELEMENT_BYTES[dtype] > bytes.length) {
      throw bad(bytes, `tensor "${key}" overruns the frame`);
    }
    m[key] = tensorAt(bytes, dtype, start, length as number);
  }
  return m;
}

/** A float array as float32: itself, or converted into `into` (reused across calls by the caller). */
export function asFloat32(values: Float32Array | Float16Array, into?: Float32Array): Float32Array {
  if (values instanceof Float32Array) return values;
  const out = into && into.length === values.length ? into : new Float32Array(values.length);
  out.set(values);
  return out;
}
