/**
 * Loss curves of a run (losses.svg, losses.png): vega-lite describes the chart, vega renders it to SVG
 * headless (no canvas), and resvg's WebAssembly build rasterizes the SVG, so nothing native has to load.
 *
 * Top panel: lossD and lossG per step, every step as a thin faint line and a debiased exponential moving
 * average (as TensorBoard smooths) as a bold line. Bottom panel: mean D(x) on the real images and mean
 * D(G(z)) during D's update, drawn the same way on a fixed 0..1 axis. Both panels share the step axis and
 * mark the epoch boundaries. With --eval-every, a third panel shows the generator's conditional accuracy and
 * Fréchet distance at each evaluation (evaluate/epoch.ts).
 */
import { join } from "node:path";
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import { initWasm, Resvg } from "@resvg/resvg-wasm";
import { errorMessage, GantryError } from "../shared/errors.ts";
import { writeFileAtomic } from "../shared/files.ts";

/** The fields of a metrics.jsonl line that the plot reads; `MetricsLine` (recorder.ts) is one. */
export interface MetricLike {
  step: number;
  epoch?: number;
  lossD: number;
  lossG: number;
  /** Mean D(x) on the real images. */
  dReal?: number;
  /** Mean D(G(z)) during D's update. */
  dFakeD?: number;
}

/** An --eval-every evaluation of the generator (a `"type": "evaluation"` line of metrics.jsonl). */
export interface EvaluationPoint {
  step: number;
  epoch: number;
  conditionalAccuracy: number;
  frechetDistance: number;
}

export interface LossPlotOptions {
  /** Drawn in a third panel when there are any. */
  evaluations?: EvaluationPoint[];
  /**
   * Marks an epoch boundary after every `stepsPerEpoch` steps (steps count from 1). When absent, the
   * boundaries are where the lines' `epoch` field changes, and there are none if they carry no epoch.
   */
  stepsPerEpoch?: number;
}

export interface LossPlot {
  svg: string;
  png: Uint8Array;
}

/**
 * Above this many steps the faint per-step lines show one step in k (the EMA still uses every step). A
 * stride, as TensorBoard samples, keeps the band of step-to-step noise as wide as it really is; min/max
 * buckets would widen it with the run's length and hide the trend in a 100,000-step run.
 */
export const MAX_RAW_POINTS = 2000;
/** The smoothed line has no detail to lose between these points. */
const MAX_SMOOTH_POINTS = 1000;
/** The EMA spans this fraction of the run, so that 40 steps and 100,000 steps look alike. */
const SMOOTH_SPAN_FRACTION = 0.02;
const MIN_SMOOTH_SPAN_STEPS = 5;
const MAX_SMOOTH_SPAN_STEPS = 2000;
/** Short runs also get a dot per step: a line through one point is not drawn at all. */
const MAX_STEPS_WITH_DOTS = 60;
/** The loss axis ends at these quantiles of the raw losses, so that one spike does not flatten the rest. */
const LOSS_AXIS_LOW_QUANTILE = 0.005;
const LOSS_AXIS_HIGH_QUANTILE = 0.995;
const LOSS_AXIS_HEADROOM = 1.05;
/** More epoch rules than this turn the plot into stripes, more labels overlap: both are thinned. */
const MAX_EPOCH_RULES = 25;
const MAX_EPOCH_LABELS = 10;
/** The step axis gets about this many ticks; vega's label-width estimate drops every other one past it. */
const STEP_TICKS = 8;

const PANEL_WIDTH = 820;
const PANEL_HEIGHT = 250;
/** The PNG has twice the SVG's pixels, to stay sharp on high-density screens. */
const PNG_ZOOM = 2;
/**
 * resvg-wasm cannot see the system's fonts, so font files are handed to it: DejaVu from an npm package
 * pinned in deno.json, else Debian's fonts-dejavu-core. The SVG names fallbacks for browsers without it.
 */
const FONT_FAMILY = "DejaVu Sans";
const FONT_STACK = `${FONT_FAMILY}, Helvetica, Arial, sans-serif`;
const FONT_FILES = ["DejaVuSans.ttf", "DejaVuSans-Bold.ttf"];
const PACKAGED_FONT_DIR = "dejavu-fonts-ttf/ttf";
const SYSTEM_FONT_DIR = "/usr/share/fonts/truetype/dejavu";

export const LOSS_TITLE = "Losses per step";
export const OUTPUT_TITLE = "Discriminator outputs per step";
export const EVALUATION_TITLE = "Generated digits, measured by a classifier trained on real ones";
const ACCURACY_COLOR = "#9467bd";
const DISTANCE_COLOR = "#8c564b";

interface Series {
  key: "lossD" | "lossG" | "dReal" | "dFakeD";
  name: string;
  color: string;
}
const LOSS_SERIES: Series[] = [
  { key: "lossD", name: "D loss", color: "#1f77b4" },
  { key: "lossG", name: "G loss", color: "#ff7f0e" },
];
const OUTPUT_SERIES: Series[] = [
  { key: "dReal", name: "D(x), real", color: "#2ca02c" },
  { key: "dFakeD", name: "D(G(z)), fake", color: "#d62728" },
];

interface Point {
  step: number;
  value: number;
  series: string;
}

interface EpochMark {
  /** Halfway between the last step of one epoch and the first of the next. */
  step: number;
  label: string;
}

// ---------------------------------------------------------------------------------------------------------
// Data: smoothing and axis ranges use every step; only what is drawn is thinned.

/**
 * One line per step, in step order. A resumed run appends again from its checkpoint's step, so a step can
 * appear twice in metrics.jsonl: the later line is the one that the weights went on from.
 */
function latestPerStep(metrics: MetricLike[]): MetricLike[] {
  const byStep = new Map<number, MetricLike>();
  for (const m of metrics) {
    if (!Number.isFinite(m.step)) {
      throw new GantryError("E_DATA", `metrics step must be a finite number: current value is ${m.step}`);
    }
    byStep.set(m.step, m);
  }
  return [...byStep.values()].sort((a, b) => a.step - b.step);
}

/** The EMA's span in steps for a run of `steps` steps. */
export function smoothingSpan(steps: number): number {
  const span = Math.round(steps * SMOOTH_SPAN_FRACTION);
  return Math.min(MAX_SMOOTH_SPAN_STEPS, Math.max(MIN_SMOOTH_SPAN_STEPS, span));
}

/**
 * Exponential moving average with alpha = 2 / (span + 1), divided by the weight it has gathered so far
 * (the bias correction of Adam and TensorBoard), so that the first steps are not pulled toward the zero
 * the average starts from.
 */
export function ema(values: ArrayLike<number>, span: number): Float64Array {
  const alpha = 2 / (span + 1);
  const out = new Float64Array(values.length);
  let average = 0;
  let weight = 0;
  for (let i = 0; i < values.length; i++) {
    average = (1 - alpha) * average + alpha * values[i];
    weight = (1 - alpha) * weight + alpha;
    out[i] = average / weight;
  }
  return out;
}

/** Indices 0, k, 2k, ... of `n`, at most about `maxPoints` of them, always with the last one. */
export function strideIndices(n: number, maxPoints: number): number[] {
  const k = Math.max(1, Math.ceil(n / maxPoints));
  const kept: number[] = [];
  for (let i = 0; i < n; i += k) kept.push(i);
  if (n > 0 && kept[kept.length - 1] !== n - 1) kept.push(n - 1);
  return kept;
}

interface PanelData {
  raw: Point[];
  smooth: Point[];
  /** Every finite raw value, sorted, to choose the axis from. */
  sortedRaw: Float64Array;
  smoothMin: number;
  smoothMax: number;
}

function panelData(rows: MetricLike[], series: Series[], span: number): PanelData {
  const raw: Point[] = [];
  const smooth: Point[] = [];
  const all: number[] = [];
  let smoothMin = Infinity;
  let smoothMax = -Infinity;
  for (const { key, name } of series) {
    // Non-finite values (a diverged loss; JSON writes NaN as null) are left out, and the line bridges them.
    const steps: number[] = [];
    const values: number[] = [];
    for (const row of rows) {
      const value = row[key];
      if (typeof value === "number" && Number.isFinite(value)) {
        steps.push(row.step);
        values.push(value);
      }
    }
    const smoothed = ema(values, span);
    for (const i of strideIndices(values.length, MAX_RAW_POINTS)) {
      raw.push({ step: steps[i], value: values[i], series: name });
    }
    for (const i of strideIndices(values.length, MAX_SMOOTH_POINTS)) {
      smooth.push({ step: steps[i], value: smoothed[i], series: name });
    }
    for (const v of smoothed) {
      if (v < smoothMin) smoothMin = v;
      if (v > smoothMax) smoothMax = v;
    }
    for (const v of values) all.push(v);
  }
  return { raw, smooth, sortedRaw: Float64Array.from(all).sort(), smoothMin, smoothMax };
}

function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** Losses are >= 0, so the axis starts at 0 unless a loss is not; it ends above the smoothed line. */
function lossDomain(data: PanelData): [number, number] {
  const low = Math.min(0, quantile(data.sortedRaw, LOSS_AXIS_LOW_QUANTILE), data.smoothMin);
  const high = Math.max(quantile(data.sortedRaw, LOSS_AXIS_HIGH_QUANTILE), data.smoothMax);
  if (!Number.isFinite(high) || !Number.isFinite(low) || high <= low) return [0, 1];
  return [low < 0 ? low * LOSS_AXIS_HEADROOM : 0, high * LOSS_AXIS_HEADROOM];
}

/** The smallest of 1, 2, 5, 10, 20, 50, ... that brings `count` down to at most `max`. */
function niceStride(count: number, max: number): number {
  for (let magnitude = 1;; magnitude *= 10) {
    for (const k of [1, 2, 5]) if (Math.ceil(count / (k * magnitude)) <= max) return k * magnitude;
  }
}

/** The epochs that start after the first step, thinned to a readable number, with every k-th labelled. */
function epochMarks(rows: MetricLike[], stepsPerEpoch: number | undefined) {
  const first = rows[0].step;
  const last = rows[rows.length - 1].step;
  const starts: { step: number; epoch: number }[] = [];
  if (stepsPerEpoch !== undefined) {
    // Epoch e starts at step (e - 1) * stepsPerEpoch + 1.
    for (let epoch = Math.floor((first - 1) / stepsPerEpoch) + 2;; epoch++) {
      const step = (epoch - 1) * stepsPerEpoch + 1;
      if (step > last) break;
      starts.push({ step, epoch });
    }
  } else {
    for (let i = 1; i < rows.length; i++) {
      const epoch = rows[i].epoch;
      if (typeof epoch === "number" && Number.isFinite(epoch) && epoch !== rows[i - 1].epoch) {
        starts.push({ step: rows[i].step, epoch });
      }
    }
  }
  const ruleStride = niceStride(starts.length, MAX_EPOCH_RULES);
  const labelStride = Math.max(ruleStride, niceStride(starts.length, MAX_EPOCH_LABELS));
  const marks: EpochMark[] = starts
    .filter((s) => ruleStride === 1 || s.epoch % ruleStride === 0)
    .map((s) => ({
      step: s.step - 0.5,
      label: labelStride === 1 || s.epoch % labelStride === 0 ? `epoch ${s.epoch}` : "",
    }));
  return { marks, ruleStride };
}

// ---------------------------------------------------------------------------------------------------------
// The chart.

type Layer = Record<string, unknown>;

interface PanelSpec {
  id: string;
  title: string;
  subtitle: string;
  series: Series[];
  data: PanelData;
  yTitle: string;
  yDomain: [number, number];
  /** Extra layers drawn behind the lines. */
  background: Layer[];
}

/** The step axis, the same in every layer so that vega-lite merges it into one scale. */
function stepEncoding(domain: [number, number]): Layer {
  return {
    field: "step",
    type: "quantitative",
    title: "step",
    scale: { domain, nice: false, zero: false },
    axis: { tickCount: STEP_TICKS, tickMinStep: 1, format: ",d" },
  };
}

function panel(p: PanelSpec, x: Layer, withDots: boolean): Layer {
  // Values beyond the axis (loss spikes above its quantile) are clamped to its edge rather than clipped: a
  // spike still shows as a stroke to the edge, and resvg does not have to composite a canvas-sized clip
  // layer, which costs it more than the lines themselves.
  const y = {
    field: "value",
    type: "quantitative",
    title: p.yTitle,
    scale: { domain: p.yDomain, nice: false, clamp: true },
  };
  const color = {
    field: "series",
    type: "nominal",
    scale: { domain: p.series.map((s) => s.name), range: p.series.map((s) => s.color) },
    // Outside the plot, so that it hides no line; opaque symbols although the raw layer is faint. Both line
    // layers carry the same legend: vega-lite merges them, and a null on either would hide it.
    legend: { title: null, orient: "right", symbolType: "stroke", symbolStrokeWidth: 3, symbolOpacity: 1 },
  };
  return {
    title: { text: p.title, subtitle: p.subtitle },
    width: PANEL_WIDTH,
    height: PANEL_HEIGHT,
    layer: [
      ...p.background,
      {
        name: `${p.id}_raw`,
        data: { values: p.data.raw },
        // strokeOpacity, not opacity: an SVG opacity makes resvg render the line into a layer of its own.
        mark: { type: "line", strokeWidth: 0.8, strokeOpacity: 0.35, point: withDots ? { size: 16 } : false },
        encoding: { x, y, color },
      },
      {
        name: `${p.id}_smoothed`,
        data: { values: p.data.smooth },
        mark: { type: "line", strokeWidth: 2.2 },
        encoding: { x, y, color },
      },
    ],
  };
}

function epochLayers(id: string, x: Layer, marks: EpochMark[], withLabels: boolean): Layer[] {
  if (marks.length === 0) return [];
  const rules: Layer = {
    name: `${id}_epochs`,
    data: { values: marks },
    mark: { type: "rule", color: "#aaaaaa", strokeDash: [4, 3], strokeWidth: 1 },
    encoding: { x },
  };
  if (!withLabels) return [rules];
  const labels: Layer = {
    name: `${id}_epoch_labels`,
    data: { values: marks.filter((m) => m.label !== "") },
    mark: {
      type: "text",
      align: "left",
      baseline: "top",
      dx: 3,
      dy: 3,
      y: 0,
      fontSize: 10,
      color: "#666666",
    },
    encoding: { x, text: { field: "label" } },
  };
  return [rules, labels];
}

/** Conditional accuracy (left axis) and Fréchet distance (right axis) at each evaluation. */
function evaluationPanel(evaluations: EvaluationPoint[], x: Layer): Layer {
  const values = evaluations.filter((e) => Number.isFinite(e.step));
  const line = (field: keyof EvaluationPoint, color: string, dash: number[]) => ({
    name: `evaluation_${field}`,
    data: { values },
    mark: { type: "line", color, strokeWidth: 2, strokeDash: dash, point: { size: 30, color } },
  });
  return {
    title: {
      text: EVALUATION_TITLE,
      subtitle: "solid: samples classified as the label they were drawn for (left axis); dashed: Fréchet " +
        "distance of the classifier's features to the real test set (right axis, lower is better)",
    },
    width: PANEL_WIDTH,
    height: PANEL_HEIGHT,
    layer: [
      {
        ...line("conditionalAccuracy", ACCURACY_COLOR, []),
        encoding: {
          x,
          y: {
            field: "conditionalAccuracy",
            type: "quantitative",
            title: "conditional accuracy",
            scale: { domain: [0, 1] },
            axis: { format: "%", titleColor: ACCURACY_COLOR },
          },
        },
      },
      {
        ...line("frechetDistance", DISTANCE_COLOR, [6, 3]),
        encoding: {
          x,
          y: {
            field: "frechetDistance",
            type: "quantitative",
            title: "Fréchet distance",
            scale: { zero: true },
            axis: { orient: "right", titleColor: DISTANCE_COLOR },
          },
        },
      },
    ],
    resolve: { scale: { y: "independent" } },
  };
}

function buildSpec(metrics: MetricLike[], opts: LossPlotOptions): TopLevelSpec {
  const rows = latestPerStep(metrics);
  const first = rows[0].step;
  const last = rows[rows.length - 1].step;
  const span = smoothingSpan(rows.length);
  const rawStride = Math.max(1, Math.ceil(rows.length / MAX_RAW_POINTS));
  const { marks, ruleStride } = epochMarks(rows, opts.stepsPerEpoch);
  // Starting the axis at 0 rather than step 1 gives it round ticks; a single step sits in the middle.
  const xDomain: [number, number] = first === last
    ? [first - 0.5, last + 0.5]
    : [first === 1 ? 0 : first, last];

  const x = stepEncoding(xDomain);
  const faint = rawStride === 1 ? "faint: every step" : `faint: one step in ${rawStride}`;
  const epochs = marks.length === 0
    ? ""
    : ruleStride === 1
    ? "; dashed: epoch boundaries"
    : `; dashed: epoch boundaries (one in ${ruleStride})`;
  const legendNote = `${faint}; bold: EMA over ~${span} steps${epochs}`;
  const withDots = rows.length <= MAX_STEPS_WITH_DOTS;

  const losses = panelData(rows, LOSS_SERIES, span);
  const outputs = panelData(rows, OUTPUT_SERIES, span);
  const spec = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    background: "white",
    padding: 12,
    spacing: 28,
    config: {
      font: FONT_STACK,
      title: { fontSize: 15, subtitleFontSize: 11, subtitleColor: "#555555", anchor: "start", offset: 8 },
      axis: { labelFontSize: 11, titleFontSize: 12, gridColor: "#e8e8e8" },
      legend: { labelFontSize: 12 },
    },
    vconcat: [
      panel(
        {
          id: "losses",
          title: LOSS_TITLE,
          subtitle: legendNote,
          series: LOSS_SERIES,
          data: losses,
          yTitle: "loss (binary cross-entropy)",
          yDomain: lossDomain(losses),
          background: epochLayers("losses", x, marks, true),
        },
        x,
        withDots,
      ),
      panel(
        {
          id: "outputs",
          title: OUTPUT_TITLE,
          subtitle:
            "mean probability that D gives to 'real'; at 0.5 (gray line) D cannot tell real from fake",
          series: OUTPUT_SERIES,
          data: outputs,
          yTitle: "mean D output",
          yDomain: [0, 1],
          background: [
            ...epochLayers("outputs", x, marks, false),
            {
              name: "outputs_even_odds",
              data: { values: [{ value: 0.5 }] },
              mark: { type: "rule", color: "#999999", strokeWidth: 1 },
              encoding: { y: { field: "value", type: "quantitative" } },
            },
          ],
        },
        x,
        withDots,
      ),
      ...(opts.evaluations?.length ? [evaluationPanel(opts.evaluations, x)] : []),
    ],
    // Each panel has its own series and so its own legend; the step axis is common to both.
    resolve: { scale: { x: "shared", color: "independent" } },
  };
  return spec as unknown as TopLevelSpec;
}

// ---------------------------------------------------------------------------------------------------------
// Rendering.

let resvgReady: Promise<void> | undefined;

/** Loads resvg's WebAssembly once per process: initWasm() throws when called a second time. */
function loadResvg(): Promise<void> {
  resvgReady ??= (async () => {
    const wasm = new URL(import.meta.resolve("@resvg/resvg-wasm/index_bg.wasm"));
    await initWasm(await Deno.readFile(wasm));
  })();
  resvgReady.catch(() => resvgReady = undefined);
  return resvgReady;
}

let fontsReady: Promise<Uint8Array[]> | undefined;

function loadFonts(): Promise<Uint8Array[]> {
  fontsReady ??= (async () => {
    const tried: string[] = [];
    const packaged = FONT_FILES.map((f) => new URL(import.meta.resolve(`${PACKAGED_FONT_DIR}/${f}`)));
    const system = FONT_FILES.map((f) => join(SYSTEM_FONT_DIR, f));
    for (const files of [packaged, system]) {
      try {
        return await Promise.all(files.map((f) => Deno.readFile(f)));
      } catch (error) {
        tried.push(`${files[0]} (${errorMessage(error)})`);
      }
    }
    throw new GantryError(
      "E_DATA",
      `no font for the loss plot's text: run \`deno install\` (npm:dejavu-fonts-ttf) or install Debian's ` +
        `fonts-dejavu-core; tried ${tried.join(", ")}`,
    );
  })();
  fontsReady.catch(() => fontsReady = undefined);
  return fontsReady;
}

/**
 * Draws the loss curves of `metrics` (metrics.jsonl lines, in any order) as an SVG document and as a PNG
 * with twice its pixels. Needs read access to node_modules (resvg's .wasm and the font files).
 */
export async function renderLossPlot(metrics: MetricLike[], opts: LossPlotOptions = {}): Promise<LossPlot> {
  if (metrics.length === 0) throw new GantryError("E_DATA", "no metrics to plot: the run has no steps yet");
  const { stepsPerEpoch } = opts;
  if (stepsPerEpoch !== undefined && !(Number.isInteger(stepsPerEpoch) && stepsPerEpoch >= 1)) {
    throw new GantryError(
      "E_CONFIG",
      `stepsPerEpoch must be an integer >= 1: current value is ${stepsPerEpoch}`,
    );
  }
  const rasterizer = Promise.all([loadResvg(), loadFonts()]);
  const view = new vega.View(vega.parse(compile(buildSpec(metrics, opts)).spec), { renderer: "none" });
  let svg: string;
  try {
    svg = await view.toSVG();
  } finally {
    view.finalize();
  }
  const [, fonts] = await rasterizer;
  const resvg = new Resvg(svg, {
    fitTo: { mode: "zoom", value: PNG_ZOOM },
    font: { fontBuffers: fonts, defaultFontFamily: FONT_FAMILY, sansSerifFamily: FONT_FAMILY },
  });
  try {
    const image = resvg.render();
    try {
      return { svg, png: image.asPng() };
    } finally {
      image.free();
    }
  } finally {
    resvg.free();
  }
}

/**
 * Reads metrics.jsonl. A crash can leave the last line half written, so an unreadable last line is
 * skipped; an unreadable line anywhere else is an error that names it.
 */
export async function readMetrics(path: string): Promise<MetricLike[]> {
  const lines = (await Deno.readTextFile(path)).split("\n");
  while (lines.length > 0 && lines[lines.length - 1].trim() === "") lines.pop();
  // JSON has no NaN: a diverged loss arrives as null, and is drawn as a gap.
  const num = (v: unknown) => (typeof v === "number" ? v : NaN);
  const metrics: MetricLike[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() === "") continue;
    let m: Record<string, unknown> | null;
    try {
      m = JSON.parse(lines[i]);
    } catch (error) {
      if (i === lines.length - 1) break;
      throw new GantryError("E_DATA", `${path}:${i + 1} is not JSON: ${errorMessage(error)}`);
    }
    if (typeof m !== "object" || m === null || typeof m.step !== "number") {
      throw new GantryError("E_DATA", `${path}:${i + 1} has no numeric "step": ${lines[i].slice(0, 80)}`);
    }
    // Lines with a `type` are not a step's (--eval-every's evaluations): readEvaluations reads them.
    if (typeof m.type === "string") continue;
    metrics.push({
      step: m.step,
      epoch: typeof m.epoch === "number" ? m.epoch : undefined,
      lossD: num(m.lossD),
      lossG: num(m.lossG),
      dReal: num(m.dReal),
      dFakeD: num(m.dFakeD),
    });
  }
  return metrics;
}

/** The evaluation lines of metrics.jsonl (--eval-every), in step order, the later of a step written twice. */
export async function readEvaluations(path: string): Promise<EvaluationPoint[]> {
  const byStep = new Map<number, EvaluationPoint>();
  for (const line of (await Deno.readTextFile(path)).split("\n")) {
    if (!line.includes('"evaluation"')) continue;
    let m;
    try {
      m = JSON.parse(line);
    } catch {
      continue; // a torn last line; readMetrics names a bad line elsewhere
    }
    if (m?.type !== "evaluation" || typeof m.step !== "number") continue;
    const num = (v: unknown) => (typeof v === "number" ? v : NaN);
    byStep.set(m.step, {
      step: m.step,
      epoch: num(m.epoch),
      conditionalAccuracy: num(m.conditionalAccuracy),
      frechetDistance: num(m.frechetDistance),
    });
  }
  return [...byStep.values()].sort((a, b) => a.step - b.step);
}

/**
 * Reads `runDir`/metrics.jsonl and writes `runDir`/losses.svg and losses.png, each to a temporary name
 * first and renamed over, so that a viewer never shows half a plot. Does nothing while the run has no steps.
 */
export async function writeLossPlots(runDir: string, opts: LossPlotOptions = {}): Promise<void> {
  const path = join(runDir, "metrics.jsonl");
  const metrics = await readMetrics(path);
  if (metrics.length === 0) return;
  const { svg, png } = await renderLossPlot(metrics, { evaluations: await readEvaluations(path), ...opts });
  await writeFileAtomic(join(runDir, "losses.svg"), svg);
  await writeFileAtomic(join(runDir, "losses.png"), png);
}
