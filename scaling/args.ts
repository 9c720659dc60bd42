/**
 * The flags of `deno task scaling`. The tool is not a role of gantry (it starts `deno task train` runs), so
 * its flags live here; those it forwards (--wire, --shared-memory, --balance, --compute, --step-ms, --backend) are gantry's
 * own and are checked again by the runs.
 */
import { GantryError } from "../shared/errors.ts";

export interface ScalingArgs {
  workers: number[];
  model: "cdcgan" | "mlp";
  batchPerWorker: number;
  steps: number;
  /** Steps left out of the statistics at the start of each run (JIT warm-up, first weights). */
  warmup: number;
  strong: boolean;
  compute: "real" | "simulated";
  stepMs: number;
  wire: "float32" | "float16";
  /** gantry's --shared-memory: off measures the sockets that workers on other machines would use. */
  sharedMemory: "auto" | "off";
  balance: boolean;
  backend: string;
  threads: number;
  out: string;
  /** Write a Chrome trace of each run as OUT/trace-<N>w.json. */
  trace: boolean;
  /** Run the PyTorch peers (gloo all_reduce, or DDP for real compute) beside each count. */
  peers: boolean;
  python: string;
  peersDir: string;
  runTimeoutMs: number;
  /** Runs of each worker count, interleaved; the report takes their medians. */
  repeat: number;
}

export const SCALING_HELP = `usage: deno task scaling [flags]
  --workers 1,2,4            worker counts, one short training each
  --model cdcgan|mlp         [default: cdcgan]
  --batch-per-worker N       examples per worker per step [default: 64]
  --steps N                  steps per run [default: 30]
  --warmup N                 first steps left out of the statistics [default: min(3, steps/3)]
  --strong                   strong scaling: the global batch stays batch-per-worker x the smallest count
  --compute real|simulated   simulated: workers skip the math and answer after --step-ms [default: real]
  --step-ms MS               simulated compute time per step [default: 5]
  --wire float32|float16     gantry's --wire [default: float32]
  --shared-memory auto|off   gantry's --shared-memory; off: everything through sockets, as for workers on
                             other machines [default: auto]
  --balance                  gantry's --balance
  --backend NAME             workers' backend (auto|tensorflow|wasm|cpu) [default: auto]
  --threads N                compute threads per worker [default: 1, as the PyTorch peers]
  --out DIR                  scaling.csv, scaling.png/.svg and each run's folder [required]
  --trace                    also write DIR/trace-<N>w.json (chrome://tracing, Perfetto) for each run
  --peers                    beside each count, PyTorch on the same machine: gloo all_reduce of a
                             gradient-sized tensor (simulated) or DDP training (real)
  --python PATH              python with torch, for --peers [default: python3]
  --peers-dir DIR            folder of torch_cgan.py [default: ../shared/peers]
  --run-timeout-ms MS        longest one run may take [default: 900000]
  --repeat N                 runs of each count, interleaved (1, 2, 4, 1, 2, 4, ...); the table gives
                             their medians: this machine's speed drifts by 10% over minutes [default: 1]`;

function bad(flag: string, message: string): GantryError {
  return new GantryError("E_CONFIG", `--${flag}: ${message}`);
}

function integer(flag: string, text: string, min: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) throw bad(flag, `must be an integer >= ${min}, got "${text}"`);
  return n;
}

export function parseScalingArgs(argv: string[]): ScalingArgs {
  const values = new Map<string, string>();
  const flags = new Set<string>();
  const booleans = new Set(["strong", "balance", "trace", "peers"]);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith("--")) throw new GantryError("E_CONFIG", `unexpected argument "${arg}"`);
    const [name, inline] = arg.slice(2).split(/=(.*)/s, 2);
    if (booleans.has(name)) {
      if (inline !== undefined && inline !== "true" && inline !== "false") {
        throw bad(name, `is a switch (true|false), got "${inline}"`);
      }
      if (inline !== "false") flags.add(name);
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw bad(name, "needs a value");
    values.set(name, value);
  }
  const known = new Set([
    "workers",
    "model",
    "batch-per-worker",
    "steps",
    "warmup",
    "compute",
    "step-ms",
    "wire",
    "shared-memory",
    "backend",
    "threads",
    "out",
    "python",
    "peers-dir",
    "run-timeout-ms",
    "repeat",
  ]);
  for (const name of values.keys()) {
    if (!known.has(name)) throw new GantryError("E_CONFIG", `unknown flag --${name}; see --help`);
  }
  const get = (name: string, fallback: string) => values.get(name) ?? fallback;
  const workers = get("workers", "1,2").split(",").map((w) => integer("workers", w.trim(), 1));
  const oneOf = <T extends string>(name: string, fallback: T, allowed: readonly T[]): T => {
    const v = get(name, fallback) as T;
    if (!allowed.includes(v)) throw bad(name, `must be one of ${allowed.join("|")}, got "${v}"`);
    return v;
  };
  const steps = integer("steps", get("steps", "30"), 1);
  const warmup = integer("warmup", get("warmup", String(Math.min(3, Math.floor(steps / 3)))), 0);
  if (warmup >= steps) throw bad("warmup", `must be below --steps ${steps}`);
  const stepMs = Number(get("step-ms", "5"));
  if (!(stepMs >= 0)) throw bad("step-ms", `must be a number >= 0, got "${get("step-ms", "5")}"`);
  const out = values.get("out");
  if (!out) throw bad("out", "is required: the folder for scaling.csv and the plot");
  return {
    workers: [...new Set(workers)].sort((a, b) => a - b),
    model: oneOf("model", "cdcgan", ["cdcgan", "mlp"] as const),
    batchPerWorker: integer("batch-per-worker", get("batch-per-worker", "64"), 1),
    steps,
    warmup,
    strong: flags.has("strong"),
    compute: oneOf("compute", "real", ["real", "simulated"] as const),
    stepMs,
    wire: oneOf("wire", "float32", ["float32", "float16"] as const),
    sharedMemory: oneOf("shared-memory", "auto", ["auto", "off"] as const),
    balance: flags.has("balance"),
    backend: oneOf("backend", "auto", ["auto", "tensorflow", "wasm", "cpu"]),
    threads: integer("threads", get("threads", "1"), 1),
    out,
    trace: flags.has("trace"),
    peers: flags.has("peers"),
    python: get("python", "python3"),
    peersDir: get("peers-dir", new URL("../../shared/peers", import.meta.url).pathname),
    runTimeoutMs: integer("run-timeout-ms", get("run-timeout-ms", "900000"), 1000),
    repeat: integer("repeat", get("repeat", "1"), 1),
  };
}

/** The global batch of a run with `n` workers. */
export function globalBatch(args: ScalingArgs, n: number): number {
  return args.batchPerWorker * (args.strong ? args.workers[0] : n);
}
