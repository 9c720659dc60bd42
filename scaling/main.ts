/**
 * `deno task scaling`: one short `deno task train` run per worker count, then images/s, speed-up, efficiency
 * and the per-step breakdown as a table, DIR/scaling.csv and DIR/scaling.png; with --peers, PyTorch on the
 * same machine in the same session beside each count (gloo all_reduce for simulated compute, DDP for real).
 */
import { join } from "node:path";
import { errorMessage, GantryError } from "../shared/errors.ts";
import { writeFileAtomic } from "../shared/files.ts";
import { modelSpecs } from "../shared/models/specs.ts";
import { globalBatch, parseScalingArgs, SCALING_HELP, type ScalingArgs } from "./args.ts";
import { ddpTraining, glooAllReduce } from "./peers.ts";
import { writeScalingPlot } from "./plot.ts";
import {
  buildRows,
  combinePeers,
  combineRuns,
  type PeerResult,
  type RunSummary,
  type StepMetrics,
  summarizeRun,
  toCsv,
  toTable,
} from "./report.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const MNIST_TRAIN = 60000;
/** The latent size the runs use (gantry's default): only the gradient size for the gloo peer depends on it. */
const LATENT_DIM = 100;

/** One `deno task train` run with `n` workers; its output goes to DIR/runs/w<n>[-r<repeat>].log. */
async function trainRun(args: ScalingArgs, n: number, repeat: number): Promise<RunSummary> {
  const batch = globalBatch(args, n);
  const suffix = args.repeat > 1 ? `-r${repeat}` : "";
  const name = `w${n}${suffix}`;
  const dir = join(args.out, "runs", name);
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  const flags = [
    `--model=${args.model}`,
    `--workers=${n}`,
    `--batch-size=${batch}`,
    `--max-steps=${args.steps}`,
    // Enough examples that no epoch ends inside the run (an epoch end draws samples and plots).
    `--examples=${Math.min(MNIST_TRAIN, batch * (args.steps + 1))}`,
    "--seed=1",
    "--port=0",
    "--progress=none",
    "--dashboard=false",
    `--threads=${args.threads}`,
    `--backend=${args.backend}`,
    `--compute=${args.compute}`,
    `--step-ms=${args.stepMs}`,
    `--wire=${args.wire}`,
    `--shared-memory=${args.sharedMemory}`,
    `--balance=${args.balance}`,
    `--out=${dir}`,
    ...(args.trace ? [`--trace=${join(args.out, `trace-${n}w${suffix}.json`)}`] : []),
  ];
  const command = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      `--config=${join(ROOT, "deno.json")}`,
      "--allow-run",
      "--allow-read",
      "--allow-env",
      join(ROOT, "launcher/main.ts"),
      ...flags,
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
    signal: AbortSignal.timeout(args.runTimeoutMs),
  });
  const started = performance.now();
  const output = await command.output();
  const log = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
  await Deno.mkdir(join(args.out, "runs"), { recursive: true });
  await writeFileAtomic(join(args.out, "runs", `${name}.log`), log);
  if (!output.success) {
    throw new GantryError(
      "E_CLOSED",
      `the run with ${n} worker(s) failed (exit ${output.code}); see ${
        join(args.out, "runs", `${name}.log`)
      }:\n` +
        log.trim().split("\n").slice(-8).join("\n"),
    );
  }
  const text = await Deno.readTextFile(join(dir, "metrics.jsonl"));
  const metrics = text.trim().split("\n").map((l) => JSON.parse(l)).filter((m) =>
    m.type === undefined
  ) as StepMetrics[];
  const summary = summarizeRun(
    metrics,
    n,
    batch,
    args.warmup,
    args.compute === "simulated" ? args.stepMs : undefined,
  );
  console.log(
    `  ${n} worker(s): ${summary.stepMs.toFixed(1)} ms/step, ${summary.imagesPerSec.toFixed(0)} img/s ` +
      `(run took ${((performance.now() - started) / 1000).toFixed(1)} s)`,
  );
  return summary;
}

async function peerRun(args: ScalingArgs, n: number): Promise<PeerResult> {
  if (args.compute === "simulated") {
    const specs = modelSpecs(args.model, LATENT_DIM);
    const floats = specs.generator.trainableSize + specs.discriminator.trainableSize;
    return await glooAllReduce(args.python, n, floats, args.runTimeoutMs);
  }
  return await ddpTraining(
    args.python,
    args.peersDir,
    args.model,
    args.strong ? Math.max(1, Math.floor(globalBatch(args, n) / n)) : args.batchPerWorker,
    args.steps,
    n,
    args.runTimeoutMs,
  );
}

export async function runScaling(argv: string[]): Promise<number> {
  if (argv.includes("--help")) {
    console.log(SCALING_HELP);
    return 0;
  }
  let args: ScalingArgs;
  try {
    args = parseScalingArgs(argv);
  } catch (error) {
    console.error(`gantry scaling: ${errorMessage(error)}`);
    return 2;
  }
  await Deno.mkdir(args.out, { recursive: true });
  console.log(
    `scaling ${args.model} over ${args.workers.join(", ")} worker(s), ${args.steps} steps each ` +
      `(first ${args.warmup} not measured), ${args.compute} compute` +
      (args.compute === "simulated" ? ` of ${args.stepMs} ms per step` : ""),
  );
  const runsOf = new Map<number, RunSummary[]>(args.workers.map((n) => [n, []]));
  const peersOf = new Map<number, PeerResult[]>(args.workers.map((n) => [n, []]));
  try {
    for (let repeat = 1; repeat <= args.repeat; repeat++) {
      if (args.repeat > 1) console.log(`round ${repeat} of ${args.repeat}`);
      for (const n of args.workers) {
        runsOf.get(n)!.push(await trainRun(args, n, repeat));
        if (args.peers) {
          const peer = await peerRun(args, n);
          peersOf.get(n)!.push(peer);
          console.log(
            `  PyTorch ${peer.name}, ${n} process(es): ` +
              (peer.skipped ??
                (peer.ms !== undefined ? `${peer.ms.toFixed(2)} ms` : `${peer.imagesPerSec} img/s`)),
          );
        }
      }
    }
  } catch (error) {
    console.error(`gantry scaling: ${errorMessage(error)}`);
    return 1;
  }
  const runs = args.workers.map((n) => combineRuns(runsOf.get(n)!));
  const peers = new Map<number, PeerResult>(
    args.peers ? args.workers.map((n) => [n, combinePeers(peersOf.get(n)!)]) : [],
  );
  const rows = buildRows(runs, peers);
  const labels = {
    compute: args.compute,
    model: args.model,
    wire: args.wire,
    balance: args.balance,
    sharedMemory: args.sharedMemory,
  };
  console.log("");
  console.log(toTable(rows, { ...labels, stepMs: args.stepMs, strong: args.strong }));
  const csv = join(args.out, "scaling.csv");
  await writeFileAtomic(csv, toCsv(rows, labels));
  const title = `${args.model}, ${args.strong ? "strong" : "weak"} scaling, ` +
    (args.compute === "simulated" ? `SIMULATED ${args.stepMs} ms compute` : "real compute") +
    `, wire ${args.wire}` + (args.sharedMemory === "off" ? ", sockets only" : "");
  await writeScalingPlot(rows, title, join(args.out, "scaling"));
  console.log(`\n${csv}, ${join(args.out, "scaling.png")}`);
  return 0;
}

if (import.meta.main) Deno.exit(await runScaling(Deno.args));
