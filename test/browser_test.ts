/**
 * A checkpoint's generator in a real browser: headless Chromium (driven by playwright-core) loads the saved
 * model.json + weights.bin with `tf.loadLayersModel`, using the TF.js browser bundle from node_modules (no
 * CDN), draws a digit for label 3 on a canvas, and must compute what Deno computes from the same files.
 *
 * Needs a Chromium (see test/chromium.ts); without one the test is skipped, with the reason printed.
 */
import "@tensorflow/tfjs-backend-cpu";
import * as tf from "@tensorflow/tfjs-core";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { loadGeneratorFrom } from "../generate/load_generator.ts";
import { drawNoise, generateGrid } from "../generate/sample.ts";
import { writeTestCheckpoint } from "../generate/test_checkpoint.ts";
import { IMAGE_SIDE } from "../shared/models/specs.ts";
import type { ModelName } from "../shared/models/types.ts";
import { assert, assertClose, assertEquals, within } from "../shared/testing.ts";
import { findChromium, launchChromium, loopbackPage, noChromiumReason } from "./chromium.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const TFJS_BUNDLE = join(ROOT, "node_modules/@tensorflow/tfjs/dist/tf.min.js");
/** Page loads and each evaluation; generous because the CPU may be shared with a training run. */
const PAGE_TIMEOUT_MS = 60_000;
const SCREENSHOT = "/tmp/gantry-browser-test.png";
const LABEL = 3;
const NOISE_SEED = 42;
/** float32 forward passes on two TF.js backends (the page's may be WebGL) agree to this. */
const VALUE_TOLERANCE = 1e-4;
/** The canvas holds 8-bit rounding of (value + 1) / 2 * 255; allow one level for rounding differences. */
const GRAY_TOLERANCE = 1;
const MODELS: readonly ModelName[] = ["cdcgan", "mlp"];
/** The files of a checkpoint's generator folder the server hands out; anything else is a 404. */
const GENERATOR_FILES = new Set(["model.json", "weights.bin"]);
const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".json": "application/json",
  ".bin": "application/octet-stream",
};

/** Each digit's canvas is shown this many CSS pixels wide, so that the screenshot can be read. */
const DISPLAY_PX = IMAGE_SIDE * 8;

/** The page: TF.js from this server, and `drawDigit` for the test, which adds one captioned canvas a call. */
const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>gantry generator</title>
<style>
  body { background: #333; color: #eee; font: 14px sans-serif; }
  figure { display: inline-block; margin: 8px; }
  canvas { width: ${DISPLAY_PX}px; height: ${DISPLAY_PX}px; image-rendering: pixelated; }
</style>
<script src="/tf.min.js"></script>
<div id="digits"></div>
<script>
  // Loads a generator, draws the digit of (z, label) on a new canvas, and reports what it computed.
  async function drawDigit(modelUrl, z, label, caption) {
    const model = await tf.loadLayersModel(modelUrl);
    const image = model.predict([tf.tensor2d(z, [1, z.length]), tf.tensor2d([label], [1, 1], "int32")]);
    const gray = tf.tidy(() => image.squeeze([0]).add(1).div(2)); // [28, 28, 1] in [0, 1]
    const figure = document.createElement("figure");
    const canvas = document.createElement("canvas");
    const text = document.createElement("figcaption");
    text.textContent = caption + " on " + tf.getBackend();
    figure.append(canvas, text);
    document.getElementById("digits").append(figure);
    await tf.browser.toPixels(gray, canvas);
    const rgba = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    const result = {
      backend: tf.getBackend(),
      shape: image.shape,
      values: Array.from(await image.data()),
      canvasSize: [canvas.width, canvas.height],
      canvasGray: Array.from(rgba.filter((_, i) => i % 4 === 0)),
    };
    tf.dispose([image, gray]);
    model.dispose();
    return result;
  }
</script>`;

/** What the page defines for the test to call. */
interface PageGlobals {
  drawDigit(modelUrl: string, z: number[], label: number, caption: string): Promise<PageResult>;
}

interface PageResult {
  backend: string;
  shape: number[];
  values: number[];
  canvasSize: number[];
  canvasGray: number[];
}

function extension(path: string): string {
  return path.slice(path.lastIndexOf("."));
}

/** Serves the page, the TF.js bundle and `/<model>/generator/{model.json,weights.bin}` from `generators`. */
function serve(
  generators: Map<string, string>,
  requested: string[],
  signal: AbortSignal,
): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, signal, onListen: () => {} }, async (request) => {
    const path = new URL(request.url).pathname;
    requested.push(path);
    let file: string | null = null;
    if (path === "/") return new Response(PAGE, { headers: { "content-type": CONTENT_TYPES[".html"] } });
    if (path === "/tf.min.js") file = TFJS_BUNDLE;
    const parts = path.split("/"); // ["", model, "generator", file]
    if (parts.length === 4 && parts[2] === "generator" && GENERATOR_FILES.has(parts[3])) {
      const dir = generators.get(parts[1]);
      if (dir) file = join(dir, "generator", parts[3]);
    }
    if (file === null) return new Response("not found", { status: 404 });
    return new Response(await Deno.readFile(file), {
      headers: { "content-type": CONTENT_TYPES[extension(file)] ?? "application/octet-stream" },
    });
  });
}

const CHROMIUM = findChromium();
if (CHROMIUM === null) console.warn(noChromiumReason("test/browser_test.ts"));

Deno.test({
  name: "a saved generator loads with tf.loadLayersModel in Chromium and draws what Deno draws",
  ignore: CHROMIUM === null,
  async fn() {
    tf.env().set("PROD", true);
    await tf.setBackend("cpu");
    const workDir = await Deno.makeTempDir({ prefix: "gantry-browser-" });
    const stopServer = new AbortController();
    let server: Deno.HttpServer<Deno.NetAddr> | null = null;
    let browser: Browser | null = null;
    try {
      // Real checkpoints of both reference models, and what Deno computes from their files.
      const generators = new Map<string, string>();
      const expected = new Map<string, { z: Float32Array; values: Float32Array }>();
      for (const model of MODELS) {
        const { dir } = await writeTestCheckpoint(join(workDir, model), {
          model,
          latentDim: 100,
          step: 1,
          weightsSeed: 7,
        });
        generators.set(model, dir);
        const loaded = await loadGeneratorFrom(dir);
        const z = drawNoise(NOISE_SEED, 1, loaded.latentDim);
        expected.set(model, { z, values: generateGrid(loaded.model, [LABEL], z, loaded.latentDim) });
        loaded.model.dispose();
      }

      const requested: string[] = [];
      server = serve(generators, requested, stopServer.signal);
      const origin = `http://127.0.0.1:${server.addr.port}`;
      browser = await launchChromium(CHROMIUM!);
      // Nothing may leave this machine: a request anywhere but this server fails the page and the test.
      const { page, foreign, pageErrors } = await loopbackPage(browser, origin);
      page.setDefaultTimeout(PAGE_TIMEOUT_MS);
      await page.goto(`${origin}/`, { waitUntil: "load" });

      for (const model of MODELS) {
        const { z, values } = expected.get(model)!;
        const result = await within(
          PAGE_TIMEOUT_MS,
          `drawing a ${model} digit in the page`,
          page.evaluate(
            ([url, zs, label, caption]) =>
              (globalThis as unknown as PageGlobals).drawDigit(url, zs, label, caption),
            [`/${model}/generator/model.json`, Array.from(z), LABEL, `${model}, label ${LABEL}`] as const,
          ),
        );
        console.log(`${model}: the page ran on TF.js's ${result.backend} backend`);
        assertEquals(result.shape, [1, IMAGE_SIDE, IMAGE_SIDE, 1], `${model} output shape`);
        assert(result.values.every((v) => v >= -1 && v <= 1), `${model} values are in [-1, 1]`);
        assertClose(result.values, values, VALUE_TOLERANCE, `${model} page vs Deno`);
        assertEquals(result.canvasSize, [IMAGE_SIDE, IMAGE_SIDE], `${model} canvas size`);
        assert(new Set(result.canvasGray).size > 1, `${model}: the canvas is not one flat gray`);
        const expectedGray = Array.from(values, (v) => Math.round((v + 1) / 2 * 255));
        assertClose(result.canvasGray, expectedGray, GRAY_TOLERANCE, `${model} canvas vs Deno's values`);
      }
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      console.log(`screenshot: ${SCREENSHOT}`);
      assertEquals(pageErrors, [], "errors in the page");
      assertEquals(foreign, [], "requests that left 127.0.0.1");
      for (const model of MODELS) {
        for (const file of GENERATOR_FILES) {
          assert(requested.includes(`/${model}/generator/${file}`), `the page fetched ${model}'s ${file}`);
        }
      }
    } finally {
      await browser?.close().catch(() => {});
      stopServer.abort();
      await server?.finished;
      await Deno.remove(workDir, { recursive: true });
    }
  },
});
