import { join } from "node:path";
import { assert, assertEquals, assertRejects, assertThrows } from "../testing.ts";
import { GantryError } from "../errors.ts";
import { encodeGrayPng, type GrayImage, renderGrid } from "./grid.ts";
import {
  DEFAULT_FINAL_DELAY_MS,
  DEFAULT_FRAME_DELAY_MS,
  encodeProgressGif,
  writeProgressGif,
} from "./gif.ts";

// ---------------------------------------------------------------------------------------------------------
// A small GIF reader, written from the GIF89a specification, so that the tests check the file's structure
// and pixels rather than trusting the encoder.

interface GifFrame {
  width: number;
  height: number;
  /** From the graphic control extension before the image, in 1/100 s. */
  delayCs: number;
  pixels: Uint8Array;
}

interface ParsedGif {
  width: number;
  height: number;
  palette: number[][];
  /** The NETSCAPE2.0 repeat count (0 loops forever), or undefined when the GIF plays once. */
  loops?: number;
  graphicControls: number;
  frames: GifFrame[];
}

/** Concatenates size-prefixed sub-blocks from `pos` up to the zero-length terminator. */
function subBlocks(bytes: Uint8Array, pos: number): { data: Uint8Array; end: number } {
  const parts: number[] = [];
  while (bytes[pos] !== 0) {
    const size = bytes[pos];
    for (let i = 1; i <= size; i++) parts.push(bytes[pos + i]);
    pos += size + 1;
  }
  return { data: Uint8Array.from(parts), end: pos + 1 };
}

/** GIF's variable-width LZW, least significant bit first. */
function lzwDecode(minCodeSize: number, data: Uint8Array, pixelCount: number): Uint8Array {
  const clear = 1 << minCodeSize;
  const end = clear + 1;
  const out = new Uint8Array(pixelCount);
  let written = 0;
  let table: number[][] = [];
  let codeSize = 0;
  const reset = () => {
    table = Array.from({ length: clear + 2 }, (_, i) => [i]);
    codeSize = minCodeSize + 1;
  };
  reset();
  let previous: number[] | undefined;
  let bits = 0;
  let bitCount = 0;
  let pos = 0;
  while (true) {
    while (bitCount < codeSize) {
      assert(pos < data.length, "LZW data ended before the end code");
      bits |= data[pos++] << bitCount;
      bitCount += 8;
    }
    const code = bits & ((1 << codeSize) - 1);
    bits >>>= codeSize;
    bitCount -= codeSize;
    if (code === clear) {
      reset();
      previous = undefined;
      continue;
    }
    if (code === end) break;
    let entry: number[];
    if (code < table.length) entry = table[code];
    else {
      assert(code === table.length && previous, `LZW code ${code} is not in the table`);
      entry = [...previous, previous[0]];
    }
    assert(written + entry.length <= pixelCount, "LZW data has more pixels than the frame");
    out.set(entry, written);
    written += entry.length;
    if (previous && table.length < 4096) table.push([...previous, entry[0]]);
    previous = entry;
    if (table.length === 1 << codeSize && codeSize < 12) codeSize++;
  }
  assertEquals(written, pixelCount, "pixels in the frame");
  return out;
}

function parseGif(bytes: Uint8Array): ParsedGif {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  assertEquals(new TextDecoder().decode(bytes.subarray(0, 6)), "GIF89a");
  const gif: ParsedGif = {
    width: view.getUint16(6, true),
    height: view.getUint16(8, true),
    palette: [],
    graphicControls: 0,
    frames: [],
  };
  const screenFlags = bytes[10];
  let pos = 13;
  if (screenFlags & 0x80) {
    const colors = 2 << (screenFlags & 7);
    for (let i = 0; i < colors; i++, pos += 3) gif.palette.push([bytes[pos], bytes[pos + 1], bytes[pos + 2]]);
  }
  let delayCs = 0;
  while (true) {
    const block = bytes[pos];
    if (block === 0x3b) break; // trailer
    if (block === 0x21) { // extension
      const label = bytes[pos + 1];
      const { data, end } = subBlocks(bytes, pos + 2);
      if (label === 0xf9) {
        gif.graphicControls++;
        delayCs = data[1] | (data[2] << 8);
      } else if (label === 0xff && new TextDecoder().decode(data.subarray(0, 11)) === "NETSCAPE2.0") {
        gif.loops = data[12] | (data[13] << 8);
      }
      pos = end;
    } else if (block === 0x2c) { // image descriptor
      const width = view.getUint16(pos + 5, true);
      const height = view.getUint16(pos + 7, true);
      const flags = bytes[pos + 9];
      pos += 10;
      if (flags & 0x80) pos += 3 * (2 << (flags & 7));
      const minCodeSize = bytes[pos];
      const { data, end } = subBlocks(bytes, pos + 1);
      gif.frames.push({ width, height, delayCs, pixels: lzwDecode(minCodeSize, data, width * height) });
      pos = end;
    } else {
      throw new Error(`unknown GIF block 0x${block.toString(16)} at byte ${pos}`);
    }
    assert(pos < bytes.length, "the GIF ends without a trailer");
  }
  return gif;
}

// ---------------------------------------------------------------------------------------------------------

/** A frame whose pixels are a function of their index, so that frames and positions can be told apart. */
function frame(width: number, height: number, gray: (i: number) => number): GrayImage {
  return { width, height, pixels: Uint8Array.from({ length: width * height }, (_, i) => gray(i)) };
}

Deno.test("encodeProgressGif() writes one frame per epoch at the frames' size, looping forever", () => {
  const frames = [1, 2, 3].map((epoch) => frame(30, 20, () => epoch * 10));
  const gif = parseGif(encodeProgressGif(frames));
  assertEquals([gif.width, gif.height], [30, 20]);
  assertEquals(gif.frames.length, 3, "image descriptors");
  assertEquals(gif.graphicControls, 3, "graphic control extensions");
  assertEquals(gif.frames.map((f) => [f.width, f.height]), [[30, 20], [30, 20], [30, 20]]);
  assertEquals(gif.loops, 0, "NETSCAPE2.0 repeat count 0: loop forever");
  assertEquals(gif.frames.map((f) => f.delayCs), [
    DEFAULT_FRAME_DELAY_MS / 10,
    DEFAULT_FRAME_DELAY_MS / 10,
    DEFAULT_FINAL_DELAY_MS / 10,
  ]);
});

Deno.test("encodeProgressGif() keeps every gray level of every frame exactly", () => {
  // 200x150 pixels of pseudo-random grays fill the 4096-entry LZW table, so the encoder's clear codes and
  // its growing code size are exercised as well.
  let seed = 12345;
  const random = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
  const frames = [frame(200, 150, random), frame(200, 150, (i) => i % 256), frame(200, 150, () => 255)];
  const gif = parseGif(encodeProgressGif(frames));
  assertEquals(gif.palette.length, 256);
  assert(gif.palette.every(([r, g, b], i) => r === i && g === i && b === i), "the palette is the 256 grays");
  for (let k = 0; k < frames.length; k++) {
    assert(gif.frames[k].pixels.every((v, i) => v === frames[k].pixels[i]), `frame ${k} pixels`);
  }
});

Deno.test("encodeProgressGif() shows each frame for delayMs and the last for finalDelayMs", () => {
  const frames = [1, 2].map((epoch) => frame(4, 4, () => epoch));
  const gif = parseGif(encodeProgressGif(frames, { delayMs: 120, finalDelayMs: 3000 }));
  assertEquals(gif.frames.map((f) => f.delayCs), [12, 300]);
  const single = parseGif(encodeProgressGif([frame(4, 4, () => 9)], { delayMs: 100 }));
  assertEquals(single.frames.map((f) => f.delayCs), [DEFAULT_FINAL_DELAY_MS / 10]);
});

Deno.test("encodeProgressGif() rejects mixed sizes, a wrong pixel count, no frames and a bad delay", () => {
  const sizes = assertThrows(
    () => encodeProgressGif([frame(4, 4, () => 0), frame(5, 4, () => 0)]),
    GantryError,
    "frame 1 is 5x4, but frame 0 is 4x4",
  );
  assertEquals(sizes.code, "E_DATA");
  assertThrows(
    () => encodeProgressGif([{ width: 4, height: 4, pixels: new Uint8Array(15) }]),
    GantryError,
    "needs 16 pixels, found 15",
  );
  assertThrows(() => encodeProgressGif([]), GantryError, "found none");
  const delay = assertThrows(
    () => encodeProgressGif([frame(4, 4, () => 0)], { delayMs: 5 }),
    GantryError,
    "current value is 5",
  );
  assertEquals(delay.code, "E_CONFIG");
});

Deno.test("writeProgressGif() turns samples/epoch-*.png into progress.gif in epoch order", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(join(dir, "samples"));
    // Epoch 10 sorts before epoch 2 by name; the grids' grays tell the frames apart.
    for (const epoch of [2, 10, 1]) {
      const image = frame(12, 8, () => epoch * 20);
      await Deno.writeFile(
        join(dir, "samples", `epoch-${String(epoch).padStart(4, "0")}.png`),
        encodeGrayPng(image),
      );
    }
    await Deno.writeTextFile(join(dir, "samples", "notes.txt"), "not a grid");
    await writeProgressGif(dir);
    const gif = parseGif(await Deno.readFile(join(dir, "progress.gif")));
    assertEquals(gif.frames.length, 3);
    assertEquals(gif.frames.map((f) => f.pixels[0]), [20, 40, 200]);
    const names = [];
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
    assertEquals(names.sort(), ["progress.gif", "samples"], "no temporary file is left");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeProgressGif() keeps a real 10x10 sample grid's size and pixels", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(join(dir, "samples"));
    const grids: GrayImage[] = [];
    for (const epoch of [1, 2]) {
      const images = Float32Array.from({ length: 100 * 784 }, (_, i) => Math.sin(i / (50 * epoch)));
      const grid = renderGrid(images, { rows: 10, cols: 10 });
      grids.push(grid);
      await Deno.writeFile(join(dir, "samples", `epoch-000${epoch}.png`), encodeGrayPng(grid));
    }
    await writeProgressGif(dir);
    const gif = parseGif(await Deno.readFile(join(dir, "progress.gif")));
    assertEquals([gif.width, gif.height], [grids[0].width, grids[0].height]);
    assertEquals(gif.frames.length, 2);
    for (let k = 0; k < 2; k++) {
      assert(gif.frames[k].pixels.every((v, i) => v === grids[k].pixels[i]), `frame ${k} equals its grid`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeProgressGif() writes nothing before the first grid and names an unreadable one", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeProgressGif(dir);
    await Deno.mkdir(join(dir, "samples"));
    await writeProgressGif(dir);
    const names = [];
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
    assertEquals(names, ["samples"]);

    await Deno.writeTextFile(join(dir, "samples", "epoch-0001.png"), "not a png");
    const error = await assertRejects(() => writeProgressGif(dir), GantryError, "epoch-0001.png");
    assertEquals(error.code, "E_DATA");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
