/**
 * Where npm:@tensorflow/tfjs-node-gpu lives in this checkout (`"nodeModulesDir": "auto"` gives a local
 * node_modules) and where its native binding and TensorFlow libraries go. `deno task setup` builds into these
 * paths, and the loader checks them so that a missing build fails with a clear reason.
 */
import process from "node:process";
import { GantryError } from "../errors.ts";

export const TFJS_NODE_PACKAGE_NAME = "@tensorflow/tfjs-node-gpu";

/** The package folder, beside the checkout's deno.json (this file is shared/backends/). */
const PACKAGE_DIR_URL = new URL(`../../node_modules/${TFJS_NODE_PACKAGE_NAME}/`, import.meta.url);

export interface TfjsNodePackage {
  /** The package folder (through node_modules' symlink). */
  dir: string;
  /** The package's version, e.g. "4.22.0". */
  version: string;
  /** The N-API version of the binding this runtime loads (node-pre-gyp's choice). */
  napiVersion: number;
  /** Where tfjs-node's loader looks for the binding: `<dir>/lib/napi-v<napiVersion>/tfjs_binding.node`. */
  bindingPath: string;
  /** The TensorFlow shared libraries the binding links against (binding.gyp's `deps/lib`). */
  depsLibDir: string;
  /** The TensorFlow C headers the binding is compiled with (binding.gyp's `deps/include`). */
  depsIncludeDir: string;
  /** node-pre-gyp's package.json `binary` section (host and paths of the official prebuilt binding). */
  binary: BinaryConfig;
}

export interface BinaryConfig {
  module_name: string;
  module_path: string;
  host: string;
  remote_path: string;
  napi_versions: number[];
}

function urlToPath(url: URL): string {
  return decodeURIComponent(url.pathname);
}

/**
 * The N-API version node-pre-gyp picks: the highest of the package's `napi_versions` that the runtime
 * supports (Deno 2.9 reports 10, Node 20 reports 9; both pick 8 for tfjs-node 4.22).
 */
export function bestNapiVersion(supported: number[], runtimeNapi: number): number | undefined {
  const usable = supported.filter((v) => v <= runtimeNapi);
  return usable.length > 0 ? Math.max(...usable) : undefined;
}

/** Reads the installed package's package.json; throws E_BACKEND when the package is not installed. */
export function tfjsNodePackage(): TfjsNodePackage {
  const dir = urlToPath(PACKAGE_DIR_URL).replace(/\/$/, "");
  let pjson: { version: string; binary: BinaryConfig };
  try {
    pjson = JSON.parse(Deno.readTextFileSync(`${dir}/package.json`));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new GantryError(
        "E_BACKEND",
        `npm:${TFJS_NODE_PACKAGE_NAME} is not installed at ${dir}: run \`deno install\` then \`deno task setup\``,
      );
    }
    throw error;
  }
  const runtimeNapi = Number(process.versions.napi);
  const napiVersion = bestNapiVersion(pjson.binary.napi_versions, runtimeNapi);
  if (napiVersion === undefined) {
    throw new GantryError(
      "E_BACKEND",
      `this runtime's N-API version ${runtimeNapi} is older than every version ${TFJS_NODE_PACKAGE_NAME} ` +
        `supports (${pjson.binary.napi_versions.join(", ")})`,
    );
  }
  const modulePath = pjson.binary.module_path.replace("{napi_build_version}", String(napiVersion))
    .replace(/^\.\//, "");
  return {
    dir,
    version: pjson.version,
    napiVersion,
    bindingPath: `${dir}/${modulePath}/${pjson.binary.module_name}.node`,
    depsLibDir: `${dir}/deps/lib`,
    depsIncludeDir: `${dir}/deps/include`,
    binary: pjson.binary,
  };
}

/** Why the native backend cannot load here (its binding is not built), or undefined when it is there. */
export function nativeBindingMissing(): string | undefined {
  try {
    Deno.statSync(tfjsNodePackage().bindingPath);
    return undefined;
  } catch (error) {
    return error instanceof Deno.errors.NotFound
      ? "tfjs-node-gpu's binding is not built: run `deno task setup`"
      : String(error instanceof Error ? error.message : error);
  }
}
