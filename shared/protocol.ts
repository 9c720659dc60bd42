/**
 * The messages between coordinator and workers: a discriminated union on string tags, each with a validator.
 * Every frame carries the protocol version; a frame that fails validation is refused with a reason.
 */
import { GantryError } from "./errors.ts";
import { firstNonFiniteFloat16 } from "./float16.ts";
import { IMAGE_PIXELS } from "./data/dataset.ts";
import type { ModelSpecs } from "./models/types.ts";

/**
 * 2: frames are a msgpack header plus raw tensor bytes (shared/codec.ts), and weights have their own message.
 * 3: a worker on shared memory gets its weights in its task, as offsets of the master weights (read in place).
 */
export const PROTOCOL_VERSION = 3;

export type Phase = "D" | "G";

/** Weights and gradients as they come off the wire: float32, or float16 under `--wire float16`. */
export type FloatArray = Float32Array | Float16Array;

/** How gradients and weights travel (`--wire`); master weights and Adam stay float32 either way. */
export type Wire = "float32" | "float16";

/** One timed span of a worker's work, for --trace: name, start (µs since the epoch), duration (µs). */
export type Span = [string, number, number];

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
  /**
   * Offered when the worker can map shared memory: a probe segment the coordinator reads to see that it
   * shares this machine's /dev/shm (shared/shared_memory.ts).
   */
  sharedMemory?: { probe: string; nonce: string };
}

/**
 * Where big tensors go when the worker shares the coordinator's memory: weights in one segment for all
 * workers (region "weights", at the offsets each task names: the coordinator's master weights themselves,
 * each net's in two places that alternate from step to step); in a segment of the worker's own, its
 * gradients (region "grads", at 0) and its tasks' tensors (region "task", from `taskOffset`).
 */
export interface SharedMemoryOffer {
  weights: string;
  weightsBytes: number;
  segment: string;
  segmentBytes: number;
  taskOffset: number;
}

/** coordinator → worker, answer to hello: what to build. */
export interface WelcomeMessage {
  type: "welcome";
  version: number;
  workerId: number;
  model: "cdcgan" | "mlp";
  latentDim: number;
  labelSmoothing: number;
  /** The coordinator's heartbeat settings, which its workers adopt so that both sides judge alike. */
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  /** How the worker must send its gradients (and will receive weights). */
  wire: Wire;
  /** --trace: the worker returns its spans with each result. */
  trace: boolean;
  /** Present when big tensors travel through shared memory rather than the socket. */
  sharedMemory?: SharedMemoryOffer;
}

/**
 * coordinator → workers: a net's weights, encoded once per update and sent as the same bytes to every worker
 * whose copy is stale, ahead of its task.
 */
export interface WeightsMessage {
  type: "weights";
  version: number;
  net: Phase;
  weightsVersion: number;
  values: FloatArray;
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
  generator?: FloatArray;
  discriminator?: FloatArray;
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
  /** The shard's gradient sum, times 1/gradScale (float16 is scaled into its range). */
  grads: FloatArray;
  /** What `grads` are multiplied by to give the sum; absent: 1. */
  gradScale?: number;
  lossSum: number;
  realScoreSum: number;
  fakeScoreSum: number;
  batchNormSums?: Float32Array;
  computeMs: number;
  /** The worker's time to decode this task (and the weights before it), ms. */
  decodeMs?: number;
  /** --trace: the worker's spans since its previous result. */
  spans?: Span[];
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

/** either way, every --heartbeat-interval-ms: proof of life while nothing else is said. */
export interface HeartbeatMessage {
  type: "heartbeat";
  version: number;
}

export type Message =
  | HeartbeatMessage
  | HelloMessage
  | WelcomeMessage
  | WeightsMessage
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

function fields(m: Fields, key: string, what: string): Fields {
  const v = m[key];
  if (typeof v !== "object" || v === null || Array.isArray(v) || ArrayBuffer.isView(v)) {
    throw bad(`${what}: "${key}" must be a map`);
  }
  return v as Fields;
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

function floats(m: Fields, key: string, what: string, length: number): FloatArray {
  const v = m[key];
  if (!(v instanceof Float32Array || v instanceof Float16Array)) {
    throw bad(`${what}: "${key}" must be a Float32Array or Float16Array`);
  }
  if (v.length !== length) throw bad(`${what}: "${key}" must hold ${length} values, got ${v.length}`);
  return v;
}

/** Throws E_BAD_VALUES unless every value is finite: one NaN gradient would poison the master weights. */
export function assertFinite(values: FloatArray, what: string): void {
  if (values instanceof Float16Array) {
    const i = firstNonFiniteFloat16(values);
    if (i >= 0) throw new GantryError("E_BAD_VALUES", `${what}: value ${i} is ${values[i]}, not finite`);
    return;
  }
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
  if (
    !["hello", "welcome", "weights", "task", "result", "stop", "error", "heartbeat"].includes(type as string)
  ) {
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
/**
 * `float32CheckedLater`: float32 gradients are checked for NaN and infinity by the gradient sum (in the same
 * pass, coordinator/aggregate.ts) rather than here.
 */
export function validateFromWorker(
  value: unknown,
  sizes: ExpectedSizes,
  float32CheckedLater = false,
): HelloMessage | ResultMessage | ErrorMessage | HeartbeatMessage {
  const { m, type } = header(value);
  if (type === "heartbeat") return m as unknown as HeartbeatMessage;
  if (type === "hello") {
    str(m, "name", "hello");
    if (m.gpu !== null) num(m, "gpu", "hello", true, 0);
    num(m, "pid", "hello", true, 0);
    const b = fields(m, "backend", "hello");
    str(b, "name", "hello.backend");
    str(b, "tfjsVersion", "hello.backend");
    if (!Array.isArray(b.devices) || !Array.isArray(b.fallbackReasons)) {
      throw bad('hello.backend: "devices" and "fallbackReasons" must be lists');
    }
    if (m.token !== undefined) str(m, "token", "hello");
    if (m.sharedMemory !== undefined) {
      const offer = fields(m, "sharedMemory", "hello");
      str(offer, "probe", "hello.sharedMemory");
      str(offer, "nonce", "hello.sharedMemory");
    }
    return m as unknown as HelloMessage;
  }
  if (type === "result") {
    num(m, "step", "result", true, 1);
    if (m.phase !== "D" && m.phase !== "G") {
      throw bad(`result: "phase" must be "D" or "G", got ${String(m.phase)}`);
    }
    num(m, "count", "result", true, 1);
    const size = m.phase === "D" ? sizes.discriminatorSize : sizes.generatorSize;
    const grads = floats(m, "grads", "result", size);
    if (!(float32CheckedLater && grads instanceof Float32Array)) assertFinite(grads, "result.grads");
    for (const key of ["lossSum", "realScoreSum", "fakeScoreSum", "computeMs"]) num(m, key, "result");
    if (m.gradScale !== undefined && num(m, "gradScale", "result") <= 0) {
      throw bad('result: "gradScale" must be > 0');
    }
    if (m.decodeMs !== undefined) num(m, "decodeMs", "result", false, 0);
    if (m.spans !== undefined) checkSpans(m.spans);
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

/** At most this many spans ride on one result: a trace must not be a way to send megabytes. */
const MAX_SPANS = 256;

function checkSpans(spans: unknown): void {
  if (!Array.isArray(spans) || spans.length > MAX_SPANS) {
    throw bad(`result: "spans" must be a list of at most ${MAX_SPANS}`);
  }
  for (const s of spans) {
    if (
      !Array.isArray(s) || s.length !== 3 || typeof s[0] !== "string" || s[0].length > 64 ||
      !Number.isFinite(s[1]) || !Number.isFinite(s[2])
    ) throw bad("result: each span must be [name, startUs, durationUs]");
  }
}

/** Validates a frame a worker received. `sizes` is null before the welcome. */
export function validateFromCoordinator(
  value: unknown,
  sizes: ExpectedSizes | null,
): WelcomeMessage | WeightsMessage | TaskMessage | StopMessage | ErrorMessage | HeartbeatMessage {
  const { m, type } = header(value);
  if (type === "heartbeat") return m as unknown as HeartbeatMessage;
  if (type === "welcome") {
    num(m, "workerId", "welcome", true, 1);
    if (m.model !== "cdcgan" && m.model !== "mlp") throw bad(`welcome: unknown model ${String(m.model)}`);
    num(m, "latentDim", "welcome", true, 1);
    num(m, "labelSmoothing", "welcome", false, 0);
    num(m, "heartbeatIntervalMs", "welcome", true, 1);
    num(m, "heartbeatTimeoutMs", "welcome", true, 1);
    if (m.wire !== "float32" && m.wire !== "float16") throw bad(`welcome: unknown wire ${String(m.wire)}`);
    if (typeof m.trace !== "boolean") throw bad('welcome: "trace" must be a boolean');
    if (m.sharedMemory !== undefined) {
      const offer = fields(m, "sharedMemory", "welcome");
      for (const key of ["weights", "segment"]) str(offer, key, "welcome.sharedMemory");
      for (const key of ["weightsBytes", "segmentBytes", "taskOffset"]) {
        num(offer, key, "welcome.sharedMemory", true, 0);
      }
    }
    return m as unknown as WelcomeMessage;
  }
  if (type === "weights") {
    if (!sizes) throw bad("weights before welcome");
    if (m.net !== "D" && m.net !== "G") throw bad(`weights: "net" must be "D" or "G", got ${String(m.net)}`);
    num(m, "weightsVersion", "weights", true, 0);
    floats(m, "values", "weights", m.net === "G" ? sizes.generatorSize : sizes.discriminatorSize);
    return m as unknown as WeightsMessage;
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
    if (m.generator !== undefined) floats(m, "generator", "task", sizes.generatorSize);
    if (m.discriminator !== undefined) floats(m, "discriminator", "task", sizes.discriminatorSize);
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
