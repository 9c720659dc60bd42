/**
 * From each run's metrics.jsonl to the scaling report: images/s, speed-up and efficiency against the
 * smallest worker count, the per-step breakdown (medians over the measured steps), and the PyTorch peer
 * beside it; as a terminal table and as scaling.csv.
 */

import type { MetricsLine } from "../coordinator/recorder.ts";

/** The fields of a metrics line the report reads. */
export type StepMetrics =
  & Pick<
    MetricsLine,
    | "step"
    | "stepMs"
    | "computeMs"
    | "workers"
    | "broadcastMs"
    | "encodeMs"
    | "networkMs"
    | "decodeMs"
    | "optimizerMs"
  >
  & Partial<Pick<MetricsLine, "lossD" | "lossG">>;

export const BREAKDOWN = [
  "computeMs",
  "encodeMs",
  "networkMs",
  "decodeMs",
  "optimizerMs",
  "broadcastMs",
] as const;
type BreakdownKey = typeof BREAKDOWN[number];

/** One worker count's run, summarized over its measured steps. */
export interface RunSummary {
  workers: number;
  globalBatch: number;
  measuredSteps: number;
  stepMs: number;
  imagesPerSec: number;
  breakdown: Record<BreakdownKey, number>;
  /** Step time not in the breakdown: metrics, progress, the event loop. */
  otherMs: number;
  /** Simulated compute only: the median step minus the simulated compute time. */
  overheadMs?: number;
  lossD: number;
  lossG: number;
}

/** A PyTorch measurement for the same worker count (gloo all_reduce ms, or DDP images/s). */
export interface PeerResult {
  name: string;
  /** gloo: median all_reduce time; ddp: undefined. */
  ms?: number;
  /** ddp: global images/s. */
  imagesPerSec?: number;
  /** Why there is no number (python or torch missing, the run failed). */
  skipped?: string;
}

export interface ReportRow extends RunSummary {
  speedup: number;
  efficiency: number;
  peer?: PeerResult;
  peerEfficiency?: number;
}

export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Summarizes a run's steps after the first `warmup`. */
export function summarizeRun(
  metrics: StepMetrics[],
  workers: number,
  globalBatch: number,
  warmup: number,
  simulatedStepMs?: number,
): RunSummary {
  const steps = metrics.filter((m) => typeof m.stepMs === "number").sort((a, b) => a.step - b.step);
  const measured = steps.slice(warmup);
  if (measured.length === 0) throw new Error(`run with ${workers} worker(s): no step after the warm-up`);
  const stepMs = median(measured.map((m) => m.stepMs));
  const breakdown = {} as Record<BreakdownKey, number>;
  for (const key of BREAKDOWN) breakdown[key] = median(measured.map((m) => m[key] ?? 0));
  const accounted = BREAKDOWN.reduce((sum, key) => sum + breakdown[key], 0);
  const last = steps[steps.length - 1];
  return {
    workers,
    globalBatch,
    measuredSteps: measured.length,
    stepMs,
    imagesPerSec: globalBatch / (stepMs / 1000),
    breakdown,
    otherMs: Math.max(0, stepMs - accounted),
    ...(simulatedStepMs !== undefined ? { overheadMs: stepMs - simulatedStepMs } : {}),
    lossD: last.lossD ?? NaN,
    lossG: last.lossG ?? NaN,
  };
}

/** Repeated runs of one worker count as one: the median of every time (images/s from the median step). */
export function combineRuns(runs: RunSummary[]): RunSummary {
  if (runs.length === 1) return runs[0];
  const breakdown = {} as Record<BreakdownKey, number>;
  for (const key of BREAKDOWN) breakdown[key] = median(runs.map((r) => r.breakdown[key]));
  const stepMs = median(runs.map((r) => r.stepMs));
  const overheads = runs.map((r) => r.overheadMs).filter((v): v is number => v !== undefined);
  const last = runs[runs.length - 1];
  return {
    ...last,
    measuredSteps: runs.reduce((sum, r) => sum + r.measuredSteps, 0),
    stepMs,
    imagesPerSec: last.globalBatch / (stepMs / 1000),
    breakdown,
    otherMs: median(runs.map((r) => r.otherMs)),
    ...(overheads.length > 0 ? { overheadMs: median(overheads) } : {}),
  };
}

/** Repeated peer measurements as one: medians, or the first reason one was skipped. */
export function combinePeers(peers: PeerResult[]): PeerResult {
  const skipped = peers.find((p) => p.skipped);
  if (skipped || peers.length === 1) return skipped ?? peers[0];
  const ms = peers.map((p) => p.ms).filter((v): v is number => v !== undefined);
  const rates = peers.map((p) => p.imagesPerSec).filter((v): v is number => v !== undefined);
  return {
    name: peers[0].name,
    ...(ms.length > 0 ? { ms: median(ms) } : {}),
    ...(rates.length > 0 ? { imagesPerSec: median(rates) } : {}),
  };
}

/**
 * Speed-up and efficiency against the smallest count: speed-up = images/s ÷ the smallest count's, efficiency
 * = speed-up ÷ (workers ÷ smallest count). The same for weak and strong scaling; the peers' alike.
 */
export function buildRows(runs: RunSummary[], peers: Map<number, PeerResult> = new Map()): ReportRow[] {
  const sorted = [...runs].sort((a, b) => a.workers - b.workers);
  const base = sorted[0];
  const basePeer = peers.get(base.workers)?.imagesPerSec;
  return sorted.map((run) => {
    const speedup = run.imagesPerSec / base.imagesPerSec;
    const efficiency = speedup / (run.workers / base.workers);
    const peer = peers.get(run.workers);
    const row: ReportRow = { ...run, speedup, efficiency };
    if (peer) row.peer = peer;
    if (peer?.imagesPerSec !== undefined && basePeer !== undefined) {
      row.peerEfficiency = (peer.imagesPerSec / basePeer) / (run.workers / base.workers);
    }
    return row;
  });
}

export const CSV_COLUMNS = [
  "workers",
  "compute",
  "model",
  "wire",
  "balance",
  "global_batch",
  "measured_steps",
  "step_ms",
  "images_per_s",
  "speedup",
  "efficiency",
  "compute_ms",
  "encode_ms",
  "network_ms",
  "decode_ms",
  "optimizer_ms",
  "broadcast_ms",
  "other_ms",
  "overhead_ms",
  "loss_d",
  "loss_g",
  "peer",
  "peer_ms",
  "peer_images_per_s",
  "peer_efficiency",
] as const;

export interface RunLabels {
  compute: string;
  model: string;
  wire: string;
  balance: boolean;
  /** gantry's --shared-memory (absent: auto). */
  sharedMemory?: string;
}

function fixed(n: number | undefined, digits = 2): string {
  return n === undefined || !Number.isFinite(n) ? "" : n.toFixed(digits);
}

export function toCsv(rows: ReportRow[], labels: RunLabels): string {
  const lines = [CSV_COLUMNS.join(",")];
  for (const r of rows) {
    const b = r.breakdown;
    const cells = [
      String(r.workers),
      labels.compute,
      labels.model,
      labels.wire,
      String(labels.balance),
      String(r.globalBatch),
      String(r.measuredSteps),
      fixed(r.stepMs),
      fixed(r.imagesPerSec, 1),
      fixed(r.speedup, 3),
      fixed(r.efficiency, 3),
      fixed(b.computeMs),
      fixed(b.encodeMs),
      fixed(b.networkMs),
      fixed(b.decodeMs),
      fixed(b.optimizerMs),
      fixed(b.broadcastMs),
      fixed(r.otherMs),
      fixed(r.overheadMs),
      fixed(r.lossD, 4),
      fixed(r.lossG, 4),
      r.peer ? r.peer.name : "",
      fixed(r.peer?.ms),
      fixed(r.peer?.imagesPerSec, 1),
      fixed(r.peerEfficiency, 3),
    ];
    lines.push(cells.join(","));
  }
  return lines.join("\n") + "\n";
}

/** The terminal table, with a plain statement of what was simulated. */
export function toTable(rows: ReportRow[], labels: RunLabels & { stepMs?: number; strong: boolean }): string {
  const head = [
    "workers",
    "batch",
    "step ms",
    "img/s",
    "speed-up",
    "effic.",
    "compute",
    "encode",
    "network",
    "decode",
    "sum+adam",
    "bcast",
    "other",
  ];
  const simulated = labels.compute === "simulated";
  if (simulated) head.push("overhead");
  const peerName = rows.find((r) => r.peer)?.peer?.name;
  if (peerName) {
    head.push(peerName === "gloo" ? "gloo ms" : "DDP img/s", ...(peerName === "gloo" ? [] : ["DDP eff."]));
  }
  const body = rows.map((r) => {
    const b = r.breakdown;
    const cells = [
      String(r.workers),
      String(r.globalBatch),
      fixed(r.stepMs, 1),
      fixed(r.imagesPerSec, 0),
      fixed(r.speedup),
      fixed(r.efficiency),
      ...BREAKDOWN.map((k) => fixed(b[k], 1)),
      fixed(r.otherMs, 1),
    ];
    if (simulated) cells.push(fixed(r.overheadMs, 1));
    if (peerName) {
      if (r.peer?.skipped) cells.push("skipped");
      else if (peerName === "gloo") cells.push(fixed(r.peer?.ms, 1));
      else cells.push(fixed(r.peer?.imagesPerSec, 0), fixed(r.peerEfficiency));
    }
    return cells;
  });
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i])).join("  ");
  const kind = labels.strong
    ? "strong scaling (fixed global batch)"
    : "weak scaling (batch per worker fixed)";
  const what = simulated
    ? `SIMULATED compute: workers do no math and answer after ${labels.stepMs} ms per step; this measures ` +
      `the coordinator and the network only (overhead = step ms - ${labels.stepMs})`
    : "real compute";
  const lines = [
    `${labels.model}, ${kind}, ${what}, wire ${labels.wire}${labels.balance ? ", --balance" : ""}` +
    (labels.sharedMemory === "off" ? ", sockets only (--shared-memory off)" : ""),
    "breakdown columns: medians per step in ms (D + G phases); network = waiting for results beyond compute",
    line(head),
    ...body.map(line),
  ];
  const skipped = rows.find((r) => r.peer?.skipped)?.peer?.skipped;
  if (skipped) lines.push(`PyTorch peer skipped: ${skipped}`);
  return lines.join("\n");
}
