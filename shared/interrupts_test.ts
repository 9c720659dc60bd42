import { assertEquals } from "./testing.ts";
import { ONE_PRESS_MS, pressHandler } from "./interrupts.ts";

Deno.test("pressHandler() takes echoes of one press as one, and a later press as a second", async () => {
  const calls: string[] = [];
  const handle = pressHandler(() => calls.push("first"), () => calls.push("again"));
  handle();
  handle();
  handle();
  assertEquals(calls, ["first"]);
  await new Promise((r) => setTimeout(r, ONE_PRESS_MS + 50));
  handle();
  assertEquals(calls, ["first", "again"]);
});
