import type { ModelName } from "../shared/models/types.ts";
import type { DatasetName } from "../shared/data/dataset.ts";
import type { BackendChoice } from "../shared/backends/select.ts";

/** The one configuration object of every role, built by `loadConfig` from defaults < config file < flags. */
export interface Config {
  config?: string;
  model: ModelName;
  dataset: DatasetName;
  data?: string;
  epochs: number;
  batchSize: number;
  lr: number;
  beta1: number;
  beta2: number;
  adamEpsilon: number;
  bnMomentum: number;
  latentDim: number;
  labelSmoothing: number;
  seed?: number;
  examples?: number;
  maxSteps?: number;
  out?: string;
  resume?: string;
  checkpointEvery?: number;
  keepCheckpoints: number;
  /** --eval-every: measure the generator with a classifier every N epochs (evaluate/). */
  evalEvery?: number;
  evalCount: number;
  evalClassifier?: string;
  progress: "auto" | "bar" | "lines" | "none";
  progressIntervalMs: number;
  host: string;
  port: number;
  dashboard: boolean;
  dashboardMaxClients: number;
  dashboardMaxPoints: number;
  workers?: number;
  minWorkers: number;
  token?: string;
  wire: "float32" | "float16";
  sharedMemory: "auto" | "off";
  sharedMemoryWorkers: number;
  optimizerThreads: number;
  pinWorkers: "auto" | "off";
  balance: boolean;
  trace?: string;
  compute: "real" | "simulated";
  stepMs: number;
  /** Worker only. */
  coordinator: string;
  gpu?: number;
  backend: BackendChoice;
  threads?: number;
  connectTimeoutMs: number;
  connectRetryMs: number;
  reconnectTimeoutMs: number;
  reconnectBackoffMaxMs: number;
  maxPendingConnections: number;
  workerHistory: number;
  joinTimeoutMs: number;
  handshakeTimeoutMs: number;
  stepTimeoutMs: number;
  phaseAttempts: number;
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  maxFrameBytes?: number;
  shutdownTimeoutMs: number;
}
