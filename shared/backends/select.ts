/**
 * Picks and initializes the process's TF.js backend (DESIGN.md, Backends): `auto` tries tensorflow, then
 * wasm, then cpu, saying loudly why each one it passes over failed; an explicit choice that fails is a hard
 * error. TF.js has one global engine, so this runs once per process before any model is built.
 */
import * as tf from "@tensorflow/tfjs";
import { errorMessage, GantryError } from "../errors.ts";
import { registerWasmTrainingKernels } from "./wasm_kernels.ts";

export type BackendChoice = "auto" | "tensorflow" | "wasm" | "cpu";
export type BackendName = Exclude<BackendChoice, "auto">;

export interface BackendInfo {
  name: BackendName;
  tfjsVersion: string;
  /** The native TensorFlow's version, for the tensorflow backend only. */
  tfVersion?: string;
  devices: string[];
  /** Why each backend that `auto` tried before this one failed, as "name: reason". */
  fallbackReasons: string[];
}

export interface InitBackendOptions {
  backend: BackendChoice;
  /** Pins the process to this GPU (CUDA_VISIBLE_DEVICES), set before TensorFlow loads. */
  gpu?: number;
  /** Compute threads, for the backends that can use them (tensorflow; wasm only in its threaded build). */
  threads?: number;
  /** Where the backend's notices and fallback warnings go; stderr by default. */
  log?: (line: string) => void;
}

/** What a loader reports once TF.js runs on its backend. */
export interface LoadedBackend {
  tfVersion?: string;
  devices: string[];
}

export interface LoaderOptions {
  threads?: number;
  log: (line: string) => void;
}

/** Loads one backend and makes it TF.js's current backend, or throws with the reason it cannot. */
export type BackendLoader = (opts: LoaderOptions) => Promise<LoadedBackend>;
export type BackendLoaders = Record<BackendName, BackendLoader>;

/** The order `auto` tries, fastest first. */
export const AUTO_BACKEND_ORDER: readonly BackendName[] = ["tensorflow", "wasm", "cpu"];
const BACKEND_CHOICES: readonly BackendChoice[] = ["auto", ...AUTO_BACKEND_ORDER];
/** What the wasm and cpu backends compute on. */
const CPU_DEVICES: readonly string[] = ["CPU"];
const CUDA_VISIBLE_DEVICES = "CUDA_VISIBLE_DEVICES";

/** What tfjs-backend-wasm rejects with, a plain object, when Emscripten cannot fetch or compile the binary. */
const WASM_BINARY_FAILURE = "Make sure the server can serve the `.wasm` file";

function logToStderr(line: string): void {
  console.error(line);
}

/** The message of whatever was thrown: tfjs-backend-wasm rejects with `{message}` objects, not Errors. */
function reasonOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (
    typeof error === "object" && error !== null &&
    typeof (error as { message?: unknown }).message === "string"
  ) {
    return (error as { message: string }).message;
  }
  return errorMessage(error);
}

/**
 * Makes `name` TF.js's current backend. `tf.setBackend` does not throw when a backend fails to
 * initialize: it warns on the console and resolves false. To report the reason, the backend's factory is
 * wrapped for the duration of the call so that its error is caught on the way through.
 */
async function activate(name: BackendName): Promise<void> {
  const entry = tf.engine().registryFactory[name];
  if (entry === undefined) throw new Error(`TF.js has no backend named '${name}' registered`);
  const factory = entry.factory;
  let failure: unknown;
  entry.factory = async () => {
    try {
      return await factory();
    } catch (error) {
      failure = error;
      throw error;
    }
  };
  try {
    const ok = await tf.setBackend(name);
    if (!ok) {
      throw new Error(failure === undefined ? "initialization failed" : reasonOf(failure), {
        cause: failure,
      });
    }
  } finally {
    entry.factory = factory;
  }
  await tf.ready();
}

/**
 * Native TensorFlow through tfjs-node-gpu. The loader module is imported only now, so that nothing native
 * loads in a process that uses another backend. It starts TensorFlow once per process; a later call (back
 * from another backend) gets the first result, so the switch back is made here.
 */
async function loadTensorflow({ threads }: LoaderOptions): Promise<LoadedBackend> {
  const { loadTensorflowBackend } = await import("./tensorflow.ts");
  const loaded = await loadTensorflowBackend({ threads });
  if (tf.getBackend() !== "tensorflow") await activate("tensorflow");
  return { tfVersion: loaded.tfVersion, devices: loaded.devices };
}

async function loadWasm({ threads, log }: LoaderOptions): Promise<LoadedBackend> {
  const wasm = await import("@tensorflow/tfjs-backend-wasm");
  // Read only when the backend is first created, and only by the threaded build, which TF.js never picks
  // under Deno (it counts as Node, where it disables threads): the single-threaded SIMD build runs instead.
  if (threads !== undefined) wasm.setThreadsCount(threads);
  try {
    await activate("wasm");
  } catch (error) {
    const reason = reasonOf(error);
    if (!reason.includes(WASM_BINARY_FAILURE)) throw error;
    // The first failure's real cause (Emscripten prints it above) is not in the rejection: say what it
    // means here.
    throw new Error(
      "the .wasm binary in node_modules/@tensorflow/tfjs-backend-wasm/dist could not be loaded " +
        `(is --allow-read given? the runtime's error is printed above): ${reason}`,
      { cause: error },
    );
  }
  registerWasmTrainingKernels();
  const used = wasm.getThreadsCount();
  if (threads !== undefined && used !== threads) {
    log(
      `note: the wasm backend runs ${used} thread(s), not ${threads}: its threaded build does not load here`,
    );
  }
  return { devices: [...CPU_DEVICES] };
}

async function loadCpu({ threads, log }: LoaderOptions): Promise<LoadedBackend> {
  await activate("cpu");
  if (threads !== undefined && threads !== 1) log(`note: the cpu backend runs 1 thread, not ${threads}`);
  return { devices: [...CPU_DEVICES] };
}

export const DEFAULT_BACKEND_LOADERS: BackendLoaders = {
  tensorflow: loadTensorflow,
  wasm: loadWasm,
  cpu: loadCpu,
};

function checkOptions(opts: InitBackendOptions): void {
  if (!BACKEND_CHOICES.includes(opts.backend)) {
    throw new GantryError(
      "E_CONFIG",
      `backend must be one of ${BACKEND_CHOICES.join(", ")}: current value is ${
        JSON.stringify(opts.backend)
      }`,
    );
  }
  if (opts.gpu !== undefined && !(Number.isInteger(opts.gpu) && opts.gpu >= 0)) {
    throw new GantryError("E_CONFIG", `gpu must be an integer >= 0: current value is ${opts.gpu}`);
  }
  if (opts.threads !== undefined && !(Number.isInteger(opts.threads) && opts.threads >= 1)) {
    throw new GantryError("E_CONFIG", `threads must be an integer >= 1: current value is ${opts.threads}`);
  }
}

/** Sets CUDA_VISIBLE_DEVICES; TensorFlow reads it once, when it loads, so this must come first. */
function pinGpu(gpu: number, log: (line: string) => void): void {
  try {
    Deno.env.set(CUDA_VISIBLE_DEVICES, String(gpu));
  } catch (error) {
    throw new GantryError(
      "E_BACKEND",
      `cannot pin GPU ${gpu} (${CUDA_VISIBLE_DEVICES}): ${errorMessage(error)}`,
      {
        cause: error,
      },
    );
  }
  log(`pinned to GPU ${gpu} (${CUDA_VISIBLE_DEVICES}=${gpu})`);
}

/**
 * `initBackend` with the loaders given: the tests pass failing loaders to exercise `auto`'s fallbacks
 * whatever this machine has.
 */
export async function initBackendWith(
  opts: InitBackendOptions,
  loaders: BackendLoaders,
): Promise<BackendInfo> {
  checkOptions(opts);
  const log = opts.log ?? logToStderr;
  if (opts.gpu !== undefined) pinGpu(opts.gpu, log);

  const order = opts.backend === "auto" ? AUTO_BACKEND_ORDER : [opts.backend];
  const fallbackReasons: string[] = [];
  for (const [i, name] of order.entries()) {
    let loaded: LoadedBackend;
    try {
      loaded = await loaders[name]({ threads: opts.threads, log });
      // A loader that returns without error but leaves TF.js elsewhere would make every number we report
      // about the backend wrong.
      if (tf.getBackend() !== name) throw new Error(`TF.js runs on '${tf.getBackend()}' after loading it`);
    } catch (error) {
      const reason = reasonOf(error);
      if (opts.backend !== "auto") {
        throw new GantryError(
          "E_BACKEND",
          `backend ${name} (asked for explicitly) failed to load: ${reason}`,
          {
            cause: error,
          },
        );
      }
      fallbackReasons.push(`${name}: ${reason}`);
      const next = order[i + 1];
      log(
        `WARNING: backend ${name} failed to load: ${reason}` +
          (next === undefined ? "" : `; falling back to ${next}`),
      );
      continue;
    }
    const info: BackendInfo = {
      name,
      tfjsVersion: tf.version.tfjs,
      ...(loaded.tfVersion === undefined ? {} : { tfVersion: loaded.tfVersion }),
      devices: loaded.devices,
      fallbackReasons,
    };
    log(
      `backend: ${name} (tfjs ${info.tfjsVersion}${
        info.tfVersion === undefined ? "" : `, TensorFlow ${info.tfVersion}`
      }` +
        `; devices: ${info.devices.join(", ")})`,
    );
    return info;
  }
  throw new GantryError("E_BACKEND", `no backend could be loaded: ${fallbackReasons.join("; ")}`);
}

/**
 * Initializes the backend `opts.backend` names, or with `auto` the first of tensorflow, wasm, cpu that
 * loads, and reports what runs. Throws GantryError E_BACKEND, naming the backend and the reason, when an
 * explicit choice (or, with `auto`, every backend) fails; E_CONFIG for a bad option.
 */
export function initBackend(opts: InitBackendOptions): Promise<BackendInfo> {
  return initBackendWith(opts, DEFAULT_BACKEND_LOADERS);
}
