/**
 * progress.gif: the per-epoch sample grids as one looping animation. The grids are 8-bit gray, and a GIF
 * holds a palette of up to 256 colors, so a palette of the 256 grays makes each gray level its own palette
 * index: the frames are exact copies of the grids, with no quantization.
 */
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { writeFileAtomic } from "../files.ts";
import gifenc from "gifenc";
import { PNG } from "pngjs";
import { errorMessage, GantryError } from "../errors.ts";
import type { GrayImage } from "./grid.ts";

export interface ProgressGifOptions {
  /** How long each frame shows, in ms; default 500. GIF counts in 1/100 s, so it is rounded to 10 ms. */
  delayMs?: number;
  /** How long the last frame shows before the loop starts over, in ms; default 2000, so it can be studied. */
  finalDelayMs?: number;
}

export const DEFAULT_FRAME_DELAY_MS = 500;
export const DEFAULT_FINAL_DELAY_MS = 2000;
/** Browsers show frames shorter than 20 ms for 100 ms, so shorter delays would slow the animation down. */
const MIN_DELAY_MS = 20;
/** The delay field is 16 bits of 1/100 s. */
const MAX_DELAY_MS = 655_350;
/** GIF's logical screen size is 16 bits. */
const MAX_SIDE = 65_535;
/** The NETSCAPE2.0 extension's repeat count: 0 loops forever. */
const LOOP_FOREVER = 0;
const GRAY_PALETTE: number[][] = Array.from({ length: 256 }, (_, v) => [v, v, v]);
const SAMPLE_FILE = /^epoch-(\d+)\.png$/;

// gifenc and pngjs ship no types; these are the parts of their APIs used here, typed so that misuse fails
// `deno check`.
interface GifFrameOptions {
  palette?: number[][];
  /** In ms; gifenc writes it as round(delay / 10) hundredths of a second. */
  delay?: number;
  repeat?: number;
}
interface GifEncoder {
  writeFrame(index: Uint8Array, width: number, height: number, opts?: GifFrameOptions): void;
  finish(): void;
  bytes(): Uint8Array;
}
// gifenc's CommonJS build defines its exports with getters that Deno's CJS analysis cannot see, so they are
// read from the module object rather than imported by name.
const createGifEncoder: (opts?: { initialCapacity?: number }) => GifEncoder = gifenc.GIFEncoder;

interface DecodedPng {
  width: number;
  height: number;
  /** RGBA, as pngjs always decodes. */
  data: Uint8Array;
}
const pngSync: { read(bytes: Buffer): DecodedPng } = PNG.sync;

function checkDelay(name: string, value: number): void {
  if (!(Number.isFinite(value) && value >= MIN_DELAY_MS && value <= MAX_DELAY_MS)) {
    throw new GantryError(
      "E_CONFIG",
      `gif ${name} must be from ${MIN_DELAY_MS} to ${MAX_DELAY_MS} ms: current value is ${value}`,
    );
  }
}

function checkFrame(frame: GrayImage, index: number, first: GrayImage): void {
  const { width, height, pixels } = frame;
  for (const [name, side] of [["width", width], ["height", height]] as const) {
    if (!Number.isInteger(side) || side < 1 || side > MAX_SIDE) {
      throw new GantryError(
        "E_DATA",
        `gif frame ${index} ${name} must be 1 to ${MAX_SIDE}: current value is ${side}`,
      );
    }
  }
  if (pixels.length !== width * height) {
    throw new GantryError(
      "E_DATA",
      `gif frame ${index} of ${width}x${height} needs ${width * height} pixels, found ${pixels.length}`,
    );
  }
  // A GIF has one screen size; a grid of another size (the grid options changed on resume) cannot join it.
  if (width !== first.width || height !== first.height) {
    throw new GantryError(
      "E_DATA",
      `gif frame ${index} is ${width}x${height}, but frame 0 is ${first.width}x${first.height}`,
    );
  }
}

/**
 * Encodes `count` frames, read one at a time from `frames`, so that a long run's grids need not all be
 * decoded at once.
 */
function encodeFrames(frames: Iterable<GrayImage>, count: number, opts: ProgressGifOptions): Uint8Array {
  const delayMs = opts.delayMs ?? DEFAULT_FRAME_DELAY_MS;
  const finalDelayMs = opts.finalDelayMs ?? DEFAULT_FINAL_DELAY_MS;
  checkDelay("delayMs", delayMs);
  checkDelay("finalDelayMs", finalDelayMs);
  if (count < 1) throw new GantryError("E_DATA", "a gif needs at least one frame: found none");
  let encoder: GifEncoder | undefined;
  let first: GrayImage | undefined;
  let index = 0;
  for (const frame of frames) {
    first ??= frame;
    checkFrame(frame, index, first);
    encoder ??= createGifEncoder({ initialCapacity: frame.width * frame.height });
    // The palette and the loop go with the first frame (the global color table and NETSCAPE2.0 block).
    const head = index === 0 ? { palette: GRAY_PALETTE, repeat: LOOP_FOREVER } : {};
    encoder.writeFrame(frame.pixels, frame.width, frame.height, {
      ...head,
      delay: index === count - 1 ? finalDelayMs : delayMs,
    });
    index++;
  }
  if (encoder === undefined || index !== count) {
    throw new GantryError("E_DATA", `gif expected ${count} frames, found ${index}`);
  }
  encoder.finish();
  return encoder.bytes();
}

/**
 * Encodes 8-bit gray frames (all of one size) as a looping GIF, one frame each, with a global palette of the
 * 256 grays, so that the pixels come out exactly as given.
 */
export function encodeProgressGif(frames: GrayImage[], opts: ProgressGifOptions = {}): Uint8Array {
  return encodeFrames(frames, frames.length, opts);
}

/** Decodes a PNG to 8-bit gray: luma of its RGB, composited on black (the grids' background) by alpha. */
export function decodeGrayPng(bytes: Uint8Array): GrayImage {
  const png = pngSync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  const pixels = new Uint8Array(png.width * png.height);
  const rgba = png.data;
  for (let i = 0, j = 0; i < pixels.length; i++, j += 4) {
    const luma = 0.299 * rgba[j] + 0.587 * rgba[j + 1] + 0.114 * rgba[j + 2];
    pixels[i] = Math.round((luma * rgba[j + 3]) / 255);
  }
  return { width: png.width, height: png.height, pixels };
}

/** The sample grids of a run, `samples/epoch-NNNN.png`, in epoch order (by number, not by name). */
export async function listSampleGrids(runDir: string): Promise<string[]> {
  const dir = join(runDir, "samples");
  const found: { epoch: number; path: string }[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      const match = entry.isFile ? SAMPLE_FILE.exec(entry.name) : null;
      if (match) found.push({ epoch: Number(match[1]), path: join(dir, entry.name) });
    }
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
  return found.sort((a, b) => a.epoch - b.epoch).map((f) => f.path);
}

/**
 * Reads `runDir`/samples/epoch-*.png in epoch order and writes `runDir`/progress.gif, one frame per epoch,
 * through a temporary file and a rename so that a viewer never shows half a GIF. Does nothing while there
 * is no grid yet.
 */
export async function writeProgressGif(runDir: string, opts: ProgressGifOptions = {}): Promise<void> {
  const paths = await listSampleGrids(runDir);
  if (paths.length === 0) return;
  function* frames(): Generator<GrayImage> {
    for (const path of paths) {
      let frame: GrayImage;
      try {
        frame = decodeGrayPng(Deno.readFileSync(path));
      } catch (error) {
        throw new GantryError("E_DATA", `cannot read sample grid ${path}: ${errorMessage(error)}`, {
          cause: error,
        });
      }
      yield frame;
    }
  }
  const gif = encodeFrames(frames(), paths.length, opts);
  await writeFileAtomic(join(runDir, "progress.gif"), gif);
}
