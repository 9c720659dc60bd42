/**
 * The PyTorch references, run on the same machine in the same session as gantry's runs: gloo's all_reduce
 * of a gradient-sized tensor (scaling/gloo_allreduce.py) for simulated compute, and DDP training of the same
 * model (the peers' torch_cgan.py) for real compute. Missing python or torch skips them, with the reason.
 */
import { join } from "node:path";
import type { PeerResult } from "./report.ts";

const GLOO_SCRIPT = new URL("./gloo_allreduce.py", import.meta.url).pathname;
const GLOO_REPS = 30;

async function python(
  exe: string,
  args: string[],
  timeoutMs: number,
): Promise<{ ok: boolean; text: string }> {
  try {
    const out = await new Deno.Command(exe, {
      args,
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(timeoutMs),
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    return { ok: out.success, text };
  } catch (error) {
    return { ok: false, text: (error as Error).message };
  }
}

function lastLines(text: string): string {
  return text.trim().split("\n").slice(-2).join(" | ");
}

/** Median ms of one all_reduce of `floats` float32 over `ranks` gloo processes on 127.0.0.1. */
export async function glooAllReduce(
  exe: string,
  ranks: number,
  floats: number,
  timeoutMs: number,
): Promise<PeerResult> {
  const { ok, text } = await python(
    exe,
    [GLOO_SCRIPT, String(ranks), String(floats), String(GLOO_REPS)],
    timeoutMs,
  );
  const match = text.match(/allreduce_ms ([\d.]+)/);
  if (!ok || !match) return { name: "gloo", skipped: `${exe} ${GLOO_SCRIPT} failed: ${lastLines(text)}` };
  return { name: "gloo", ms: Number(match[1]) };
}

/** Global images/s of PyTorch DDP (gloo) training `arch` with `world` processes of `batch` each. */
export async function ddpTraining(
  exe: string,
  peersDir: string,
  model: "cdcgan" | "mlp",
  batch: number,
  steps: number,
  world: number,
  timeoutMs: number,
): Promise<PeerResult> {
  const script = join(peersDir, "torch_cgan.py");
  const arch = model === "cdcgan" ? "dcgan" : "mlp";
  const { ok, text } = await python(
    exe,
    [script, arch, String(batch), String(steps), String(world)],
    timeoutMs,
  );
  const match = text.match(/img\/s ([\d.]+)/);
  if (!ok || !match) return { name: "ddp", skipped: `${exe} ${script} failed: ${lastLines(text)}` };
  return { name: "ddp", imagesPerSec: Number(match[1]) };
}
