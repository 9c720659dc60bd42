/**
 * `deno task generate`: draws a grid of digits from a run's generator checkpoint into a PNG. Exit codes:
 * 0 done, 1 the checkpoint could not be read or the PNG not written, 2 a bad flag (the message names it).
 */
import "@tensorflow/tfjs-backend-cpu";
import * as tf from "@tensorflow/tfjs-core";
import { dirname } from "node:path";
import { errorMessage, GantryError } from "../shared/errors.ts";
import { encodeGridPng } from "../shared/images/grid.ts";
import { loadGenerator } from "./load_generator.ts";
import { GENERATE_USAGE, type GenerateOptions, MAX_SEED, parseGenerateArgs } from "./options.ts";
import { drawNoise, generateGrid } from "./sample.ts";

const EXIT_OK = 0;
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;
const PREFIX = "gantry generate:";

/** Loads the generator, draws the grid and writes it; returns the path written. */
export async function generate(options: GenerateOptions, log: (line: string) => void): Promise<string> {
  // A few hundred forward passes at most: the cpu backend serves everywhere, and PROD mode keeps tfjs's
  // advice to install tfjs-node (meant for compute-heavy code) off the terminal.
  tf.env().set("PROD", true);
  await tf.setBackend("cpu");
  const { model, checkpointDir, latentDim } = await loadGenerator(options.checkpoint, options.step);
  try {
    // Drawn once the checkpoint is found, so that a failed run prints no seed of a grid never drawn.
    const seed = options.seed ?? Math.floor(Math.random() * (MAX_SEED + 1));
    if (options.seed === undefined) {
      log(`${PREFIX} seed ${seed} (random; --seed ${seed} draws this grid again)`);
    }
    const images = generateGrid(model, options.labels, drawNoise(seed, options.count, latentDim), latentDim);
    const png = encodeGridPng(images, { rows: options.labels.length, cols: options.count });
    await Deno.mkdir(dirname(options.out), { recursive: true });
    await Deno.writeFile(options.out, png);
    log(
      `${PREFIX} ${options.out}: labels ${options.labels.join(",")} x ${options.count} samples ` +
        `from ${checkpointDir} (${model.name}, seed ${seed})`,
    );
    return options.out;
  } finally {
    model.dispose();
  }
}

/** The command line's entry: parses `args`, runs, and returns the exit code; errors go to stderr. */
export async function main(args: string[]): Promise<number> {
  let options: GenerateOptions | "help";
  try {
    options = parseGenerateArgs(args);
  } catch (error) {
    console.error(`${PREFIX} ${errorMessage(error)}`);
    return EXIT_USAGE;
  }
  if (options === "help") {
    console.log(GENERATE_USAGE);
    return EXIT_OK;
  }
  try {
    await generate(options, (line) => console.log(line));
    return EXIT_OK;
  } catch (error) {
    console.error(`${PREFIX} ${errorMessage(error)}`);
    // A run folder or step that is not there is a wrong flag too (load_generator.ts says which).
    return error instanceof GantryError && error.code === "E_CONFIG" ? EXIT_USAGE : EXIT_FAILED;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
