import { assertEquals } from "../shared/testing.ts";
import { COORDINATOR_PERMISSIONS, WORKER_PERMISSIONS } from "./permissions.ts";

async function taskPermissions(task: string): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  return (config.tasks[task] as string).split(/\s+/).filter((word) => word.startsWith("--allow-"));
}

Deno.test("deno task coordinator and worker run with the permissions the launcher gives its children", async () => {
  assertEquals(await taskPermissions("coordinator"), COORDINATOR_PERMISSIONS);
  assertEquals(await taskPermissions("worker"), WORKER_PERMISSIONS);
});
