/**
 * Binds each local worker to CPU cores of its own, one per compute thread (`taskset`, Linux), as torchrun's
 * and Horovod's `--bind-to core` do. Left to the scheduler, two workers on this 2-core machine were moved
 * about until their compute took 320 ms a step instead of 261 ms bound (and 255 ms for one worker alone).
 *
 * When every worker's thread has a core of its own, they also run under SCHED_BATCH (`chrt --batch`): a
 * worker woken by its task then waits for the coordinator to finish sending the other tasks instead of
 * preempting it on their shared core (here the tasks of a 2-worker step took 2 to 4.5 ms to send, and 0.5
 * ms as batch). With more workers than cores they stay ordinary: batch workers never preempt one another
 * either, and a worker whose result is due would wait for another's time slice.
 */
const TASKSET = "taskset";
const CHRT = "chrt";

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
 * The cores of worker `index` when each worker computes with `each` threads: one core per thread, in blocks
 * taken from the last core down, wrapping round when there are more threads than cores. The first core takes
 * most of the machine's interrupts and housekeeping (here one worker alone computed about 10% slower on core 0
 * than on core 1). A worker's threads each get a core: one worker with two threads bound to one core computed
 * 17% slower than with one thread, and twice as unevenly from step to step.
 */
export function workerCores(cpus: number[], index: number, each: number): number[] {
  const count = Math.min(Math.max(1, each), cpus.length);
  return Array.from({ length: count }, (_, k) => cpus[cpus.length - 1 - ((index * count + k) % cpus.length)]);
}

/** True when `chrt` can start programs under SCHED_BATCH here. */
export async function batchSchedulingAvailable(): Promise<boolean> {
  try {
    const { code } = await new Deno.Command(CHRT, { args: ["--batch", "0", "true"] }).output();
    return code === 0;
  } catch {
    return false;
  }
}

/** How `workers` workers of `each` threads are laid on `cpus`, and whether `chrt` works here. */
export interface Placement {
  cpus: number[];
  workers: number;
  each: number;
  chrtWorks: boolean;
}

/** True when the workers run under SCHED_BATCH: every thread of every worker has a core, and `chrt` works. */
export function underBatch({ cpus, workers, each, chrtWorks }: Placement): boolean {
  return chrtWorks && workers * Math.max(1, each) <= cpus.length;
}

/**
 * The command that starts worker `index` bound to its cores, under SCHED_BATCH when underBatch() says so: the
 * programs' arguments before deno's.
 */
export function boundCommand(placement: Placement, index: number): string[] {
  const cores = workerCores(placement.cpus, index, placement.each);
  const bind = [TASKSET, "-c", cores.join(",")];
  return underBatch(placement) ? [CHRT, "--batch", "0", ...bind] : bind;
}
