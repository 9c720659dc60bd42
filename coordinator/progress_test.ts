import { assert, assertEquals } from "../shared/testing.ts";
import { ProgressLine, type ProgressOutput, type ProgressSnapshot } from "./progress.ts";

/** A terminal (or a pipe) that keeps what was written. */
function capture(isTTY: boolean): ProgressOutput & { text: () => string } {
  let text = "";
  return { isTTY, columns: 200, write: (s) => void (text += s), text: () => text };
}

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]|\x1b[78]/g;

/** What a terminal shows: each line's last redraw, escape sequences removed. */
function screen(raw: string): string[] {
  return raw.split("\n").map((line) =>
    line.split("\r").map((s) => s.replace(ANSI, "")).filter((s) => s).pop() ?? ""
  )
    .filter((line) => line !== "");
}

function snapshot(step: number, stepsPerEpoch: number, totalSteps: number): ProgressSnapshot {
  return {
    epoch: Math.ceil(step / stepsPerEpoch),
    epochs: Math.ceil(totalSteps / stepsPerEpoch),
    step,
    totalSteps,
    batchSize: 32,
    lossD: 0.5,
    lossG: 1.25,
    imagesPerSec: 64,
    workers: 2,
  };
}

Deno.test("on a TTY: one cli-progress bar per epoch, each left on screen with losses, images/s and ETA", () => {
  const out = capture(true);
  const progress = new ProgressLine({ mode: "auto", intervalMs: 10_000, stepsPerEpoch: 4, output: out });
  try {
    for (let step = 1; step <= 8; step++) progress.update(snapshot(step, 4, 8), step % 4 === 0);
  } finally {
    progress.close();
  }
  const lines = screen(out.text());
  assertEquals(lines.length, 2, `one line per epoch: ${JSON.stringify(lines)}`);
  assert(lines[0].startsWith("epoch 1/2 |"), lines[0]);
  assert(lines[1].startsWith("epoch 2/2 |"), lines[1]);
  for (const line of lines) {
    assert(line.includes("| 4/4 |"), `a finished epoch shows all its steps: ${line}`);
    assert(line.includes("lossD 0.5000 lossG 1.2500"), line);
    assert(line.includes("64.0 img/s"), line);
    assert(/ETA \d\d:\d\d, run \d\d:\d\d/.test(line), line);
  }
  // Epoch 1's bar ends with 4 steps left in the run: 4 * 32 images at 64 images/s.
  assert(lines[0].includes("ETA 00:00, run 00:02"), lines[0]);
});

Deno.test("on a TTY: a log line clears the bar's line first, and the bar is redrawn after it", async () => {
  const out = capture(true);
  const progress = new ProgressLine({ mode: "bar", intervalMs: 10_000, stepsPerEpoch: 10, output: out });
  try {
    progress.update(snapshot(1, 10, 20));
    const before = out.text().length;
    progress.breakLine();
    assertEquals(out.text().slice(before), "\r\x1b[2K");
    out.write("a log line\n");
    // cli-progress redraws on its own timer (10 per second); wait for it, bounded.
    const deadline = Date.now() + 5000;
    while (!screen(out.text()).at(-1)?.startsWith("epoch 1/2") && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assertEquals(screen(out.text()).slice(-2).map((l) => l.slice(0, 10)), ["a log line", "epoch 1/2 "]);
  } finally {
    progress.close();
  }
});

Deno.test("off a TTY: plain lines, the first at once, then at most one per interval, and each epoch's end", () => {
  const out = capture(false);
  const progress = new ProgressLine({ mode: "auto", intervalMs: 60_000, stepsPerEpoch: 4, output: out });
  for (let step = 1; step <= 8; step++) progress.update(snapshot(step, 4, 8), step % 4 === 0);
  progress.close();
  const lines = out.text().trimEnd().split("\n");
  assertEquals(lines.map((l) => l.split(" lossD")[0]), [
    "epoch 1/2 step 1/8",
    "epoch 1/2 step 4/8",
    "epoch 2/2 step 8/8",
  ]);
  // deno-lint-ignore no-control-regex
  assert(lines.every((l) => !/[\x1b\r]/.test(l)), "no escape sequences in a log");
  assert(lines[0].includes("64.0 img/s ETA 00:04 workers 2"), lines[0]);
});

Deno.test("--progress none prints nothing", () => {
  const out = capture(true);
  const progress = new ProgressLine({ mode: "none", intervalMs: 10, stepsPerEpoch: 4, output: out });
  for (let step = 1; step <= 4; step++) progress.update(snapshot(step, 4, 4), step === 4);
  progress.close();
  assertEquals(out.text(), "");
});
