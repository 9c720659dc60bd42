/**
 * Binds each local worker to a CPU core of its own (`taskset`, Linux), as torchrun's and Horovod's
 * `--bind-to core` do. Left to the scheduler, two workers on this 2-core machine were moved about until their
 * compute took 320 ms a step instead of 261 ms bound (and 255 ms for one worker alone).
 */
const TASKSET = "taskset";

/** Expands a CPU list such as "0-3,6" into [0, 1, 2, 3, 6]. */
export function parseCpuList(list: string): number[] {
  const cpus: number[] = [];
  for (const part of list.trim().split(",")) {
    const match = part.match(/^(\d+)(?:-(\d+))?$/);
    if (!match) throw new Error(`not a CPU list: "${list}"`);
    const first = Number(match[1]);
    const last = match[2] === undefined ? first : Number(match[2]);
    for (let cpu = first; cpu <= last; cpu++) cpus.push(cpu);
  }
  return cpus;
}

/** The CPUs this process may run on, or why workers cannot be bound to them. */
export async function allowedCpus(): Promise<number[] | string> {
  if (Deno.build.os !== "linux") return `binding workers to cores is done on Linux, not ${Deno.build.os}`;
  try {
    const { code, stdout } = await new Deno.Command(TASKSET, { args: ["-pc", String(Deno.pid)] }).output();
    const text = new TextDecoder().decode(stdout);
    const list = text.match(/affinity list:\s*(\S+)/)?.[1];
    if (code !== 0 || !list) return `${TASKSET} -pc answered "${text.trim()}"`;
    return parseCpuList(list);
  } catch (error) {
    return `${TASKSET} is not available (${(error as Error).message}); install util-linux`;
  }
}

/**
 * The core of worker `index`. Cores are taken from the last one down: the first takes most of the machine's
 * interrupts and housekeeping (here one worker alone computed about 10% slower on core 0 than on core 1).
 */
export function workerCore(cpus: number[], index: number): number {
  return cpus[cpus.length - 1 - (index % cpus.length)];
}

/** The command that starts worker `index` bound to its core: taskset's arguments before the program. */
export function boundCommand(cpus: number[], index: number): string[] {
  return [TASKSET, "-c", String(workerCore(cpus, index))];
}
