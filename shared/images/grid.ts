/**
 * Sample grids: generator outputs in [-1, 1] drawn as white-on-black digits like MNIST itself, one cell per
 * image, upscaled so that a 10x10 grid is comfortable to look at.
 */
import { Buffer } from "node:buffer";
import { PNG } from "pngjs";
import { GantryError } from "../errors.ts";

const CELL = 28;
const CELL_PIXELS = CELL * CELL;
const MIN_GRID_PIXELS = 280;
const PNG_GRAYSCALE = 0;

// pngjs ships no types; this is the part of its sync API used here, typed so misuse fails `deno check`.
interface PngWriteOptions {
  colorType: number;
  inputColorType: number;
  inputHasAlpha: boolean;
}
interface PngSync {
  write(png: { width: number; height: number; data: Uint8Array }, options: PngWriteOptions): Uint8Array;
}
const pngSync: PngSync = PNG.sync;

export interface GridOptions {
  rows: number;
  cols: number;
  /** Output pixels per image pixel; default 2, more for small grids so that the grid is >= 280x280. */
  scale?: number;
  /** Output pixels between cells and around the edge; default 2. */
  padding?: number;
  /** Gray level (0..255) of the padding; default 96, so cells stand apart even on black backgrounds. */
  paddingGray?: number;
}

/** A grayscale raster, one byte per pixel, row-major. */
export interface GrayImage {
  width: number;
  height: number;
  pixels: Uint8Array;
}

function checkInteger(name: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new GantryError(
      "E_CONFIG",
      `grid ${name} must be an integer from ${min} to ${max}: current value is ${value}`,
    );
  }
}

/** [-1, 1] to 0..255; out-of-range values are clamped and NaN draws as background. */
function toGray(value: number): number {
  if (!(value > -1)) return 0;
  if (value >= 1) return 255;
  return Math.round((value + 1) * 127.5);
}

/**
 * Lays out rows*cols images (row-major: image r*cols + c goes to row r, column c) as one grayscale raster.
 * Kept apart from PNG encoding so that other writers (an animated GIF of all epochs) can reuse the pixels.
 */
export function renderGrid(images: Float32Array, opts: GridOptions): GrayImage {
  const { rows, cols } = opts;
  checkInteger("rows", rows, 1);
  checkInteger("cols", cols, 1);
  const scale = opts.scale ?? Math.max(2, Math.ceil(MIN_GRID_PIXELS / (CELL * Math.min(rows, cols))));
  const padding = opts.padding ?? 2;
  const paddingGray = opts.paddingGray ?? 96;
  checkInteger("scale", scale, 1, 64);
  checkInteger("padding", padding, 0, 64);
  checkInteger("paddingGray", paddingGray, 0, 255);
  if (images.length !== rows * cols * CELL_PIXELS) {
    throw new GantryError(
      "E_CONFIG",
      `grid of ${rows}x${cols} needs ${rows * cols * CELL_PIXELS} values (${rows * cols} images of ` +
        `${CELL}x${CELL}), found ${images.length}`,
    );
  }
  const cellSize = CELL * scale;
  const width = cols * cellSize + (cols + 1) * padding;
  const height = rows * cellSize + (rows + 1) * padding;
  const pixels = new Uint8Array(width * height).fill(paddingGray);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const src = (r * cols + c) * CELL_PIXELS;
      const left = padding + c * (cellSize + padding);
      const top = padding + r * (cellSize + padding);
      for (let y = 0; y < CELL; y++) {
        for (let x = 0; x < CELL; x++) {
          const gray = toGray(images[src + y * CELL + x]);
          for (let dy = 0; dy < scale; dy++) {
            const start = (top + y * scale + dy) * width + left + x * scale;
            pixels.fill(gray, start, start + scale);
          }
        }
      }
    }
  }
  return { width, height, pixels };
}

/** Encodes a grayscale raster as an 8-bit grayscale PNG. */
export function encodeGrayPng(image: GrayImage): Uint8Array {
  const data = Buffer.from(image.pixels.buffer, image.pixels.byteOffset, image.pixels.byteLength);
  const bytes = pngSync.write(
    { width: image.width, height: image.height, data },
    { colorType: PNG_GRAYSCALE, inputColorType: PNG_GRAYSCALE, inputHasAlpha: false },
  );
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Draws `images` (rows*cols of 28x28 values in [-1, 1]) as a grid and encodes it as PNG bytes. */
export function encodeGridPng(images: Float32Array, opts: GridOptions): Uint8Array {
  return encodeGrayPng(renderGrid(images, opts));
}
