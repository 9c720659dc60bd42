/**
 * Flag parsing for the tools that are not training roles (`deno task generate`, `evaluate`): each has its own
 * small flag table, and errors take the roles' shape, GantryError("E_CONFIG") naming the flag and the value.
 */
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { GantryError } from "../shared/errors.ts";

export function configError(message: string): GantryError {
  return new GantryError("E_CONFIG", message);
}

export function flagError(flag: string, what: string, raw: string): GantryError {
  return configError(`--${flag} ${what}: current value is ${JSON.stringify(raw)}`);
}

/** A decimal integer in [min, max]; only digits, so "1e3", "0x10" and "" are rejected rather than guessed. */
export function integerFlag(flag: string, raw: string, min: number, max: number): number {
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw flagError(flag, `must be an integer from ${min} to ${max}`, raw);
  }
  return n;
}

/**
 * `--flag -3` becomes `--flag=-3`: parseArgs would read "-3" as another flag and report an ambiguity, where
 * the useful message is the flag's own range check on the value.
 */
function joinNegativeValues(args: string[], flags: ParseArgsOptionsConfig): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const flag = args[i].startsWith("--") ? args[i].slice(2) : "";
    const next = args[i + 1];
    const takesValue = Object.hasOwn(flags, flag) && flags[flag].type === "string";
    if (takesValue && next !== undefined && /^-\d/.test(next)) {
      out.push(`${args[i]}=${next}`);
      i++;
    } else out.push(args[i]);
  }
  return out;
}

/** Parses `args` against `flags` strictly; a parse failure is an E_CONFIG error. */
export function parseToolFlags<T extends ParseArgsOptionsConfig>(args: string[], flags: T) {
  try {
    return parseArgs({
      args: joinNegativeValues(args, flags),
      options: flags,
      strict: true,
      allowPositionals: false,
    })
      .values;
  } catch (error) {
    throw configError(`${(error as Error).message} (see --help)`);
  }
}
