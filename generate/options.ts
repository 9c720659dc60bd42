/**
 * The flags of `deno task generate`. This tool is not a training role, so it has its own small table here
 * rather than a place in config/options.ts; errors follow the same shape: GantryError("E_CONFIG") naming
 * the flag and the value at fault.
 */
import { configError, flagError as fail, integerFlag, parseToolFlags } from "../config/tool_flags.ts";
import { NUM_CLASSES } from "../shared/models/specs.ts";

/** Samples per row when --count is absent: a 10x10 grid like the run's own sample grids. */
export const DEFAULT_COUNT = 10;
/** Bounds on the grid's size, so that a typo cannot ask for a gigapixel PNG. */
export const MAX_COUNT = 100;
export const MAX_LABELS = 100;
/** Seeds are 32-bit: `Rng` keeps only the low 32 bits of the number it is given. */
export const MAX_SEED = 2 ** 32 - 1;
const PNG_EXTENSION = ".png";
const ALL_LABELS: readonly number[] = Array.from({ length: NUM_CLASSES }, (_, i) => i);

export interface GenerateOptions {
  /** The run folder, whose checkpoints/ holds the checkpoints. */
  checkpoint: string;
  /** The step of the checkpoint to load; absent: the latest. */
  step?: number;
  /** One grid row per entry, in order; repeats allowed. */
  labels: number[];
  /** Samples per row (grid columns). */
  count: number;
  /** Seed of the noise; absent: the caller draws one and prints it. */
  seed?: number;
  /** Where to write the PNG. */
  out: string;
}

export const GENERATE_USAGE = `Usage: deno task generate --checkpoint RUN_DIR --out FILE.png [flags]

Draws a grid of digits from a run's generator: one row per label, --count samples per row. Column c uses
noise vector c in every row, so a column keeps its style across labels.

  --checkpoint RUN_DIR  run folder to load the generator from (required)
  --step N              load checkpoints/step-N instead of the latest one
  --labels L,L,...      labels of the rows, digits 0-${NUM_CLASSES - 1} (default: ${ALL_LABELS.join(",")})
  --count N             samples per row, 1-${MAX_COUNT} (default: ${DEFAULT_COUNT})
  --seed S              seed of the noise, 0-${MAX_SEED} (default: random, printed)
  --out FILE.png        PNG file to write (required)
  --help                show this text`;

const FLAGS = {
  checkpoint: { type: "string" },
  step: { type: "string" },
  labels: { type: "string" },
  count: { type: "string" },
  seed: { type: "string" },
  out: { type: "string" },
  help: { type: "boolean" },
} as const;

function labelsFlag(raw: string): number[] {
  const parts = raw.split(",").map((p) => p.trim());
  const digit = new RegExp(`^[0-${NUM_CLASSES - 1}]$`);
  if (parts.some((p) => !digit.test(p))) {
    throw fail("labels", `must list digits 0-${NUM_CLASSES - 1}, separated by commas`, raw);
  }
  if (parts.length > MAX_LABELS) throw fail("labels", `must list at most ${MAX_LABELS} labels`, raw);
  return parts.map(Number);
}

function requiredFlag(flag: string, value: string | undefined, meaning: string): string {
  if (value === undefined) throw configError(`--${flag} is required: ${meaning} (see --help)`);
  if (value === "") throw fail(flag, "must not be empty", value);
  return value;
}

/** Parses the flags; returns "help" for --help, or throws GantryError("E_CONFIG") naming the bad flag. */
export function parseGenerateArgs(args: string[]): GenerateOptions | "help" {
  const values = parseToolFlags(args, FLAGS);
  if (values.help) return "help";
  const checkpoint = requiredFlag(
    "checkpoint",
    values.checkpoint,
    "the run folder to load the generator from",
  );
  const out = requiredFlag("out", values.out, "the PNG file to write");
  if (!out.toLowerCase().endsWith(PNG_EXTENSION)) throw fail("out", "must name a .png file", out);
  return {
    checkpoint,
    step: values.step === undefined
      ? undefined
      : integerFlag("step", values.step, 0, Number.MAX_SAFE_INTEGER),
    labels: values.labels === undefined ? [...ALL_LABELS] : labelsFlag(values.labels),
    count: values.count === undefined ? DEFAULT_COUNT : integerFlag("count", values.count, 1, MAX_COUNT),
    seed: values.seed === undefined ? undefined : integerFlag("seed", values.seed, 0, MAX_SEED),
    out,
  };
}
