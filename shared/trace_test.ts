import { assert, assertEquals } from "./testing.ts";
import { nowUs, SpanLog, Trace } from "./trace.ts";

Deno.test("Trace.write() makes a Chrome trace: JSON with traceEvents of ph/ts/dur/pid/tid", async () => {
  const trace = new Trace();
  trace.nameProcess(0, "coordinator");
  const spans = new SpanLog(true);
  spans.time("compute D", () => {
    let x = 0;
    for (let i = 0; i < 1e5; i++) x += i;
    return x;
  });
  trace.addSpans(spans.take(), 1);
  await trace.time("D wait", 0, () => new Promise((r) => setTimeout(r, 5)));
  const dir = await Deno.makeTempDir();
  try {
    await trace.write(`${dir}/trace.json`);
    const parsed = JSON.parse(await Deno.readTextFile(`${dir}/trace.json`));
    const events = parsed.traceEvents as Array<Record<string, unknown>>;
    assertEquals(events.length, 3);
    for (const e of events) {
      for (const key of ["ph", "ts", "pid", "tid", "name"]) {
        assert(key in e, `${key} in ${JSON.stringify(e)}`);
      }
    }
    const complete = events.filter((e) => e.ph === "X");
    assertEquals(complete.map((e) => e.name), ["compute D", "D wait"]);
    assert(complete.every((e) => typeof e.dur === "number" && (e.dur as number) >= 0), "durations");
    const wait = complete[1];
    assert((wait.dur as number) >= 4000, `the 5 ms wait lasted ${wait.dur} µs`);
    assert(Math.abs((wait.ts as number) - nowUs()) < 60e6, "wall-clock µs");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SpanLog records nothing when disabled, and keeps at most its limit", () => {
  const off = new SpanLog(false);
  assertEquals(off.time("x", () => 7), 7);
  assertEquals(off.take(), []);
  const on = new SpanLog(true, 3);
  for (let i = 0; i < 5; i++) on.add(`s${i}`, i, 1);
  assertEquals(on.take().map((s) => s[0]), ["s2", "s3", "s4"]);
  assertEquals(on.take(), []);
});
