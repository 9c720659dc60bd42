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
  progress: "auto" | "bar" | "lines" | "none";
  progressIntervalMs: number;
  host: string;
  port: number;
  workers?: number;
  /** Worker only. */
  coordinator: string;
  gpu?: number;
  backend: BackendChoice;
  threads?: number;
  connectTimeoutMs: number;
  connectRetryMs: number;
  joinTimeoutMs: number;
  handshakeTimeoutMs: number;
  stepTimeoutMs: number;
  phaseAttempts: number;
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  maxFrameBytes?: number;
  shutdownTimeoutMs: number;
}
