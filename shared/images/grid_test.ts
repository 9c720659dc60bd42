import { PNG } from "pngjs";
import { Buffer } from "node:buffer";
import { assert, assertEquals, assertThrows } from "../testing.ts";
import { GantryError } from "../errors.ts";
import { encodeGridPng, renderGrid } from "./grid.ts";

interface DecodedPng {
  width: number;
  height: number;
  /** RGBA, as pngjs always decodes. */
  data: Uint8Array;
}
const decode = (bytes: Uint8Array): DecodedPng => PNG.sync.read(Buffer.from(bytes));

/** Image k has every pixel at value k / (n - 1) * 2 - 1, so cells can be told apart by their gray. */
function rampImages(n: number): Float32Array {
  const images = new Float32Array(n * 784);
  for (let k = 0; k < n; k++) images.fill((k / (n - 1)) * 2 - 1, k * 784, (k + 1) * 784);
  return images;
}

function grayAt(png: DecodedPng, x: number, y: number): number {
  const i = (y * png.width + x) * 4;
  const [r, g, b, a] = png.data.subarray(i, i + 4);
  assertEquals([g, b, a], [r, r, 255], `pixel (${x}, ${y}) is not opaque gray`);
  return r;
}

Deno.test("encodeGridPng() writes a 10x10 grid as an 8-bit grayscale PNG of 582x582 pixels", () => {
  const bytes = encodeGridPng(rampImages(100), { rows: 10, cols: 10 });
  assertEquals([...bytes.subarray(1, 4)], [...new TextEncoder().encode("PNG")]);
  const ihdr = new DataView(bytes.buffer, bytes.byteOffset + 16, 10);
  // 10 cells of 28 * 2 pixels and 11 borders of 2 pixels.
  assertEquals([ihdr.getUint32(0), ihdr.getUint32(4)], [582, 582]);
  assertEquals([ihdr.getUint8(8), ihdr.getUint8(9)], [8, 0], "bit depth 8, color type 0 (grayscale)");
  const png = decode(bytes);
  assertEquals([png.width, png.height], [582, 582]);
});

Deno.test("encodeGridPng() puts image r*cols+c in row r, column c, with padding between cells", () => {
  const rows = 3, cols = 4, n = rows * cols;
  const png = decode(encodeGridPng(rampImages(n), { rows, cols, scale: 3, padding: 1, paddingGray: 50 }));
  const cell = 28 * 3;
  assertEquals([png.width, png.height], [cols * cell + cols + 1, rows * cell + rows + 1]);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const k = r * cols + c;
      const expected = Math.round((k / (n - 1)) * 255);
      const left = 1 + c * (cell + 1), top = 1 + r * (cell + 1);
      assertEquals(grayAt(png, left, top), expected, `cell (${r}, ${c}) top left`);
      assertEquals(grayAt(png, left + cell - 1, top + cell - 1), expected, `cell (${r}, ${c}) bottom right`);
      assertEquals(grayAt(png, left - 1, top), 50, `padding left of cell (${r}, ${c})`);
    }
  }
  assertEquals(grayAt(png, png.width - 1, png.height - 1), 50);
});

Deno.test("encodeGridPng() maps -1 to black and 1 to white, clamping the rest and drawing NaN black", () => {
  const values = [-1, 1, 0, 5, -3, Number.NaN, Infinity, 0.5];
  const images = new Float32Array(784);
  values.forEach((v, i) => images[i] = v);
  const png = decode(encodeGridPng(images, { rows: 1, cols: 1, scale: 1, padding: 0 }));
  assertEquals([png.width, png.height], [28, 28]);
  assertEquals(values.map((_, x) => grayAt(png, x, 0)), [0, 255, 128, 255, 0, 0, 255, 191]);
});

Deno.test("encodeGridPng() keeps digits upright: pixel (x, y) of an image lands at column x, row y", () => {
  const images = new Float32Array(784).fill(-1);
  images[3 * 28 + 20] = 1; // row 3, column 20
  const png = decode(encodeGridPng(images, { rows: 1, cols: 1, scale: 2, padding: 0 }));
  assertEquals(grayAt(png, 40, 6), 255);
  assertEquals(grayAt(png, 41, 7), 255);
  assertEquals(grayAt(png, 6, 40), 0);
});

Deno.test("renderGrid() scales small grids up to at least 280x280 by default", () => {
  const one = renderGrid(new Float32Array(784), { rows: 1, cols: 1 });
  assert(one.width >= 280 && one.height >= 280, `${one.width}x${one.height}`);
  const hundred = renderGrid(new Float32Array(100 * 784), { rows: 10, cols: 10 });
  assertEquals([hundred.width, hundred.height], [582, 582]);
  assertEquals(hundred.pixels.length, 582 * 582);
});

Deno.test("encodeGridPng() rejects a value count that does not fill the grid, with the counts", () => {
  assertThrows(
    () => encodeGridPng(new Float32Array(99 * 784), { rows: 10, cols: 10 }),
    GantryError,
    "grid of 10x10 needs 78400 values (100 images of 28x28), found 77616",
  );
  assertThrows(
    () => encodeGridPng(new Float32Array(784), { rows: 1, cols: 1, scale: 0 }),
    GantryError,
    "grid scale must be an integer from 1 to 64: current value is 0",
  );
  assertThrows(
    () => encodeGridPng(new Float32Array(784), { rows: 0.5, cols: 1 }),
    GantryError,
    "grid rows must be an integer",
  );
});
