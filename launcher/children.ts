/**
 * A child process whose output lines are prefixed with its role, so the interleaved log of a coordinator
 * and its workers stays readable.
 */
export interface Child {
  role: string;
  process: Deno.ChildProcess;
  status: Promise<Deno.CommandStatus>;
  /** Resolves with the first line matching `pattern` (or null when the child ends first). */
  waitForLine(pattern: RegExp): Promise<RegExpMatchArray | null>;
}

/** Terminal escape sequences (the progress line's clear-line): noise in a merged log. */
// deno-lint-ignore no-control-regex
const ANSI_ESCAPE = /\x1b\[[0-9;]*[A-Za-z]/g;

async function pipeLines(
  stream: ReadableStream<Uint8Array>,
  prefix: string,
  write: (line: string) => void,
  onLine: (line: string) => void,
): Promise<void> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += value;
    // A TTY progress line redraws with \r: show each redraw as its own line in the merged log.
    const lines = buffered.split(/\r?\n|\r/);
    buffered = lines.pop()!;
    for (const line of lines) {
      if (line.trim() === "") continue;
      write(`${prefix} ${line.replace(ANSI_ESCAPE, "")}`);
      onLine(line);
    }
  }
  if (buffered.trim() !== "") {
    write(`${prefix} ${buffered}`);
    onLine(buffered);
  }
}

/**
 * Starts `deno <args>` with its lines prefixed by `[role]`; with `direct`, its output goes straight to this
 * terminal instead (unprefixed, and the child sees a TTY: its progress bars draw), and no line is watched.
 */
export function spawnChild(
  role: string,
  args: string[],
  env: Record<string, string> = {},
  direct = false,
  prefix: string[] = [],
): Child {
  // `prefix`: a program that runs deno (taskset, to bind it to a core).
  const process = new Deno.Command(prefix[0] ?? Deno.execPath(), {
    args: prefix.length > 0 ? [...prefix.slice(1), Deno.execPath(), ...args] : args,
    env,
    stdin: "null",
    stdout: direct ? "inherit" : "piped",
    stderr: direct ? "inherit" : "piped",
  }).spawn();
  if (direct) {
    return { role, process, status: process.status, waitForLine: () => Promise.resolve(null) };
  }
  const watchers: Array<{ pattern: RegExp; resolve: (m: RegExpMatchArray | null) => void }> = [];
  const onLine = (line: string) => {
    for (const w of [...watchers]) {
      const match = line.match(w.pattern);
      if (match) {
        watchers.splice(watchers.indexOf(w), 1);
        w.resolve(match);
      }
    }
  };
  const tag = `[${role}]`;
  const out = pipeLines(process.stdout, tag, (l) => console.log(l), onLine);
  const err = pipeLines(process.stderr, tag, (l) => console.error(l), onLine);
  const status = Promise.all([process.status, out, err]).then(([s]) => {
    for (const w of watchers.splice(0)) w.resolve(null);
    return s;
  });
  return {
    role,
    process,
    status,
    waitForLine: (pattern) => new Promise((resolve) => watchers.push({ pattern, resolve })),
  };
}

export function signalChild(child: Child, signal: Deno.Signal): void {
  try {
    child.process.kill(signal);
  } catch {
    // It has exited already.
  }
}
