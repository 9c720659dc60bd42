/**
 * The `tensorflow` backend: npm:@tensorflow/tfjs-node-gpu, TensorFlow's C library through tfjs-node's N-API
 * binding (CUDA where that TensorFlow has it, else CPU). Nothing here loads at import time: TensorFlow reads
 * its thread counts and CUDA_VISIBLE_DEVICES once, when it starts, so the caller sets those first (`--gpu N`
 * pins CUDA_VISIBLE_DEVICES before calling) and the package is imported only inside
 * `loadTensorflowBackend()`.
 *
 * Needs `--allow-read --allow-env --allow-ffi` (a native addon is FFI to Deno) and a built binding
 * (`deno task setup`).
 */
import { errorMessage, GantryError } from "../errors.ts";
import { installNodeShim } from "./node_shim.ts";
import { TFJS_NODE_PACKAGE_NAME, tfjsNodePackage } from "./tfjs_node_package.ts";

export const TENSORFLOW_BACKEND_NAME = "tensorflow";

export interface TensorflowBackendOptions {
  /** TensorFlow's intra-op threads (TF_NUM_INTRAOP_THREADS); TensorFlow's default (all cores) if unset. */
  threads?: number;
}

export interface TensorflowBackendInfo {
  /** The TensorFlow C library's own version (TF_Version()), e.g. "2.21.0". */
  tfVersion: string;
  /**
   * The devices TensorFlow sees, GPUs first, e.g. ["GPU:0", "CPU:0"] or ["CPU:0"]. tfjs-node runs every op
   * on the first GPU when there is one, else on the CPU: `devices[0]` is the device that computes.
   */
  devices: string[];
}

const ENV_INTRA_OP_THREADS = "TF_NUM_INTRAOP_THREADS";
const ENV_INTER_OP_THREADS = "TF_NUM_INTEROP_THREADS";
/**
 * Eager ops run one at a time on the caller's thread, so one inter-op thread is enough and leaves the cores
 * to the intra-op pools of the workers that share the machine.
 */
const DEFAULT_INTER_OP_THREADS = 1;
const ENV_LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL";
/** 1 hides TensorFlow's INFO banners (oneDNN, CPU instructions) but keeps its warnings and errors. */
const DEFAULT_LOG_LEVEL = "1";
const SETUP_HINT = "run `deno task setup`";
/** TensorFlow's full device names start with this; the short form ("CPU:0") is what we report. */
const DEVICE_NAME_PREFIX = /^\/job:[^/]+\/replica:\d+\/task:\d+\/device:/;

/** TensorFlow starts once per process: later calls get the first call's result (and its thread count). */
let loading: Promise<TensorflowBackendInfo> | undefined;

/**
 * Loads TensorFlow through tfjs-node-gpu, makes `tensorflow` the active tfjs backend and reports the
 * TensorFlow version and devices. Throws GantryError E_BACKEND with the reason when it cannot load, and
 * E_CONFIG for a bad thread count.
 */
export function loadTensorflowBackend(opts: TensorflowBackendOptions = {}): Promise<TensorflowBackendInfo> {
  const { threads } = opts;
  if (threads !== undefined && !(Number.isInteger(threads) && threads >= 1)) {
    return Promise.reject(
      new GantryError("E_CONFIG", `threads must be an integer >= 1: current value is ${threads}`),
    );
  }
  loading ??= load(threads);
  return loading;
}

async function load(threads: number | undefined): Promise<TensorflowBackendInfo> {
  let tf: typeof import("@tensorflow/tfjs-node-gpu");
  try {
    const pkg = tfjsNodePackage();
    if (!existsFile(pkg.bindingPath)) {
      throw new GantryError(
        "E_BACKEND",
        `${TFJS_NODE_PACKAGE_NAME}'s native binding is not built (no ${pkg.bindingPath}): ${SETUP_HINT}`,
      );
    }
    setDefaultEnv(ENV_LOG_LEVEL, DEFAULT_LOG_LEVEL);
    if (threads !== undefined) {
      Deno.env.set(ENV_INTRA_OP_THREADS, String(threads));
      setDefaultEnv(ENV_INTER_OP_THREADS, String(DEFAULT_INTER_OP_THREADS));
    }
    installNodeShim();
    tf = await import("@tensorflow/tfjs-node-gpu");
    if (!(await tf.setBackend(TENSORFLOW_BACKEND_NAME))) {
      throw new GantryError("E_BACKEND", `tfjs could not initialize the ${TENSORFLOW_BACKEND_NAME} backend`);
    }
    await tf.ready();
  } catch (error) {
    loading = undefined; // a later call (after `deno task setup`, say) tries again
    throw error instanceof GantryError ? error : new GantryError("E_BACKEND", explainLoadError(error), {
      cause: error,
    });
  }
  const binding = (tf.backend() as unknown as { binding: TfjsBinding }).binding;
  return { tfVersion: binding.TF_Version, devices: listDevices(binding) };
}

/** The parts of tfjs-node's binding (binding/tfjs_binding.cc) used here. */
interface TfjsBinding {
  TF_Version: string;
  isUsingGpuDevice(): boolean;
}

function existsFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

function setDefaultEnv(name: string, value: string): void {
  if (Deno.env.get(name) === undefined) Deno.env.set(name, value);
}

/** Turns what Deno, the dynamic loader or tfjs-node threw into a reason with the fix. */
function explainLoadError(error: unknown): string {
  const message = errorMessage(error);
  if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
    return `${TFJS_NODE_PACKAGE_NAME} needs --allow-ffi --allow-read --allow-env (${message})`;
  }
  if (/cannot open shared object file|libtensorflow/.test(message)) {
    return `the binding cannot load TensorFlow's libraries (${message}): ${SETUP_HINT}`;
  }
  if (/undefined symbol/.test(message)) {
    return `the binding does not match TensorFlow's libraries (${message}): ${SETUP_HINT} -- --force`;
  }
  if (/tfjs_binding\.node\) can not be found/.test(message)) {
    return `${TFJS_NODE_PACKAGE_NAME}'s native binding is not built: ${SETUP_HINT}`;
  }
  return `cannot load ${TFJS_NODE_PACKAGE_NAME}: ${message}`;
}

/**
 * Lists TensorFlow's devices. The binding does not expose them, so this asks the TensorFlow library that the
 * binding loaded through its C API: a throwaway eager context, TFE_ContextListDevices, then cleanup. The
 * library is opened by its link name in the package's deps/lib, where the binding's rpath points; the
 * dynamic loader recognizes the file (same inode) and hands back the copy already loaded, never a second
 * one. If that is not possible it falls back to the binding's own answer: "GPU" or "CPU".
 */
function listDevices(binding: TfjsBinding): string[] {
  try {
    const library = `${tfjsNodePackage().depsLibDir}/${TENSORFLOW_LINK_NAME}`;
    if (existsFile(library)) {
      const devices = listDevicesWithCApi(library);
      if (devices.length > 0) return devices;
    }
  } catch {
    // The fallback below is still true, only less detailed.
  }
  return [binding.isUsingGpuDevice() ? "GPU" : "CPU"];
}

/** binding.gyp links `-ltensorflow`: deps/lib/libtensorflow.so is the library the binding uses. */
const TENSORFLOW_LINK_NAME = "libtensorflow.so";

const C_API_SYMBOLS = {
  TF_NewStatus: { parameters: [], result: "pointer" },
  TF_DeleteStatus: { parameters: ["pointer"], result: "void" },
  TF_GetCode: { parameters: ["pointer"], result: "i32" },
  TF_Message: { parameters: ["pointer"], result: "pointer" },
  TFE_NewContextOptions: { parameters: [], result: "pointer" },
  TFE_DeleteContextOptions: { parameters: ["pointer"], result: "void" },
  TFE_NewContext: { parameters: ["pointer", "pointer"], result: "pointer" },
  TFE_DeleteContext: { parameters: ["pointer"], result: "void" },
  TFE_ContextListDevices: { parameters: ["pointer", "pointer"], result: "pointer" },
  TF_DeviceListCount: { parameters: ["pointer"], result: "i32" },
  TF_DeviceListName: { parameters: ["pointer", "i32", "pointer"], result: "pointer" },
  TF_DeleteDeviceList: { parameters: ["pointer"], result: "void" },
} as const satisfies Deno.ForeignLibraryInterface;

const TF_OK = 0;

function listDevicesWithCApi(libraryPath: string): string[] {
  const library = Deno.dlopen(libraryPath, C_API_SYMBOLS);
  const c = library.symbols;
  const status = c.TF_NewStatus();
  const check = (what: string) => {
    if (c.TF_GetCode(status) !== TF_OK) {
      const message = c.TF_Message(status);
      throw new Error(`${what}: ${message === null ? "?" : Deno.UnsafePointerView.getCString(message)}`);
    }
  };
  const options = c.TFE_NewContextOptions();
  try {
    const context = c.TFE_NewContext(options, status);
    check("TFE_NewContext");
    try {
      const list = c.TFE_ContextListDevices(context, status);
      check("TFE_ContextListDevices");
      try {
        const names: string[] = [];
        for (let i = 0; i < c.TF_DeviceListCount(list); i++) {
          const name = c.TF_DeviceListName(list, i, status);
          check("TF_DeviceListName");
          if (name !== null) {
            names.push(Deno.UnsafePointerView.getCString(name).replace(DEVICE_NAME_PREFIX, ""));
          }
        }
        // GPUs first: the binding computes on the first GPU when there is one.
        return [...names.filter((n) => n.startsWith("GPU")), ...names.filter((n) => !n.startsWith("GPU"))];
      } finally {
        c.TF_DeleteDeviceList(list);
      }
    } finally {
      c.TFE_DeleteContext(context);
    }
  } finally {
    c.TFE_DeleteContextOptions(options);
    c.TF_DeleteStatus(status);
    library.close();
  }
}
