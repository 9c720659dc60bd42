/**
 * `--resume RUN_DIR`: the run's saved configuration, with what was given again on the command line on top,
 * and the latest checkpoint to continue from. Options that fix what the run computes cannot change.
 */
import type { Config } from "../config/config.ts";
import { loadConfig, parseFlags, readConfigFile } from "../config/load.ts";
import { type OptionKey, OPTIONS } from "../config/options.ts";
import { errorMessage, GantryError } from "../shared/errors.ts";
import { join } from "node:path";
import { latestCheckpointDir } from "./checkpoint.ts";
import { pathExists } from "../shared/files.ts";

/** Changing one of these would make the continued run a different run. */
const FIXED_ON_RESUME: OptionKey[] = [
  "model",
  "latentDim",
  "dataset",
  "data",
  "examples",
  "seed",
  "batchSize",
];

export interface ResumePlan {
  config: Config & { seed: number };
  /** null: the run was stopped before its first checkpoint was whole, so it starts over from step 0. */
  checkpointDir: string | null;
}

/** The configuration record in a JSON file (`config.json`, or a checkpoint's `state.json`). */
async function savedConfig(
  path: string,
  pick: (json: Record<string, unknown>) => unknown,
): Promise<Partial<Config>> {
  try {
    return pick(JSON.parse(await Deno.readTextFile(path))) as Partial<Config>;
  } catch (error) {
    throw new GantryError(
      "E_CONFIG",
      `--resume: ${path} holds no readable configuration: ${errorMessage(error)}`,
    );
  }
}

export async function planResume(
  runDir: string,
  args: string[],
  log: (line: string) => void,
): Promise<ResumePlan> {
  const latest = join(runDir, "checkpoints", "latest.json");
  const hasCheckpoint = await pathExists(latest);
  const checkpointDir = hasCheckpoint ? await latestCheckpointDir(join(runDir, "checkpoints")) : null;
  // The run's config.json is written before anything else, so a run killed before its first checkpoint
  // can still be started over with the same seed.
  const saved = checkpointDir
    ? await savedConfig(join(checkpointDir, "state.json"), (j) => (j.config as { config: unknown }).config)
    : await savedConfig(join(runDir, "config.json"), (j) => j.config);
  if (!checkpointDir) log(`--resume: ${runDir} has no whole checkpoint yet; starting it over from step 0`);
  const given = parseFlags("coordinator", args);
  const fromFile = typeof given.config === "string" ? readConfigFile(given.config, "coordinator") : {};
  for (const key of FIXED_ON_RESUME) {
    const value = given[key] ?? fromFile[key];
    if (value !== undefined && value !== saved[key as keyof Config]) {
      throw new GantryError(
        "E_CONFIG",
        `--${OPTIONS[key].flag} cannot change on --resume: the run in ${runDir} has ` +
          `${JSON.stringify(saved[key as keyof Config])}, current value is ${JSON.stringify(value)}`,
      );
    }
  }
  const config = loadConfig("coordinator", args, { ...saved, resume: runDir, out: runDir });
  return { config: config as Config & { seed: number }, checkpointDir };
}
