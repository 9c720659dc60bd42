/**
 * scaling.svg / scaling.png: left, images/s against workers with the ideal line; right, where each step's
 * time goes (stacked breakdown) per worker count. vega-lite → SVG headless → PNG with resvg's WebAssembly
 * build, as coordinator/plots.ts draws the loss curves (whose loaders are private to it).
 */
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import { initWasm, Resvg } from "@resvg/resvg-wasm";
import { writeFileAtomic } from "../shared/files.ts";
import { BREAKDOWN, type ReportRow } from "./report.ts";

const FONT_FAMILY = "DejaVu Sans";
const FONT_FILES = ["DejaVuSans.ttf", "DejaVuSans-Bold.ttf"];
const SYSTEM_FONT_DIR = "/usr/share/fonts/truetype/dejavu";
const PANEL_WIDTH = 380;
const PANEL_HEIGHT = 260;

const LABELS: Record<typeof BREAKDOWN[number], string> = {
  computeMs: "compute",
  encodeMs: "encode tasks",
  networkMs: "network wait",
  decodeMs: "decode results",
  optimizerMs: "gradient sum + Adam",
  broadcastMs: "broadcast weights",
};

export function scalingSpec(rows: ReportRow[], title: string): TopLevelSpec {
  const base = rows[0];
  const throughput = rows.flatMap((r) => [
    { workers: r.workers, series: "gantry", value: r.imagesPerSec },
    { workers: r.workers, series: "ideal", value: base.imagesPerSec * r.workers / base.workers },
    ...(r.peer?.imagesPerSec !== undefined
      ? [{ workers: r.workers, series: "PyTorch DDP", value: r.peer.imagesPerSec }]
      : []),
  ]);
  const parts = rows.flatMap((r) => [
    ...BREAKDOWN.map((k) => ({ workers: String(r.workers), part: LABELS[k], ms: r.breakdown[k] })),
    { workers: String(r.workers), part: "other", ms: r.otherMs },
  ]);
  const spec = {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title,
    config: { font: FONT_FAMILY, background: "white" },
    hconcat: [
      {
        width: PANEL_WIDTH,
        height: PANEL_HEIGHT,
        title: "Images per second",
        data: { values: throughput },
        mark: { type: "line", point: true },
        encoding: {
          x: { field: "workers", type: "quantitative", title: "workers", axis: { tickMinStep: 1 } },
          y: { field: "value", type: "quantitative", title: "images/s" },
          color: { field: "series", type: "nominal", title: null },
          strokeDash: { field: "series", type: "nominal", legend: null },
        },
      },
      {
        width: PANEL_WIDTH,
        height: PANEL_HEIGHT,
        title: "Where a step's time goes (median ms)",
        data: { values: parts },
        mark: "bar",
        encoding: {
          x: { field: "workers", type: "ordinal", title: "workers" },
          y: { field: "ms", type: "quantitative", title: "ms per step", stack: "zero" },
          color: { field: "part", type: "nominal", title: null },
        },
      },
    ],
    resolve: { scale: { color: "independent" } },
  };
  return spec as unknown as TopLevelSpec;
}

let resvgReady: Promise<void> | undefined;

async function fonts(): Promise<Uint8Array[]> {
  const packaged = FONT_FILES.map((f) => new URL(import.meta.resolve(`dejavu-fonts-ttf/ttf/${f}`)));
  try {
    return await Promise.all(packaged.map((f) => Deno.readFile(f)));
  } catch {
    return await Promise.all(FONT_FILES.map((f) => Deno.readFile(`${SYSTEM_FONT_DIR}/${f}`)));
  }
}

/** Writes `<base>.svg` and `<base>.png`. */
export async function writeScalingPlot(rows: ReportRow[], title: string, base: string): Promise<void> {
  await renderSpec(scalingSpec(rows, title), base);
}

/** Renders a vega-lite spec to `<base>.svg` and `<base>.png` (twice the pixels). */
export async function renderSpec(spec: TopLevelSpec, base: string): Promise<void> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: "none" });
  let svg: string;
  try {
    svg = await view.toSVG();
  } finally {
    view.finalize();
  }
  await writeFileAtomic(`${base}.svg`, svg);
  resvgReady ??= (async () => {
    await initWasm(await Deno.readFile(new URL(import.meta.resolve("@resvg/resvg-wasm/index_bg.wasm"))));
  })();
  await resvgReady;
  const resvg = new Resvg(svg, {
    fitTo: { mode: "zoom", value: 2 },
    font: { fontBuffers: await fonts(), defaultFontFamily: FONT_FAMILY, sansSerifFamily: FONT_FAMILY },
  });
  try {
    const image = resvg.render();
    try {
      await writeFileAtomic(`${base}.png`, image.asPng());
    } finally {
      image.free();
    }
  } finally {
    resvg.free();
  }
}
