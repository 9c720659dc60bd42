import { assertEquals, assertRejects, assertThrows } from "../testing.ts";
import { GantryError } from "../errors.ts";
import { gunzip, isGzip, parseIdx, readIdx, readIdxFile } from "./idx.ts";
import { gzip, idxBytes } from "./fixtures.ts";

const IMAGES = idxBytes(0x0803, [2, 2, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
const LABELS = idxBytes(0x0801, [3], [7, 0, 9]);

function assertDataError(fn: () => unknown, ...fragments: string[]): void {
  const error = assertThrows(fn, GantryError);
  assertEquals(error.code, "E_DATA");
  for (const fragment of fragments) assertIncludes(error.message, fragment);
}

async function assertDataRejects(fn: () => Promise<unknown>, ...fragments: string[]): Promise<void> {
  const error = await assertRejects(fn, GantryError);
  assertEquals(error.code, "E_DATA");
  for (const fragment of fragments) assertIncludes(error.message, fragment);
}

function assertIncludes(message: string, fragment: string): void {
  if (!message.includes(fragment)) throw new Error(`expected "${message}" to include "${fragment}"`);
}

Deno.test("parseIdx() reads the dims and pixels of an images file", () => {
  const idx = parseIdx(IMAGES, "tiny-images");
  assertEquals(idx.dims, [2, 2, 3]);
  assertEquals([...idx.data], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
});

Deno.test("parseIdx() reads a labels file and accepts it when labels are expected", () => {
  const idx = parseIdx(LABELS, "tiny-labels", "labels");
  assertEquals(idx.dims, [3]);
  assertEquals([...idx.data], [7, 0, 9]);
});

Deno.test("parseIdx() returns a view of the payload, not a copy", () => {
  const idx = parseIdx(IMAGES, "tiny-images");
  assertEquals(idx.data.buffer, IMAGES.buffer);
  assertEquals(idx.data.byteOffset, 16);
});

Deno.test("readIdx() reads a gzipped file like the plain one", async () => {
  const zipped = await gzip(IMAGES);
  assertEquals(isGzip(zipped), true);
  assertEquals(isGzip(IMAGES), false);
  const idx = await readIdx(zipped, "tiny-images.gz", "images");
  assertEquals(idx.dims, [2, 2, 3]);
  assertEquals([...idx.data], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
});

Deno.test("readIdx() reads a plain file unchanged", async () => {
  const idx = await readIdx(LABELS, "tiny-labels");
  assertEquals([...idx.data], [7, 0, 9]);
});

Deno.test("parseIdx() rejects a wrong magic number with its value", () => {
  const bytes = IMAGES.slice();
  bytes[2] = 0x0d; // float32 elements
  assertDataError(() => parseIdx(bytes, "odd-file"), "odd-file:", "0x00000d03", "0x00000801", "0x00000803");
  assertDataError(
    () => parseIdx(new TextEncoder().encode("hello, world"), "text.txt"),
    "text.txt:",
    "magic number is 0x68656c6c",
  );
  assertDataError(() => parseIdx(idxBytes(0x0802, [1, 1], [0]), "two-d"), "0x00000802");
});

Deno.test("parseIdx() rejects labels where images are expected", () => {
  assertDataError(
    () => parseIdx(LABELS, "train-images-idx3-ubyte", "images"),
    "train-images-idx3-ubyte: holds labels (magic number 0x00000801), expected images (0x00000803)",
  );
});

Deno.test("parseIdx() rejects a truncated image file with its byte counts", () => {
  const header = idxBytes(0x0803, [60000, 28, 28], []);
  const truncated = new Uint8Array(header.length + 1000);
  truncated.set(header);
  assertDataError(
    () => parseIdx(truncated, "train-images-idx3-ubyte.gz"),
    "train-images-idx3-ubyte.gz: expected 47040000 bytes of pixels after the header (dims 60000x28x28), " +
      "found 1000",
  );
});

Deno.test("parseIdx() rejects a labels file with bytes past its count", () => {
  const long = new Uint8Array([...LABELS, 4]);
  assertDataError(() => parseIdx(long, "labels"), "expected 3 bytes of labels", "found 4");
});

Deno.test("parseIdx() rejects a header cut short", () => {
  assertDataError(
    () => parseIdx(IMAGES.subarray(0, 10), "cut"),
    "cut: truncated header",
    "16 bytes",
    "found 10",
  );
  assertDataError(() => parseIdx(new Uint8Array([0, 0]), "tiny"), "needs 4 bytes, found 2");
  assertDataError(() => parseIdx(new Uint8Array(), "empty"), "empty:", "found 0");
});

Deno.test("parseIdx() rejects gzipped bytes and points to readIdx()", async () => {
  const zipped = await gzip(IMAGES);
  assertDataError(() => parseIdx(zipped, "x.gz"), "x.gz: the bytes are gzipped", "readIdx()");
});

Deno.test("readIdx() rejects a corrupt gzip stream naming the source", async () => {
  const zipped = await gzip(IMAGES);
  const damaged = zipped.slice();
  damaged[12] ^= 0xff;
  await assertDataRejects(() => readIdx(damaged, "damaged.gz"), "damaged.gz: corrupt gzip stream");
  await assertDataRejects(
    () => gunzip(new Uint8Array([0x1f, 0x8b, 8, 0]), "stub.gz"),
    "stub.gz: corrupt gzip",
  );
});

Deno.test("readIdx() rejects a truncated gzip stream", async () => {
  const zipped = await gzip(IMAGES);
  await assertDataRejects(
    () => readIdx(zipped.subarray(0, zipped.length - 5), "cut.gz"),
    "cut.gz: corrupt gzip stream",
    "truncated",
  );
});

Deno.test("readIdxFile() names the path of a file it cannot read", async () => {
  await assertDataRejects(
    () => readIdxFile("/tmp/gantry-no-such-dir/train-images-idx3-ubyte"),
    "/tmp/gantry-no-such-dir/train-images-idx3-ubyte: cannot read",
  );
});
