/**
 * Reader for the IDX files of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/ describes the
 * format), plain or gzipped. Only the uint8 element type is accepted: both datasets use nothing else, and a
 * file claiming another type is far more likely corrupt than a dataset we could train on.
 */
import { errorMessage, GantryError } from "../errors.ts";

/** An IDX array: `dims` from the header (big-endian uint32s), `data` the elements in row-major order. */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/** What an IDX file holds, by its magic number: labels are 1-d (0x00000801), images 3-d (0x00000803). */
export type IdxKind = "labels" | "images";

const UINT8_TYPE = 0x08;
const DIMS_OF_KIND: Record<IdxKind, number> = { labels: 1, images: 3 };
const PAYLOAD_NAME: Record<IdxKind, string> = { labels: "labels", images: "pixels" };

function hex32(value: number): string {
  return `0x${(value >>> 0).toString(16).padStart(8, "0")}`;
}

function magicOf(kind: IdxKind): number {
  return (UINT8_TYPE << 8) | DIMS_OF_KIND[kind];
}

function kindOfDims(dimCount: number): IdxKind | undefined {
  if (dimCount === DIMS_OF_KIND.labels) return "labels";
  if (dimCount === DIMS_OF_KIND.images) return "images";
  return undefined;
}

/** True when `bytes` start with the gzip magic number (1f 8b). */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Parses uncompressed IDX bytes. `source` names the file in error messages. `expected`, when given, also
 * requires that kind of file, so swapped image and label files are caught at the header.
 *
 * The returned `data` is a view into `bytes` (no copy): copy it before keeping a small part of a big file.
 */
export function parseIdx(bytes: Uint8Array, source: string, expected?: IdxKind): IdxArray {
  if (isGzip(bytes)) {
    throw new GantryError("E_DATA", `${source}: the bytes are gzipped; decompress them first (readIdx())`);
  }
  if (bytes.length < 4) {
    throw new GantryError(
      "E_DATA",
      `${source}: too short for an IDX file: the magic number needs 4 bytes, found ${bytes.length}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0);
  const dimCount = bytes[3];
  const kind = kindOfDims(dimCount);
  if (bytes[0] !== 0 || bytes[1] !== 0 || bytes[2] !== UINT8_TYPE || kind === undefined) {
    throw new GantryError(
      "E_DATA",
      `${source}: not an IDX file of uint8 labels or images: magic number is ${hex32(magic)}, expected ` +
        `${hex32(magicOf("labels"))} (labels) or ${hex32(magicOf("images"))} (images)`,
    );
  }
  if (expected !== undefined && kind !== expected) {
    throw new GantryError(
      "E_DATA",
      `${source}: holds ${kind} (magic number ${hex32(magic)}), expected ${expected} ` +
        `(${hex32(magicOf(expected))})`,
    );
  }
  const headerBytes = 4 + 4 * dimCount;
  if (bytes.length < headerBytes) {
    throw new GantryError(
      "E_DATA",
      `${source}: truncated header: ${dimCount} dimensions need ${headerBytes} bytes, found ${bytes.length}`,
    );
  }
  const dims: number[] = [];
  for (let i = 0; i < dimCount; i++) dims.push(view.getUint32(4 + 4 * i));
  // A product of uint32s can pass 2^53, but then it is far above any real length, which is all we test.
  const payloadBytes = dims.reduce((product, dim) => product * dim, 1);
  const found = bytes.length - headerBytes;
  if (found !== payloadBytes) {
    throw new GantryError(
      "E_DATA",
      `${source}: expected ${payloadBytes} bytes of ${PAYLOAD_NAME[kind]} after the header ` +
        `(dims ${dims.join("x")}), found ${found}`,
    );
  }
  return { dims, data: bytes.subarray(headerBytes) };
}

/** Decompresses gzip bytes with the web-standard DecompressionStream; `source` names them in errors. */
export async function gunzip(bytes: Uint8Array, source: string): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new DecompressionStream("gzip"));
  try {
    return new Uint8Array(await new Response(stream).arrayBuffer());
  } catch (error) {
    // Deno reports truncation as a checksum mismatch, so name every likely cause rather than echo it alone.
    throw new GantryError(
      "E_DATA",
      `${source}: corrupt gzip stream (truncated, damaged or with trailing bytes; ${bytes.length} bytes ` +
        `compressed): ${errorMessage(error)}`,
      { cause: error },
    );
  }
}

/** Parses IDX bytes that may be gzipped. */
export async function readIdx(bytes: Uint8Array, source: string, expected?: IdxKind): Promise<IdxArray> {
  return parseIdx(isGzip(bytes) ? await gunzip(bytes, source) : bytes, source, expected);
}

/** Reads and parses an IDX file, plain or gzipped; errors name `path`. */
export async function readIdxFile(path: string, expected?: IdxKind): Promise<IdxArray> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (error) {
    throw new GantryError(
      "E_DATA",
      `${path}: cannot read: ${errorMessage(error)}`,
      { cause: error },
    );
  }
  return await readIdx(bytes, path, expected);
}
