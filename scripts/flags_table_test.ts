import { assertEquals } from "../shared/testing.ts";
import { flagsTable } from "./flags_table.ts";

/** Table rows with the padding that deno fmt adds folded away. */
function rows(markdown: string): string[] {
  return markdown.split("\n")
    .filter((l) => l.startsWith("| `--") || l.startsWith("| flag"))
    .map((l) => l.replace(/\s+/g, " ").trim());
}

Deno.test("the README's flags table is the option table (regenerate: deno run scripts/flags_table.ts)", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  assertEquals(rows(readme), rows(flagsTable()));
});
