/** File helpers every role uses. */

/** Writes `bytes` beside `path` and renames it over, so a reader never sees half a file. */
export async function writeFileAtomic(path: string, bytes: Uint8Array | string): Promise<void> {
  const aside = `${path}.tmp-${Deno.pid}`;
  if (typeof bytes === "string") await Deno.writeTextFile(aside, bytes);
  else await Deno.writeFile(aside, bytes);
  await Deno.rename(aside, path);
}

/** Whether `path` exists; errors other than "not found" (permissions, say) are thrown. */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}
