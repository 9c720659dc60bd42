/**
 * `deno run --allow-run --allow-read --allow-env --allow-sys bench/side_by_side.ts [--steps-scale X] [--cpu N]`: our
 * bench for both models on tensorflow and wasm, then the Keras and PyTorch peers of ../shared/peers, one
 * after another on the same core (taskset -c N, one thread each), and a table of images/s with the ratios.
 *
 * The machine is shared, so besides wall-clock images/s each run reports images per CPU-second of its own
 * process (all its threads, timed steps only), which moves much less with other people's load: ours from
 * the bench, the peers' from a second run with their timer switched to the process's CPU clock.
 *
 * Needs: /work/venv with tensorflow_cpu==2.21.0 (KERAS_PYTHON to override), Debian's python3-torch for
 * /usr/bin/python3 (TORCH_PYTHON), and taskset.
 */
import { parseArgs } from "node:util";

const PEERS_DIR = new URL("../../shared/peers/", import.meta.url).pathname;
const KERAS_PYTHON = Deno.env.get("KERAS_PYTHON") ?? "/work/venv/bin/python";
const TORCH_PYTHON = Deno.env.get("TORCH_PYTHON") ?? "/usr/bin/python3";
const BATCH = 64;
/** Timed steps per run at scale 1, chosen for ~5-20 s per run on one core. */
const STEPS = {
  cdcgan: { tensorflow: 40, wasm: 8, keras: 40, torch: 10 },
  mlp: { tensorflow: 200, wasm: 60, keras: 200, torch: 40 },
} as const;
/** The peers name the convolutional model "dcgan". */
const PEER_ARCH = { cdcgan: "dcgan", mlp: "mlp" } as const;

interface Measurement {
  imagesPerSecond: number;
  imagesPerCpuSecond: number;
  /** Ours only: the worker's part of the step alone (no coordinator Adam), images per CPU-second. */
  workerPerCpuSecond?: number;
}

async function run(command: string[], env: Record<string, string> = {}): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command(command[0], {
    args: command.slice(1),
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  if (code !== 0) throw new Error(`${command.join(" ")} exited with ${code}:\n${out.slice(-2000)}`);
  return out;
}

function number(text: string, pattern: RegExp, what: string): number {
  const match = text.match(pattern);
  if (!match) throw new Error(`no ${what} in output:\n${text.slice(-2000)}`);
  return Number(match[1]);
}

async function ours(cpu: number, model: "cdcgan" | "mlp", backend: "tensorflow" | "wasm", steps: number) {
  const out = await run([
    "taskset",
    "-c",
    String(cpu),
    "deno",
    "task",
    "bench",
    "--model",
    model,
    "--batch-size",
    String(BATCH),
    "--steps",
    String(steps),
    "--backend",
    backend,
    "--threads",
    "1",
  ]);
  return {
    imagesPerSecond: number(out, /^([\d.]+) img\/s$/m, "img/s"),
    imagesPerCpuSecond: number(out, /\(([\d.]+) img per CPU-second\)/, "img per CPU-second"),
    workerPerCpuSecond: number(out, /CPU :.*worker alone ([\d.]+) img\/s/, "worker alone"),
  };
}

/**
 * Runs a peer script as is, and once more with time.perf_counter replaced by time.process_time (the CPU
 * time of the whole process, every thread), so that the images/s it prints is then images per CPU-second.
 */
async function peer(cpu: number, python: string, script: string, arch: string, steps: number) {
  const args = [`${PEERS_DIR}${script}`, arch, String(BATCH), String(steps)];
  const env = { THREADS: "1", OMP_NUM_THREADS: "1" };
  const cpuClock = "import runpy, sys, time; time.perf_counter = time.process_time; " +
    "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')";
  const wall = await run(["taskset", "-c", String(cpu), python, ...args], env);
  const cpuTime = await run(["taskset", "-c", String(cpu), python, "-c", cpuClock, ...args], env);
  return {
    imagesPerSecond: number(wall, /img\/s ([\d.]+)/, "img/s"),
    imagesPerCpuSecond: number(cpuTime, /img\/s ([\d.]+)/, "img/s"),
  };
}

function loadAverage(): string {
  return Deno.loadavg().map((l) => l.toFixed(2)).join(" ");
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    strict: true,
    options: { "steps-scale": { type: "string" }, cpu: { type: "string" } },
  });
  const scale = Number(values["steps-scale"] ?? "1");
  const cpu = Number(values.cpu ?? "1");
  if (!(scale > 0) || !Number.isInteger(cpu) || cpu < 0) {
    throw new RangeError(`--steps-scale must be > 0 and --cpu an integer >= 0: got ${scale} and ${cpu}`);
  }
  const steps = (n: number) => Math.max(2, Math.round(n * scale));
  const format = (m: Measurement) => `${m.imagesPerSecond.toFixed(1)} (${m.imagesPerCpuSecond.toFixed(1)})`;
  const rows: string[] = [];
  for (const model of ["cdcgan", "mlp"] as const) {
    const s = STEPS[model];
    console.error(`${model}: load ${loadAverage()}`);
    const tensorflow = await ours(cpu, model, "tensorflow", steps(s.tensorflow));
    const wasm = await ours(cpu, model, "wasm", steps(s.wasm));
    const keras = await peer(cpu, KERAS_PYTHON, "keras_cgan.py", PEER_ARCH[model], steps(s.keras));
    const torch = await peer(cpu, TORCH_PYTHON, "torch_cgan.py", PEER_ARCH[model], steps(s.torch));
    const ratio = (a: Measurement, b: Measurement) =>
      `${(a.imagesPerSecond / b.imagesPerSecond).toFixed(2)} (${
        (a.imagesPerCpuSecond / b.imagesPerCpuSecond).toFixed(2)
      })`;
    const workerRatio = (a: Measurement, b: Measurement) =>
      `${a.workerPerCpuSecond!.toFixed(1)} (${(a.workerPerCpuSecond! / b.imagesPerCpuSecond).toFixed(2)})`;
    const cells = [
      model,
      format(tensorflow),
      format(keras),
      ratio(tensorflow, keras),
      workerRatio(tensorflow, keras),
      format(wasm),
      format(torch),
      ratio(wasm, torch),
      workerRatio(wasm, torch),
    ];
    rows.push(`| ${cells.join(" | ")} |`);
    console.error(`${model} done: load ${loadAverage()}`);
  }
  console.log(
    `img/s on one core (cpu ${cpu}), batch ${BATCH}; in parentheses: img per CPU-second of the process. ` +
      `"worker alone": our step without the coordinator's Adam, img per CPU-second (and ÷ the peer's).`,
  );
  const header = [
    "model",
    "ours, tensorflow",
    "Keras 3 / TF 2.21",
    "tensorflow ÷ Keras",
    "worker alone",
    "ours, wasm",
    "PyTorch 1.13",
    "wasm ÷ PyTorch",
    "worker alone",
  ];
  console.log(`| ${header.join(" | ")} |`);
  console.log(`|${header.map(() => "---").join("|")}|`);
  for (const row of rows) console.log(row);
}

await main();
