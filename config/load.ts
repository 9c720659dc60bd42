import { parseArgs } from "node:util";
import { GantryError } from "../shared/errors.ts";
import type { Config } from "./config.ts";
import { type OptionKey, OPTIONS, type OptionSpec, type Role } from "./options.ts";

const KEYS = Object.keys(OPTIONS) as OptionKey[];
const KEY_BY_FLAG = new Map<string, OptionKey>(KEYS.map((k) => [OPTIONS[k].flag, k]));

function configError(message: string): GantryError {
  return new GantryError("E_CONFIG", message);
}

/** Converts one raw value (a flag's string or a config file's JSON value) to the option's type, or throws. */
function convert(key: OptionKey, raw: unknown, where: string): unknown {
  const spec: OptionSpec = OPTIONS[key];
  const kind = spec.kind;
  const show = JSON.stringify(raw);
  const fail = (what: string) => configError(`${where} ${what}: current value is ${show}`);
  switch (kind.type) {
    case "string":
      if (typeof raw !== "string" || raw === "") throw fail("must be a non-empty string");
      return raw;
    case "boolean":
      if (typeof raw === "boolean") return raw;
      if (raw === "true" || raw === "false") return raw === "true";
      throw fail("must be true or false");
    case "enum":
      if (typeof raw !== "string" || !kind.values.includes(raw)) {
        throw fail(`must be one of ${kind.values.join(", ")}`);
      }
      return raw;
    case "integer":
    case "number": {
      const n = typeof raw === "number"
        ? raw
        : typeof raw === "string" && raw.trim() !== ""
        ? Number(raw)
        : NaN;
      if (!Number.isFinite(n)) throw fail("must be a number");
      if (kind.type === "integer" && !Number.isInteger(n)) throw fail("must be an integer");
      if (kind.min !== undefined) {
        const exclusive = kind.type === "number" && kind.exclusiveMin;
        if (exclusive ? n <= kind.min : n < kind.min) {
          throw fail(`must be ${exclusive ? ">" : ">="} ${kind.min}`);
        }
      }
      if (kind.max !== undefined && n > kind.max) throw fail(`must be <= ${kind.max}`);
      return n;
    }
  }
}

/**
 * Bare boolean flags (`--strong`) and `--no-x` become `--x=true|false`, so every option can be a string, and
 * `--flag -3` becomes `--flag=-3`.
 */
function normalizeBooleanFlags(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const negated = arg.startsWith("--no-") ? KEY_BY_FLAG.get(arg.slice(5)) : undefined;
    if (negated && (OPTIONS[negated] as OptionSpec).kind.type === "boolean") {
      out.push(`--${OPTIONS[negated].flag}=false`);
      continue;
    }
    const key = arg.startsWith("--") && !arg.includes("=") ? KEY_BY_FLAG.get(arg.slice(2)) : undefined;
    const next = args[i + 1];
    if (
      key && (OPTIONS[key] as OptionSpec).kind.type === "boolean" &&
      (next === undefined || next.startsWith("--"))
    ) {
      out.push(`${arg}=true`);
      continue;
    }
    // parseArgs reads "-3" after a flag as another flag; a negative number here is the flag's value.
    if (key && next !== undefined && /^-\d/.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
      continue;
    }
    out.push(arg);
  }
  return out;
}

/** Reads the flags a role accepts; unknown flags and flags of other roles are errors naming the flag. */
export function parseFlags(role: Role, args: string[]): Partial<Record<OptionKey, unknown>> {
  const options = Object.fromEntries(KEYS.map((k) => [OPTIONS[k].flag, { type: "string" as const }]));
  let parsed;
  try {
    parsed = parseArgs({ args: normalizeBooleanFlags(args), options, strict: true, allowPositionals: false });
  } catch (error) {
    throw configError(`${(error as Error).message} (see --help)`);
  }
  const result: Partial<Record<OptionKey, unknown>> = {};
  for (const [flag, raw] of Object.entries(parsed.values)) {
    const key = KEY_BY_FLAG.get(flag)!;
    const spec: OptionSpec = OPTIONS[key];
    if (!spec.roles.includes(role)) {
      throw configError(`--${flag} is not an option of the ${role} (it is for: ${spec.roles.join(", ")})`);
    }
    result[key] = convert(key, raw, `--${flag}`);
  }
  return result;
}

/** Reads a JSON config file; keys are the config's field names (`batchSize`) or flag names (`batch-size`). */
export function readConfigFile(path: string, role: Role): Partial<Record<OptionKey, unknown>> {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (error) {
    throw configError(`--config ${path}: cannot read it: ${(error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw configError(`--config ${path}: not valid JSON: ${(error as Error).message}`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw configError(`--config ${path}: must hold a JSON object of options`);
  }
  const result: Partial<Record<OptionKey, unknown>> = {};
  for (const [name, raw] of Object.entries(json)) {
    const key = (name in OPTIONS ? name : KEY_BY_FLAG.get(name)) as OptionKey | undefined;
    if (!key || key === "config") throw configError(`--config ${path}: unknown option "${name}"`);
    // A file may hold options of every role (one file for a whole run); each role takes its own.
    if (!(OPTIONS[key] as OptionSpec).roles.includes(role)) continue;
    result[key] = convert(key, raw, `${path}: "${name}"`);
  }
  return result;
}

export function defaults(role: Role): Partial<Record<OptionKey, unknown>> {
  const result: Partial<Record<OptionKey, unknown>> = {};
  for (const key of KEYS) {
    const spec: OptionSpec = OPTIONS[key];
    if (spec.default !== undefined && spec.roles.includes(role)) result[key] = spec.default;
  }
  return result;
}

/** Cross-option checks that a single option's bounds cannot express. */
function validate(config: Config): void {
  if (config.heartbeatTimeoutMs <= config.heartbeatIntervalMs) {
    throw configError(
      `--heartbeat-timeout-ms must be greater than --heartbeat-interval-ms: current values are ` +
        `${config.heartbeatTimeoutMs} and ${config.heartbeatIntervalMs}`,
    );
  }
  if (config.host !== undefined && !isLoopback(config.host) && !config.token) {
    throw configError(
      `--host ${config.host} is reachable from other machines: set a shared secret with --token or the ` +
        `GANTRY_TOKEN environment variable (workers must present it), or listen on 127.0.0.1`,
    );
  }
  if (config.minWorkers !== undefined && config.workers !== undefined && config.minWorkers > config.workers) {
    throw configError(
      `--min-workers must be <= --workers: current values are ${config.minWorkers} and ${config.workers}`,
    );
  }
  if (config.coordinator !== undefined && !/^wss?:\/\/[^/]+/.test(config.coordinator)) {
    throw configError(
      `--coordinator must be a ws:// or wss:// URL: current value is "${config.coordinator}"`,
    );
  }
}

/** Addresses only this machine can reach: listening there needs no token. */
export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** The token from GANTRY_TOKEN, so that it need not appear on command lines (ps shows those). */
function environment(role: Role): Partial<Config> {
  if (!OPTIONS.token.roles.includes(role)) return {};
  let token: string | undefined;
  try {
    token = Deno.env.get(TOKEN_VARIABLE);
  } catch {
    return {}; // no --allow-env: the flag is the only way in
  }
  return token ? { token } : {};
}

export const TOKEN_VARIABLE = "GANTRY_TOKEN";

/**
 * Set by `deno task train` for its workers: Ctrl-C in a terminal reaches every process of the group, but it is
 * the coordinator's to handle: it finishes the step in flight with its workers, checkpoints, then stops them.
 */
export const SUPERVISED_VARIABLE = "GANTRY_SUPERVISED";

/**
 * Builds a role's configuration from defaults < `base` < `--config FILE` < flags. `base` is a resumed run's
 * saved configuration, so that only what is given again overrides it.
 */
export function loadConfig(role: Role, args: string[], base: Partial<Config> = {}): Config {
  const flags = parseFlags(role, args);
  const file = typeof flags.config === "string" ? readConfigFile(flags.config, role) : {};
  const config = { ...defaults(role), ...environment(role), ...base, ...file, ...flags } as Config;
  validate(config);
  return config;
}

/**
 * The flags that give `config`'s values to another role, for the launcher: only options that role takes, and
 * only values other than the default, so that a resumed run sees just what was asked for again.
 */
export function toFlags(config: Partial<Config>, role: Role, omit: OptionKey[] = []): string[] {
  const args: string[] = [];
  for (const key of KEYS) {
    const value = config[key as keyof Config];
    const spec: OptionSpec = OPTIONS[key];
    if (value === undefined || value === spec.default || omit.includes(key) || key === "config") continue;
    if (!spec.roles.includes(role)) continue;
    args.push(`--${spec.flag}=${String(value)}`);
  }
  return args;
}

/** `--help` text: each flag of the role with its default and meaning. */
export function helpText(role: Role): string {
  const lines = [`usage: deno task ${role} [flags]`, ""];
  for (const key of KEYS) {
    const spec: OptionSpec = OPTIONS[key];
    if (!spec.roles.includes(role)) continue;
    const values = spec.kind.type === "enum" ? ` (${spec.kind.values.join("|")})` : "";
    const def = spec.default === undefined ? "" : ` [default: ${spec.default}]`;
    lines.push(`  --${spec.flag.padEnd(24)} ${spec.help}${values}${def}`);
  }
  return lines.join("\n");
}
