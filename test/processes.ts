/**
 * Real coordinator, worker and launcher processes for end-to-end tests, each bounded by a timeout after
 * which it is killed (and the test fails), with its output kept for the assertion messages.
 */
import { COORDINATOR_PERMISSIONS, WORKER_PERMISSIONS } from "../launcher/permissions.ts";
import { assert, assertEquals } from "../shared/testing.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const CONFIG = `--config=${ROOT}deno.json`;
const LISTENING = /gantry coordinator listening on (ws:\/\/\S+)/;

export interface Proc {
  name: string;
  child: Deno.ChildProcess;
  /** Everything printed so far, stdout and stderr interleaved by line. */
  output: () => string;
  /** Exit code; kills the process and throws when it has not exited within `timeoutMs`. */
  exit: (timeoutMs: number) => Promise<number>;
  /** Resolves with the first match of `pattern` in the output; throws after `timeoutMs` or on exit. */
  waitFor: (pattern: RegExp, timeoutMs: number) => Promise<RegExpMatchArray>;
  kill: (signal?: Deno.Signal) => void;
}

/**
 * Starts `deno <args>`. With `ownGroup`, in a new session (setsid) whose process group holds the process and
 * its children, so that `signalGroup` can do what a terminal's Ctrl-C does.
 */
export function startProcess(
  name: string,
  args: string[],
  env: Record<string, string> = {},
  ownGroup = false,
): Proc {
  const child = new Deno.Command(ownGroup ? "setsid" : Deno.execPath(), {
    args: ownGroup ? [Deno.execPath(), ...args] : args,
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const listeners = new Set<() => void>();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      text += chunk;
      for (const l of listeners) l();
    }
  };
  const pumped = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const status = child.status.then(async (s) => {
    await pumped;
    for (const l of listeners) l();
    return s;
  });
  let exited = false;
  status.then(() => exited = true);
  const kill = (signal: Deno.Signal = "SIGKILL") => {
    try {
      child.kill(signal);
    } catch { /* already gone */ }
  };
  return {
    name,
    child,
    output: () => text,
    kill,
    async exit(timeoutMs) {
      const timeout = AbortSignal.timeout(timeoutMs);
      const timedOut = new Promise<null>((resolve) => timeout.addEventListener("abort", () => resolve(null)));
      const s = await Promise.race([status, timedOut]);
      if (s === null) {
        kill();
        await status;
        throw new Error(`${name} did not exit within ${timeoutMs} ms; output:\n${text.slice(-4000)}`);
      }
      return s.code;
    },
    waitFor(pattern, timeoutMs) {
      return new Promise((resolve, reject) => {
        const timeout = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`${name}: no ${pattern} within ${timeoutMs} ms; output:\n${text.slice(-4000)}`));
        }, timeoutMs);
        const check = () => {
          const match = text.match(pattern);
          if (match || exited) {
            clearTimeout(timeout);
            listeners.delete(check);
            if (match) resolve(match);
            else {reject(
                new Error(`${name} exited before printing ${pattern}; output:\n${text.slice(-4000)}`),
              );}
          }
        };
        listeners.add(check);
        check();
      });
    },
  };
}

export function startCoordinator(args: string[], env: Record<string, string> = {}): Proc {
  return startProcess("coordinator", [
    "run",
    CONFIG,
    ...COORDINATOR_PERMISSIONS,
    "coordinator/main.ts",
    ...args,
  ], env);
}

export function startWorker(name: string, args: string[], env: Record<string, string> = {}): Proc {
  return startProcess(name, ["run", CONFIG, ...WORKER_PERMISSIONS, "worker/main.ts", ...args], env);
}

export function startTrain(args: string[], ownGroup = false): Proc {
  return startProcess("train", ["task", CONFIG, "train", ...args], {}, ownGroup);
}

/** Sends `signal` to every process of `proc`'s group (it was started with `ownGroup`), as a terminal does. */
export function signalGroup(proc: Proc, signal: Deno.Signal): void {
  Deno.kill(-proc.child.pid, signal);
}

/** Waits for the coordinator's listening line (it was started with --port 0) and returns its URL. */
export async function coordinatorUrl(coordinator: Proc, timeoutMs: number): Promise<string> {
  return (await coordinator.waitFor(LISTENING, timeoutMs))[1];
}

/** The step lines of a run's metrics.jsonl (lines with a `type`, such as evaluations, are left out). */
export async function readMetrics(runDir: string): Promise<Array<Record<string, number | string>>> {
  const text = await Deno.readTextFile(`${runDir}/metrics.jsonl`);
  return text.trim().split("\n").filter((l) => l !== "").map((l) => JSON.parse(l)).filter((m) =>
    m.type === undefined
  );
}

/** Lines in a run's metrics.jsonl so far (0 before it exists). */
export async function metricLines(runDir: string): Promise<number> {
  try {
    return (await Deno.readTextFile(`${runDir}/metrics.jsonl`)).split("\n").filter((l) => l.trim()).length;
  } catch {
    return 0;
  }
}

/** Waits until the run has recorded `steps` steps; throws after `timeoutMs`. */
export async function waitForSteps(runDir: string, steps: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await metricLines(runDir)) < steps) {
    if (Date.now() > deadline) throw new Error(`${runDir}: fewer than ${steps} steps within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Checks that metrics.jsonl holds steps 1..steps, each once, with finite losses. */
export async function assertEachStepOnce(runDir: string, steps: number): Promise<void> {
  const metrics = await readMetrics(runDir);
  assertEquals(metrics.map((m) => m.step), Array.from({ length: steps }, (_, i) => i + 1));
  assert(metrics.every((m) => Number.isFinite(m.lossD) && Number.isFinite(m.lossG)), "finite losses");
}

/** The resident memory of a process, from /proc, in MB (read with cat: Deno guards /proc behind --allow-all). */
export async function residentMb(pid: number): Promise<number> {
  const { stdout } = await new Deno.Command("cat", { args: [`/proc/${pid}/status`] }).output();
  const status = new TextDecoder().decode(stdout);
  const kb = Number(status.match(/VmRSS:\s+(\d+) kB/)?.[1]);
  if (!Number.isFinite(kb)) throw new Error(`no VmRSS for process ${pid}`);
  return kb / 1024;
}

export async function latestCheckpoint(runDir: string): Promise<string> {
  const { name } = JSON.parse(await Deno.readTextFile(`${runDir}/checkpoints/latest.json`));
  return `${runDir}/checkpoints/${name}`;
}

/** Kills whatever is still running, so a failed test leaves no process behind. */
export async function cleanup(...procs: Proc[]): Promise<void> {
  for (const p of procs) p.kill();
  await Promise.all(procs.map((p) => p.exit(10_000).catch(() => {})));
}

/** Waits for `proc` to exit 0 (failing with its output otherwise) and leaves nothing running. */
export async function expectExitZero(proc: Proc, timeoutMs: number): Promise<void> {
  try {
    const code = await proc.exit(timeoutMs);
    if (code !== 0) {
      throw new Error(`${proc.name} exited with ${code}; output:\n${proc.output().slice(-4000)}`);
    }
  } finally {
    await cleanup(proc);
  }
}
