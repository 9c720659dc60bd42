/**
 * The messages between coordinator and workers: a discriminated union on string tags, each with a validator.
 * Every frame carries the protocol version; a frame that fails validation is refused with a reason.
 */
import { GantryError } from "./errors.ts";
import { IMAGE_PIXELS } from "./data/dataset.ts";
import type { ModelSpecs } from "./models/types.ts";

export const PROTOCOL_VERSION = 1;

export type Phase = "D" | "G";

/** What a worker says about the compute it really runs on. */
export interface WorkerBackend {
  name: string;
  tfjsVersion: string;
  tfVersion?: string;
  devices: string[];
  fallbackReasons: string[];
}

/** worker → coordinator, first frame. */
export interface HelloMessage {
  type: "hello";
  version: number;
  name: string;
  gpu: number | null;
  pid: number;
  backend: WorkerBackend;
  token?: string;
}

/** coordinator → worker, answer to hello: what to build. */
export interface WelcomeMessage {
  type: "welcome";
  version: number;
  workerId: number;
  model: "cdcgan" | "mlp";
  latentDim: number;
  labelSmoothing: number;
}

/**
 * coordinator → worker: compute one phase on a shard. Weights ride along only when the worker's copy is
 * stale; `generatorVersion`/`discriminatorVersion` name the weights the result must be computed with.
 */
export interface TaskMessage {
  type: "task";
  version: number;
  step: number;
  phase: Phase;
  generatorVersion: number;
  discriminatorVersion: number;
  generator?: Float32Array;
  discriminator?: Float32Array;
  count: number;
  z: Float32Array;
  labels: Uint8Array;
  /** D phase: real images (count x 784 bytes) and their labels; `labels` are then the fakes' labels. */
  real?: Uint8Array;
  realLabels?: Uint8Array;
}

/** worker → coordinator: sums over the shard. */
export interface ResultMessage {
  type: "result";
  version: number;
  step: number;
  phase: Phase;
  count: number;
  grads: Float32Array;
  lossSum: number;
  realScoreSum: number;
  fakeScoreSum: number;
  batchNormSums?: Float32Array;
  computeMs: number;
}

/** coordinator → worker: training is over (or this worker is dismissed); exit with `exitCode`. */
export interface StopMessage {
  type: "stop";
  version: number;
  reason: string;
  exitCode: number;
}

/** either way: a refusal with a stable code, sent before closing. */
export interface ErrorMessage {
  type: "error";
  version: number;
  code: string;
  message: string;
}

export type Message =
  | HelloMessage
  | WelcomeMessage
  | TaskMessage
  | ResultMessage
  | StopMessage
  | ErrorMessage;
export type MessageType = Message["type"];

/** Sizes the receiver knows from the model, to check arrays against. */
export interface ExpectedSizes {
  latentDim: number;
  generatorSize: number;
  discriminatorSize: number;
  batchNormSize: number;
  imageSize: number;
}

/** The array sizes of a model's messages. */
export function expectedSizes(specs: ModelSpecs): ExpectedSizes {
  return {
    latentDim: specs.latentDim,
    generatorSize: specs.generator.trainableSize,
    discriminatorSize: specs.discriminator.trainableSize,
    batchNormSize: specs.generator.stateSize,
    imageSize: IMAGE_PIXELS,
  };
}

function bad(message: string): GantryError {
  return new GantryError("E_BAD_MESSAGE", message);
}

type Fields = Record<string, unknown>;

function num(m: Fields, key: string, what: string, integer = false, min = -Infinity): number {
  const v = m[key];
  if (typeof v !== "number" || !Number.isFinite(v) || (integer && !Number.isInteger(v)) || v < min) {
    throw bad(
      `${what}: "${key}" must be a finite ${integer ? "integer" : "number"} >= ${min}, got ${String(v)}`,
    );
  }
  return v;
}

function str(m: Fields, key: string, what: string): string {
  const v = m[key];
  if (typeof v !== "string") throw bad(`${what}: "${key}" must be a string, got ${typeof v}`);
  return v;
}

function typed<T extends Float32Array | Uint8Array>(
  m: Fields,
  key: string,
  what: string,
  ctor: { new (n: number): T; name: string },
  length: number,
): T {
  const v = m[key];
  if (!(v instanceof ctor)) throw bad(`${what}: "${key}" must be a ${ctor.name}`);
  if (v.length !== length) throw bad(`${what}: "${key}" must hold ${length} values, got ${v.length}`);
  return v as T;
}

/** Throws E_BAD_VALUES unless every value is finite: one NaN gradient would poison the master weights. */
export function assertFinite(values: Float32Array, what: string): void {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) {
      throw new GantryError("E_BAD_VALUES", `${what}: value ${i} is ${values[i]}, not finite`);
    }
  }
}

function checkLabels(labels: Uint8Array, what: string): void {
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] > 9) throw bad(`${what}: label ${i} is ${labels[i]}, must be 0..9`);
  }
}

/** The type tag and version of any frame; the version is checked before anything else. */
function header(value: unknown): { m: Fields; type: MessageType } {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw bad("a message must be a msgpack map");
  }
  const m = value as Fields;
  if (m.version !== PROTOCOL_VERSION) {
    throw new GantryError(
      "E_PROTOCOL_VERSION",
      `protocol version ${
        JSON.stringify(m.version)
      } is not supported: this side speaks version ${PROTOCOL_VERSION}`,
    );
  }
  const type = m.type;
  if (!["hello", "welcome", "task", "result", "stop", "error"].includes(type as string)) {
    throw bad(`unknown message type ${JSON.stringify(type)}`);
  }
  return { m, type: type as MessageType };
}

/** Either side may send an error before closing. */
function validateError(m: Fields): ErrorMessage {
  str(m, "code", "error");
  str(m, "message", "error");
  return m as unknown as ErrorMessage;
}

/** Validates a frame a coordinator received: only hello and result are legal from a worker. */
export function validateFromWorker(
  value: unknown,
  sizes: ExpectedSizes,
): HelloMessage | ResultMessage | ErrorMessage {
  const { m, type } = header(value);
  if (type === "hello") {
    str(m, "name", "hello");
    if (m.gpu !== null) num(m, "gpu", "hello", true, 0);
    num(m, "pid", "hello", true, 0);
    const b = m.backend as Fields | undefined;
    if (typeof b !== "object" || b === null) throw bad('hello: "backend" must be a map');
    str(b, "name", "hello.backend");
    str(b, "tfjsVersion", "hello.backend");
    if (!Array.isArray(b.devices) || !Array.isArray(b.fallbackReasons)) {
      throw bad('hello.backend: "devices" and "fallbackReasons" must be lists');
    }
    if (m.token !== undefined) str(m, "token", "hello");
    return m as unknown as HelloMessage;
  }
  if (type === "result") {
    num(m, "step", "result", true, 1);
    if (m.phase !== "D" && m.phase !== "G") {
      throw bad(`result: "phase" must be "D" or "G", got ${String(m.phase)}`);
    }
    num(m, "count", "result", true, 1);
    const size = m.phase === "D" ? sizes.discriminatorSize : sizes.generatorSize;
    const grads = typed(m, "grads", "result", Float32Array, size);
    assertFinite(grads, "result.grads");
    for (const key of ["lossSum", "realScoreSum", "fakeScoreSum", "computeMs"]) num(m, key, "result");
    if (m.phase === "G" && sizes.batchNormSize > 0) {
      assertFinite(
        typed(m, "batchNormSums", "result", Float32Array, sizes.batchNormSize),
        "result.batchNormSums",
      );
    }
    return m as unknown as ResultMessage;
  }
  if (type === "error") return validateError(m);
  throw bad(`a worker may not send "${type}"`);
}

/** Validates a frame a worker received. `sizes` is null before the welcome. */
export function validateFromCoordinator(
  value: unknown,
  sizes: ExpectedSizes | null,
): WelcomeMessage | TaskMessage | StopMessage | ErrorMessage {
  const { m, type } = header(value);
  if (type === "welcome") {
    num(m, "workerId", "welcome", true, 1);
    if (m.model !== "cdcgan" && m.model !== "mlp") throw bad(`welcome: unknown model ${String(m.model)}`);
    num(m, "latentDim", "welcome", true, 1);
    num(m, "labelSmoothing", "welcome", false, 0);
    return m as unknown as WelcomeMessage;
  }
  if (type === "task") {
    if (!sizes) throw bad("task before welcome");
    num(m, "step", "task", true, 1);
    if (m.phase !== "D" && m.phase !== "G") {
      throw bad(`task: "phase" must be "D" or "G", got ${String(m.phase)}`);
    }
    num(m, "generatorVersion", "task", true, 0);
    num(m, "discriminatorVersion", "task", true, 0);
    const count = num(m, "count", "task", true, 1);
    if (m.generator !== undefined) typed(m, "generator", "task", Float32Array, sizes.generatorSize);
    if (m.discriminator !== undefined) {
      typed(m, "discriminator", "task", Float32Array, sizes.discriminatorSize);
    }
    typed(m, "z", "task", Float32Array, count * sizes.latentDim);
    checkLabels(typed(m, "labels", "task", Uint8Array, count), "task.labels");
    if (m.phase === "D") {
      typed(m, "real", "task", Uint8Array, count * sizes.imageSize);
      checkLabels(typed(m, "realLabels", "task", Uint8Array, count), "task.realLabels");
    }
    return m as unknown as TaskMessage;
  }
  if (type === "stop") {
    str(m, "reason", "stop");
    num(m, "exitCode", "stop", true, 0);
    return m as unknown as StopMessage;
  }
  if (type === "error") return validateError(m);
  throw bad(`a coordinator may not send "${type}"`);
}
