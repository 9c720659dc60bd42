/**
 * What every role's entry point does: `--help`, the configuration (exit 2 on a bad flag or file, with the
 * message naming it), then the role itself, whose result is the exit code.
 */
import { errorMessage, GantryError } from "../shared/errors.ts";
import type { Config } from "./config.ts";
import { helpText, loadConfig } from "./load.ts";
import type { Role } from "./options.ts";

export async function runMain(role: Role, run: (config: Config) => Promise<number>): Promise<never> {
  if (Deno.args.includes("--help")) {
    console.log(helpText(role));
    Deno.exit(0);
  }
  let config: Config;
  try {
    config = loadConfig(role, Deno.args);
  } catch (error) {
    console.error(`gantry ${role}: ${errorMessage(error)}`);
    Deno.exit(2);
  }
  try {
    Deno.exit(await run(config));
  } catch (error) {
    console.error(`gantry ${role}: ${errorMessage(error)}`);
    // A configuration that turns out bad only once the role reads it (--resume's folder) is still exit 2.
    Deno.exit(error instanceof GantryError && error.code === "E_CONFIG" ? 2 : 1);
  }
}
