/**
 * A --trace file as a timeline picture (PNG and SVG), one row per process, for a window of steps: a quick
 * look without chrome://tracing or Perfetto at hand.
 *   deno run --allow-read --allow-write --allow-env scaling/trace_view.ts TRACE.json OUT_BASE [FIRST_STEP] [STEPS]
 */
import type { TopLevelSpec } from "vega-lite";
import type { TraceEvent } from "../shared/trace.ts";
import { renderSpec } from "./plot.ts";

export function timelineSpec(events: TraceEvent[], firstStep: number, steps: number): TopLevelSpec {
  const names = new Map<number, string>();
  for (const e of events) if (e.ph === "M") names.set(e.pid, String(e.args?.name ?? e.pid));
  const complete = events.filter((e) => e.ph === "X");
  const inWindow = complete.filter((e) => {
    const step = e.args?.step as number | undefined;
    return e.pid === 0 && step !== undefined && step >= firstStep && step < firstStep + steps;
  });
  if (inWindow.length === 0) {
    throw new Error(`no coordinator span for steps ${firstStep}..${firstStep + steps - 1}`);
  }
  const start = Math.min(...inWindow.map((e) => e.ts));
  const end = Math.max(...inWindow.map((e) => e.ts + (e.dur ?? 0)));
  const rows = complete
    .filter((e) => e.ts + (e.dur ?? 0) >= start && e.ts <= end)
    .map((e) => ({
      process: names.get(e.pid) ?? `pid ${e.pid}`,
      name: e.name.replace(/^(D|G) /, ""),
      phase: /(^| )D$|^D /.test(e.name) ? "D" : "G",
      from: (e.ts - start) / 1000,
      to: (e.ts + (e.dur ?? 0) - start) / 1000,
    }));
  const spec = {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title: `Trace, steps ${firstStep}..${firstStep + steps - 1} (ms from the first span)`,
    width: 900,
    height: { step: 28 },
    data: { values: rows },
    layer: [
      {
        mark: { type: "bar", height: 18, stroke: "white", strokeWidth: 0.5 },
        encoding: {
          x: { field: "from", type: "quantitative", title: "ms" },
          x2: { field: "to" },
          y: { field: "process", type: "nominal", title: null, sort: [...names.values()] },
          color: { field: "name", type: "nominal", title: "span", scale: { scheme: "category20" } },
        },
      },
    ],
  };
  return spec as unknown as TopLevelSpec;
}

if (import.meta.main) {
  const [path, base, first = "10", count = "2"] = Deno.args;
  if (!path || !base) {
    console.error("usage: trace_view.ts TRACE.json OUT_BASE [FIRST_STEP] [STEPS]");
    Deno.exit(2);
  }
  const { traceEvents } = JSON.parse(await Deno.readTextFile(path)) as { traceEvents: TraceEvent[] };
  await renderSpec(timelineSpec(traceEvents, Number(first), Number(count)), base);
  console.log(`${base}.png, ${base}.svg`);
}
