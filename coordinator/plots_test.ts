import { Buffer } from "node:buffer";
import { join } from "node:path";
import { PNG } from "pngjs";
import { assert, assertEquals, assertRejects } from "../shared/testing.ts";
import { GantryError } from "../shared/errors.ts";
import {
  ema,
  EVALUATION_TITLE,
  LOSS_TITLE,
  MAX_RAW_POINTS,
  type MetricLike,
  OUTPUT_TITLE,
  readEvaluations,
  readMetrics,
  renderLossPlot,
  strideIndices,
  writeLossPlots,
} from "./plots.ts";

const decodePng = (bytes: Uint8Array): { width: number; height: number } => PNG.sync.read(Buffer.from(bytes));

/** Noisy decaying curves like a GAN's first epochs; deterministic, so failures reproduce. */
function syntheticMetrics(steps: number, stepsPerEpoch: number, withEpoch = true): MetricLike[] {
  let seed = 1;
  const noise = () => ((seed = (seed * 16807) % 2147483647) / 2147483647 - 0.5) * 0.2;
  return Array.from({ length: steps }, (_, i) => {
    const decay = Math.exp(-i / (steps / 5));
    return {
      step: i + 1,
      epoch: withEpoch ? Math.floor(i / stepsPerEpoch) + 1 : undefined,
      lossD: 1.3 - 0.5 * decay + noise(),
      lossG: 0.9 + 1.5 * decay + noise(),
      dReal: 0.6 + 0.3 * decay + noise() / 4,
      dFakeD: 0.4 - 0.3 * decay + noise() / 4,
    };
  });
}

/**
 * The SVG elements of one named vega mark: vega puts the mark's name in its group's class, with one group
 * per line of a multi-line mark.
 */
function markGroup(svg: string, name: string): string {
  const groups = [
    ...svg.matchAll(new RegExp(`<g class="mark-\\w+ role-mark ${name}_marks"[^>]*>(.*?)</g>`, "g")),
  ];
  assert(groups.length > 0, `the SVG has no mark named ${name}`);
  return groups.map((g) => g[1]).join("");
}

const count = (text: string, needle: string) => text.split(needle).length - 1;

function svgSize(svg: string): { width: number; height: number } {
  const match = /<svg[^>]* width="(\d+)" height="(\d+)"/.exec(svg);
  assert(match, "the SVG has a width and a height");
  return { width: Number(match[1]), height: Number(match[2]) };
}

Deno.test("renderLossPlot() titles both panels and draws a dashed rule at each epoch boundary", async () => {
  const { svg } = await renderLossPlot(syntheticMetrics(60, 20));
  assert(svg.includes(LOSS_TITLE), "loss panel title");
  assert(svg.includes(OUTPUT_TITLE), "discriminator panel title");
  for (const text of ["D loss", "G loss", "D(x), real", "D(G(z)), fake", "mean D output", ">step<"]) {
    assert(svg.includes(text), `legend or axis text ${text}`);
  }
  // Three epochs have two boundaries, marked in both panels and labelled in the top one.
  assertEquals(count(markGroup(svg, "losses_epochs"), "<line"), 2);
  assertEquals(count(markGroup(svg, "outputs_epochs"), "<line"), 2);
  const labels = markGroup(svg, "losses_epoch_labels");
  assert(labels.includes(">epoch 2<") && labels.includes(">epoch 3<"), "epoch labels");
});

Deno.test("renderLossPlot() returns a PNG with twice the SVG's pixels", async () => {
  const { svg, png } = await renderLossPlot(syntheticMetrics(60, 20));
  const size = svgSize(svg);
  const decoded = decodePng(png);
  assertEquals([decoded.width, decoded.height], [size.width * 2, size.height * 2]);
  assert(
    size.width > 800 && size.width < 1400 && size.height > 500 && size.height < 900,
    `${size.width}x${size.height}`,
  );
});

Deno.test("renderLossPlot() draws a run of a single step", async () => {
  const { svg, png } = await renderLossPlot(syntheticMetrics(1, 20));
  assert(svg.includes(LOSS_TITLE));
  assert(!svg.includes("losses_epochs_marks"), "no epoch boundary within one step");
  const decoded = decodePng(png);
  assert(decoded.width > 1000 && decoded.height > 1000);
});

Deno.test("renderLossPlot() draws 100,000 steps with at most MAX_RAW_POINTS points per faint line", async () => {
  const { svg, png } = await renderLossPlot(syntheticMetrics(100_000, 469));
  const raw = markGroup(svg, "losses_raw");
  const paths = raw.match(/ d="[^"]*"/g) ?? [];
  assertEquals(paths.length, 2, "one faint line per loss");
  for (const d of paths) {
    const points = count(d, "L") + 1;
    assert(points <= MAX_RAW_POINTS + 1, `${points} points`);
  }
  // 213 epochs are thinned to every 10th boundary.
  assertEquals(count(markGroup(svg, "losses_epochs"), "<line"), 21);
  assert(svg.length < 1_000_000, `the SVG stays small: ${svg.length} characters`);
  assert(decodePng(png).width > 1000);
});

Deno.test("renderLossPlot() marks an epoch every stepsPerEpoch steps when the lines have no epoch", async () => {
  const { svg } = await renderLossPlot(syntheticMetrics(35, 10, false), { stepsPerEpoch: 10 });
  assertEquals(count(markGroup(svg, "losses_epochs"), "<line"), 3);
  const { svg: unmarked } = await renderLossPlot(syntheticMetrics(35, 10, false));
  assert(!unmarked.includes("losses_epochs_marks"), "no epoch, no boundary");
});

Deno.test("renderLossPlot() keeps the later line of a step written twice by a resumed run", async () => {
  const first = syntheticMetrics(30, 10);
  const resumed = syntheticMetrics(30, 10).slice(19).map((m) => ({ ...m, lossD: 5 }));
  const { svg } = await renderLossPlot([...first, ...resumed]);
  const d = / d="([^"]*)"/.exec(markGroup(svg, "losses_raw"))?.[1] ?? "";
  assertEquals(count(d, "L") + 1, 30, "one point per step");
});

Deno.test("renderLossPlot() rejects an empty run and a bad stepsPerEpoch", async () => {
  const empty = await assertRejects(() => renderLossPlot([]), GantryError, "no metrics");
  assertEquals(empty.code, "E_DATA");
  const bad = await assertRejects(
    () => renderLossPlot(syntheticMetrics(5, 5), { stepsPerEpoch: 0 }),
    GantryError,
    "current value is 0",
  );
  assertEquals(bad.code, "E_CONFIG");
});

Deno.test("ema() is bias-corrected, so a constant series stays constant from the first step", () => {
  assertEquals([...ema([2, 2, 2, 2], 5)], [2, 2, 2, 2]);
  const smoothed = ema([0, 10], 3);
  assertEquals(smoothed[0], 0);
  assert(smoothed[1] > 5 && smoothed[1] < 10, `${smoothed[1]}`);
});

Deno.test("strideIndices() keeps every k-th index and always the last", () => {
  assertEquals(strideIndices(5, 10), [0, 1, 2, 3, 4]);
  assertEquals(strideIndices(10, 4), [0, 3, 6, 9]);
  assertEquals(strideIndices(11, 4), [0, 3, 6, 9, 10]);
  assertEquals(strideIndices(0, 4), []);
});

Deno.test("readMetrics() skips a half-written last line, reads null as NaN and names a bad line", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "metrics.jsonl");
    const good = JSON.stringify({ epoch: 1, step: 1, lossD: 1, lossG: null, dReal: 0.5, dFakeD: 0.5 });
    await Deno.writeTextFile(path, `${good}\n{"epoch":1,"st`);
    const metrics = await readMetrics(path);
    assertEquals(metrics.length, 1);
    assert(Number.isNaN(metrics[0].lossG), "a diverged loss is NaN");
    await renderLossPlot(metrics);

    await Deno.writeTextFile(path, `${good}\nnot json\n${good}\n`);
    const error = await assertRejects(() => readMetrics(path), GantryError, "metrics.jsonl:2");
    assertEquals(error.code, "E_DATA");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeLossPlots() writes losses.svg and losses.png and leaves no temporary file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const lines = syntheticMetrics(50, 20).map((m) => JSON.stringify(m)).join("\n");
    await Deno.writeTextFile(join(dir, "metrics.jsonl"), lines + "\n");
    await writeLossPlots(dir);
    const names = [];
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
    assertEquals(names.sort(), ["losses.png", "losses.svg", "metrics.jsonl"]);
    assert((await Deno.readTextFile(join(dir, "losses.svg"))).includes(LOSS_TITLE));
    assert(decodePng(await Deno.readFile(join(dir, "losses.png"))).width > 1000);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeLossPlots() writes nothing for a run with no steps yet", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "metrics.jsonl"), "");
    await writeLossPlots(dir);
    const names = [];
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
    assertEquals(names, ["metrics.jsonl"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("renderLossPlot() rejects a step that is not a number, with the value", async () => {
  const metrics = [{ step: NaN, lossD: 1, lossG: 1 }];
  const error = await assertRejects(() => renderLossPlot(metrics), GantryError, "current value is NaN");
  assertEquals(error.code, "E_DATA");
});

Deno.test("writeLossPlots() draws --eval-every's evaluations in a third panel, and they are no step of the loss panels", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gantry-plots-" });
  try {
    const steps = syntheticMetrics(40, 10).map((m) => JSON.stringify(m));
    const evaluation = (epoch: number, accuracy: number) =>
      JSON.stringify({
        type: "evaluation",
        epoch,
        step: epoch * 10,
        conditionalAccuracy: accuracy,
        classifierScore: 5,
        frechetDistance: 100 * (1 - accuracy),
      });
    // Each evaluation follows its epoch's last step, as the coordinator writes them.
    const lines = [...steps.slice(0, 20), evaluation(2, 0.5), ...steps.slice(20), evaluation(4, 0.8)];
    const path = join(dir, "metrics.jsonl");
    await Deno.writeTextFile(path, lines.join("\n") + "\n");
    assertEquals((await readMetrics(path)).length, 40, "evaluation lines are not steps");
    assertEquals((await readEvaluations(path)).map((e) => [e.step, e.conditionalAccuracy]), [[20, 0.5], [
      40,
      0.8,
    ]]);
    await writeLossPlots(dir);
    const svg = await Deno.readTextFile(join(dir, "losses.svg"));
    assert(svg.includes(EVALUATION_TITLE), "evaluation panel title");
    for (const name of ["evaluation_conditionalAccuracy", "evaluation_frechetDistance"]) {
      const line = / d="([^"]*)"/.exec(markGroup(svg, name))?.[1] ?? "";
      assertEquals(count(line, "L") + 1, 2, `${name}: a line through the 2 evaluations`);
    }
    const d = / d="([^"]*)"/.exec(markGroup(svg, "losses_raw"))?.[1] ?? "";
    assertEquals(count(d, "L") + 1, 40, "one point per step in the loss panel");
    const { svg: plain } = await renderLossPlot(syntheticMetrics(40, 10));
    assert(!plain.includes(EVALUATION_TITLE), "no evaluations, no third panel");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
