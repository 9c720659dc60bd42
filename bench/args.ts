/**
 * The flags of `deno task bench`. They describe a measurement, not a training run, so they live here rather
 * than in config/options.ts (whose table is the trainer's); bad values are rejected with the flag's name.
 */
import { parseArgs } from "node:util";
import type { BackendName } from "../shared/backends/select.ts";
import type { ModelName } from "../shared/models/types.ts";

export interface BenchArgs {
  model: ModelName;
  batchSize: number;
  /** Timed steps, after `warmup` untimed ones (first calls compile, allocate and pack weights). */
  steps: number;
  warmup: number;
  backend: BackendName;
  /** Compute threads (tensorflow's intra-op pool); unset: the backend's default. */
  threads?: number;
  /** Per-kernel times over `profileSteps` extra steps (profiling slows kernels down, so they are not timed). */
  profile: boolean;
  profileSteps: number;
  /** How many kernels the profile lists. */
  profileTop: number;
  /** Profile rows per kernel and input shapes rather than per kernel. */
  profileShapes: boolean;
  seed: number;
}

export const BENCH_HELP = `deno task bench [flags]: one worker's training step (no network), in images/s

  --model cdcgan|mlp        model of MODEL.md (default cdcgan)
  --batch-size N            images per step (default 64)
  --steps N                 timed steps (default 20)
  --warmup N                untimed steps first (default 3)
  --backend tensorflow|wasm|cpu   (default tensorflow)
  --threads N               compute threads (default: the backend's)
  --profile                 then per-kernel times over --profile-steps more steps
  --profile-steps N         (default 5)
  --profile-top N           kernels listed (default 15)
  --profile-shapes          one profile row per kernel and input shapes
  --seed N                  weights and data seed (default 1)`;

const MODELS: readonly ModelName[] = ["cdcgan", "mlp"];
const BACKENDS: readonly BackendName[] = ["tensorflow", "wasm", "cpu"];

function integer(flag: string, value: string | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) {
    throw new RangeError(`--${flag} must be an integer >= ${min}: current value is ${JSON.stringify(value)}`);
  }
  return n;
}

function choice<T extends string>(flag: string, value: string | undefined, fallback: T, of: readonly T[]): T {
  if (value === undefined) return fallback;
  if (!(of as readonly string[]).includes(value)) {
    throw new RangeError(
      `--${flag} must be one of ${of.join(", ")}: current value is ${JSON.stringify(value)}`,
    );
  }
  return value as T;
}

/** Parses the bench's flags; returns null for --help. Throws RangeError/TypeError naming the bad flag. */
export function parseBenchArgs(args: string[]): BenchArgs | null {
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      model: { type: "string" },
      "batch-size": { type: "string" },
      steps: { type: "string" },
      warmup: { type: "string" },
      backend: { type: "string" },
      threads: { type: "string" },
      profile: { type: "boolean" },
      "profile-steps": { type: "string" },
      "profile-top": { type: "string" },
      "profile-shapes": { type: "boolean" },
      seed: { type: "string" },
      help: { type: "boolean" },
    },
  });
  if (values.help) return null;
  return {
    model: choice("model", values.model, "cdcgan", MODELS),
    batchSize: integer("batch-size", values["batch-size"], 64, 1),
    steps: integer("steps", values.steps, 20, 1),
    warmup: integer("warmup", values.warmup, 3, 0),
    backend: choice("backend", values.backend, "tensorflow", BACKENDS),
    ...(values.threads === undefined ? {} : { threads: integer("threads", values.threads, 1, 1) }),
    profile: values.profile ?? false,
    profileSteps: integer("profile-steps", values["profile-steps"], 5, 1),
    profileTop: integer("profile-top", values["profile-top"], 15, 1),
    profileShapes: values["profile-shapes"] ?? false,
    seed: integer("seed", values.seed, 1, 0),
  };
}
