/** Prints the README's flags table from the option table, so the two cannot drift apart. */
import { OPTIONS, type OptionSpec } from "../config/options.ts";

export function flagsTable(): string {
  const rows = ["| flag | roles | default | meaning |", "| --- | --- | --- | --- |"];
  for (const spec of Object.values(OPTIONS) as OptionSpec[]) {
    const values = spec.kind.type === "enum" ? ` (${spec.kind.values.join(", ")})` : "";
    const def = spec.default === undefined ? "" : `\`${spec.default}\``;
    rows.push(`| \`--${spec.flag}\` | ${spec.roles.join(", ")} | ${def} | ${spec.help}${values} |`);
  }
  return rows.join("\n");
}

if (import.meta.main) console.log(flagsTable());
