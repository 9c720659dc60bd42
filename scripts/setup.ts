/**
 * `deno task setup`: makes the `tensorflow` backend (npm:@tensorflow/tfjs-node-gpu) loadable without the
 * download its install script insists on. In order, stopping at the first that works:
 *
 *   (a) check     the binding is already built and loads: say so and stop (a re-run takes about a second);
 *   (b) prebuilt  the official prebuilt binding + libtensorflow 2.9.1, only if their host answers quickly;
 *   (c) build     tfjs-node's N-API binding compiled against a TensorFlow we have: `--tensorflow PATH` (a
 *                 wheel, or an installed `tensorflow` package folder as `tf.sysconfig.get_lib()` prints),
 *                 else $TENSORFLOW_PATH, else the Python `tensorflow` package python3 finds, else the
 *                 TensorFlow 2.21 CPU wheel from `pip download` (cached with its extracted files in .cache/);
 *   (d) verify    after (b) or (c): load it in a fresh `deno run` with the workers' permissions, run an op;
 *   (e) fallback  when nothing worked: say loudly why, and that workers will use wasm. Exit status 0 (so CI
 *                 goes on) unless --strict.
 *
 * The package's own install script is never run: it downloads libtensorflow and fails offline.
 *
 * Usage: deno task setup [--tensorflow PATH] [--force] [--no-prebuilt] [--nodedir DIR] [--strict]
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { errorMessage } from "../shared/errors.ts";
import { type TfjsNodePackage, tfjsNodePackage } from "../shared/backends/tfjs_node_package.ts";

// --- What we build against and where things go --------------------------------------------------------

/** The TensorFlow that pip's local index serves on every machine of ours (CPU only; `tensorflow` has CUDA). */
const TENSORFLOW_PIP_SPEC = "tensorflow_cpu==2.21.0";
const TENSORFLOW_PIP_WHEEL = /^tensorflow_cpu-2\.21\.0-.+\.whl$/;
const REPO_DIR = decodeURIComponent(new URL("..", import.meta.url).pathname).replace(/\/$/, "");
const CACHE_DIR = `${REPO_DIR}/.cache/tensorflow`;
const WHEEL_CACHE_DIR = `${CACHE_DIR}/wheels`;
const EXTRACT_CACHE_DIR = `${CACHE_DIR}/extracted`;
const PREBUILT_CACHE_DIR = `${CACHE_DIR}/prebuilt`;
const BUILD_LOG = `${CACHE_DIR}/build.log`;
/** Written into an extraction folder once it is complete, so an interrupted extraction is redone. */
const EXTRACTED_MARKER = ".gantry-complete";
/** Written into the package's deps/ after a verified setup: what the binding was built from. */
const STAMP_FILE = "gantry-setup.json";

/** The two libraries of a TensorFlow wheel that hold the C API, and the names binding.gyp links them by (-l). */
const TF_LIBRARIES = ["libtensorflow_cc.so.2", "libtensorflow_framework.so.2"];
const TF_LINK_NAMES: Record<string, string> = {
  "libtensorflow.so": "libtensorflow_cc.so.2",
  "libtensorflow_framework.so": "libtensorflow_framework.so.2",
};
/**
 * The headers the binding includes (tensorflow/c/c_api.h, eager/c_api.h and what they include), relative to
 * a TensorFlow package's include/ folder: whole folders, or the files of a folder that start with `prefix`.
 * Copying these few (70 files for 2.21) instead of include/ (13,000 files, 270 MB) keeps the cache small.
 */
const HEADER_SETS: { dir: string; prefix?: string }[] = [
  { dir: "tensorflow/c" },
  { dir: "xla/tsl/c" },
  { dir: "tensorflow/core/platform", prefix: "ctstring" },
  { dir: "tsl/platform", prefix: "ctstring" },
  { dir: "tensorflow/tsl/platform", prefix: "ctstring" },
];
const C_API_HEADER = "tensorflow/c/c_api.h";

// --- The official prebuilt route ------------------------------------------------------------------------

const PREBUILT_PROBE_URL = "https://storage.googleapis.com/";
/** How long the prebuilt host gets to answer before we assume it is unreachable (it is, on our machines). */
const PREBUILT_PROBE_TIMEOUT_MS = 5_000;
const PREBUILT_DOWNLOAD_TIMEOUT_MS = 15 * 60_000;
/** What the package's scripts/install.js downloads for `gpu` on linux-x86_64 (deps-constants.js). */
const PREBUILT_LIBTENSORFLOW_URL =
  "https://storage.googleapis.com/tensorflow/libtensorflow/libtensorflow-gpu-linux-x86_64-2.9.1.tar.gz";
/** scripts/get-addon-name.js: the prebuilt binding's tarball under binary.host + binary.remote_path. */
const prebuiltAddonName = (version: string) => `GPU-linux-${version}.tar.gz`;

// --- Limits ---------------------------------------------------------------------------------------------

const VERIFY_TIMEOUT_MS = 180_000;
const BUILD_TIMEOUT_MS = 20 * 60_000;
const PIP_TIMEOUT_MS = 20 * 60_000;
const EXTRACT_TIMEOUT_MS = 10 * 60_000;
const BUILD_LOG_TAIL_LINES = 30;
/** tfjs-node-gpu 4.22 depends on @mapbox/node-pre-gyp 1.0.9, which drives node-gyp. */
const NODE_PRE_GYP_BIN = "@mapbox/node-pre-gyp/bin/node-pre-gyp";
/** The verifying child prints its result on one stdout line after this tag. */
const PROBE_TAG = "GANTRY_TENSORFLOW_PROBE ";
/** The verifying child runs with the permissions a worker has, no more. */
const PROBE_PERMISSIONS = ["--allow-read", "--allow-env", "--allow-ffi"];

// --- Small helpers ---------------------------------------------------------------------------------------

interface StageTime {
  stage: string;
  seconds: number;
  outcome: string;
}
const stageTimes: StageTime[] = [];

function log(message: string): void {
  console.log(`[setup] ${message}`);
}

/** Runs one stage, prints and records how long it took and how it ended. */
async function stage<T>(name: string, fn: () => Promise<T>, outcome: (value: T) => string): Promise<T> {
  const start = performance.now();
  try {
    const value = await fn();
    record(name, start, outcome(value));
    return value;
  } catch (error) {
    record(name, start, `failed: ${errorMessage(error)}`);
    throw error;
  }
}

function record(stage: string, start: number, outcome: string): void {
  const seconds = (performance.now() - start) / 1000;
  stageTimes.push({ stage, seconds, outcome });
  log(`${stage}: ${outcome} (${seconds.toFixed(2)} s)`);
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

function isDirectory(path: string): boolean {
  return exists(path) && Deno.statSync(path).isDirectory;
}

function removeIfExists(path: string): void {
  try {
    Deno.removeSync(path, { recursive: true });
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion; `timeoutMs` kills it (the result then says so). */
async function run(
  command: string,
  args: string[],
  opts: { cwd?: string; env?: Record<string, string>; timeoutMs: number },
): Promise<RunResult> {
  const child = new Deno.Command(command, {
    args,
    cwd: opts.cwd,
    env: opts.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(opts.timeoutMs),
  });
  let output: Deno.CommandOutput;
  try {
    output = await child.output();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) throw new Error(`${command} is not installed (not on PATH)`);
    throw error;
  }
  const decoder = new TextDecoder();
  const result = {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
  if (output.signal !== null) {
    throw new Error(
      `${command} ${args.join(" ")} was stopped by ${output.signal} (limit ${opts.timeoutMs} ms)`,
    );
  }
  return result;
}

function lastLines(text: string, count: number): string {
  return text.trimEnd().split("\n").slice(-count).join("\n");
}

// --- (a)/(d): does the binding load? ----------------------------------------------------------------------

interface ProbeResult {
  tfVersion: string;
  devices: string[];
  backend: string;
}

/**
 * Loads the backend in a fresh `deno run` with a worker's permissions and runs one matMul. A fresh process,
 * because a native library that fails to load, or crashes, must not take this script with it.
 */
async function probe(): Promise<ProbeResult> {
  const self = decodeURIComponent(new URL(import.meta.url).pathname);
  const result = await run(
    Deno.execPath(),
    ["run", "--quiet", "--no-prompt", ...PROBE_PERMISSIONS, self, "--probe"],
    { cwd: REPO_DIR, timeoutMs: VERIFY_TIMEOUT_MS },
  );
  const line = result.stdout.split("\n").find((l) => l.startsWith(PROBE_TAG));
  if (line === undefined) {
    throw new Error(
      `the probe process exited with status ${result.code} and no result:\n${lastLines(result.stderr, 10)}`,
    );
  }
  const parsed = JSON.parse(line.slice(PROBE_TAG.length));
  if (!parsed.ok) throw new Error(parsed.reason);
  return parsed as ProbeResult;
}

/** The child side of probe(): `scripts/setup.ts --probe`. Prints one tagged JSON line. */
async function probeChild(): Promise<number> {
  try {
    const { loadTensorflowBackend } = await import("../shared/backends/tensorflow.ts");
    const info = await loadTensorflowBackend({ threads: 1 });
    const tf = await import("@tensorflow/tfjs-core");
    const product = tf.matMul(tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[5, 6], [7, 8]]));
    const values = Array.from(await product.data());
    const expected = [19, 22, 43, 50];
    if (values.join() !== expected.join()) {
      throw new Error(`matMul gave [${values}] instead of [${expected}]`);
    }
    console.log(PROBE_TAG + JSON.stringify({ ok: true, backend: tf.getBackend(), ...info }));
    return 0;
  } catch (error) {
    console.log(PROBE_TAG + JSON.stringify({ ok: false, reason: errorMessage(error) }));
    return 1;
  }
}

function describe(result: ProbeResult): string {
  return `TensorFlow ${result.tfVersion} on ${result.devices.join(", ")} (tfjs backend "${result.backend}")`;
}

// --- Stamp: what the current binding was built from --------------------------------------------------------

interface Stamp {
  route: "prebuilt" | "build";
  source: string;
  tfVersion: string;
  devices: string[];
  builtAt: string;
}

function readStamp(pkg: TfjsNodePackage): Stamp | undefined {
  try {
    return JSON.parse(Deno.readTextFileSync(`${pkg.dir}/deps/${STAMP_FILE}`));
  } catch {
    return undefined;
  }
}

function writeStamp(pkg: TfjsNodePackage, stamp: Stamp): void {
  Deno.writeTextFileSync(`${pkg.dir}/deps/${STAMP_FILE}`, JSON.stringify(stamp, null, 2) + "\n");
}

// --- (b) the official prebuilt binding --------------------------------------------------------------------

async function hostAnswers(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, {
      method: "HEAD",
      signal: AbortSignal.timeout(PREBUILT_PROBE_TIMEOUT_MS),
    });
    await response.body?.cancel();
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
      log(`no network permission for ${new URL(url).host}: the prebuilt route is skipped`);
    }
    return false;
  }
}

async function download(url: string, path: string): Promise<void> {
  const response = await fetch(url, { signal: AbortSignal.timeout(PREBUILT_DOWNLOAD_TIMEOUT_MS) });
  if (!response.ok || response.body === null) {
    await response.body?.cancel();
    throw new Error(`GET ${url}: HTTP ${response.status}`);
  }
  const partial = `${path}.partial`;
  const file = await Deno.open(partial, { write: true, create: true, truncate: true });
  await response.body.pipeTo(file.writable);
  Deno.renameSync(partial, path);
}

async function untar(tarball: string, into: string, stripComponents = 0): Promise<void> {
  Deno.mkdirSync(into, { recursive: true });
  const args = ["-xzf", tarball, "-C", into, `--strip-components=${stripComponents}`];
  const result = await run("tar", args, { timeoutMs: EXTRACT_TIMEOUT_MS });
  if (result.code !== 0) throw new Error(`tar ${args.join(" ")}: ${lastLines(result.stderr, 5)}`);
}

/** Downloads what scripts/install.js would, into the same places, without running it. */
async function installPrebuilt(pkg: TfjsNodePackage): Promise<void> {
  Deno.mkdirSync(PREBUILT_CACHE_DIR, { recursive: true });
  const remotePath = pkg.binary.remote_path.replace("{napi_build_version}", String(pkg.napiVersion))
    .replace("{version}", pkg.version).replace(/^\.\//, "");
  const addonUrl = new URL(remotePath + prebuiltAddonName(pkg.version), pkg.binary.host + "/").href;
  const libTarball = `${PREBUILT_CACHE_DIR}/${PREBUILT_LIBTENSORFLOW_URL.split("/").pop()}`;
  const addonTarball = `${PREBUILT_CACHE_DIR}/${prebuiltAddonName(pkg.version)}`;
  for (const [url, path] of [[PREBUILT_LIBTENSORFLOW_URL, libTarball], [addonUrl, addonTarball]]) {
    if (!exists(path)) {
      log(`downloading ${url}`);
      await download(url, path);
    }
  }
  cleanPackageBuild(pkg);
  await untar(libTarball, `${pkg.dir}/deps`);
  // node-pre-gyp packs `napi-v8/tfjs_binding.node` and unpacks it with strip 1 into the module path.
  await untar(addonTarball, pkg.bindingPath.slice(0, pkg.bindingPath.lastIndexOf("/")), 1);
}

// --- (c) build against a TensorFlow we have ---------------------------------------------------------------

/** A TensorFlow package folder: libtensorflow_cc.so.2, libtensorflow_framework.so.2 and include/. */
interface TensorflowSource {
  /** What the user gave or we found (wheel or folder), recorded in the stamp. */
  origin: string;
  /** How it was found, for the log. */
  how: string;
  kind: "wheel" | "folder";
}

/** --tensorflow, then $TENSORFLOW_PATH, then python3's `tensorflow`, then the cached or downloaded wheel. */
async function findTensorflow(explicit: string | undefined): Promise<TensorflowSource> {
  if (explicit !== undefined) return classify(explicit, "--tensorflow");
  const fromEnv = Deno.env.get("TENSORFLOW_PATH");
  if (fromEnv) return classify(fromEnv, "$TENSORFLOW_PATH");
  const installed = await findInstalledTensorflow();
  if (installed !== undefined) {
    return { origin: installed, how: "python3's installed tensorflow", kind: "folder" };
  }
  const cached = cachedWheel();
  if (cached !== undefined) return { origin: cached, how: "cached wheel", kind: "wheel" };
  return { origin: await pipDownload(), how: `pip download ${TENSORFLOW_PIP_SPEC}`, kind: "wheel" };
}

function classify(path: string, how: string): TensorflowSource {
  // `deno task` runs in the folder of deno.json and keeps the caller's folder in INIT_CWD.
  const absolute = path.startsWith("/") ? path : `${Deno.env.get("INIT_CWD") ?? Deno.cwd()}/${path}`;
  if (!exists(absolute)) throw new Error(`${how}: ${path} does not exist`);
  return classifyExisting(Deno.realPathSync(absolute), path, how);
}

function classifyExisting(absolute: string, path: string, how: string): TensorflowSource {
  if (absolute.endsWith(".whl")) return { origin: absolute, how, kind: "wheel" };
  // Accept the site-packages folder too, not only site-packages/tensorflow.
  for (const folder of [absolute, `${absolute}/tensorflow`]) {
    if (exists(`${folder}/${TF_LIBRARIES[0]}`)) {
      return { origin: folder.replace(/\/+$/, ""), how, kind: "folder" };
    }
  }
  throw new Error(
    `${how}: ${path} is neither a TensorFlow wheel (.whl) nor a TensorFlow package folder with ` +
      `${
        TF_LIBRARIES[0]
      } (the folder \`python3 -c "import tensorflow as tf; print(tf.sysconfig.get_lib())"\` prints)`,
  );
}

/** Finds python3's `tensorflow` package without importing it (an import takes seconds and logs banners). */
async function findInstalledTensorflow(): Promise<string | undefined> {
  const script = "import importlib.util as u\ns = u.find_spec('tensorflow')\n" +
    "print(s.submodule_search_locations[0] if s and s.submodule_search_locations else '')";
  try {
    const result = await run("python3", ["-c", script], { timeoutMs: 30_000 });
    const folder = result.stdout.trim();
    if (result.code === 0 && folder && exists(`${folder}/${TF_LIBRARIES[0]}`)) return folder;
  } catch {
    // No python3: fall through to the wheel.
  }
  return undefined;
}

function cachedWheel(): string | undefined {
  if (!isDirectory(WHEEL_CACHE_DIR)) return undefined;
  for (const entry of Deno.readDirSync(WHEEL_CACHE_DIR)) {
    if (entry.isFile && TENSORFLOW_PIP_WHEEL.test(entry.name)) return `${WHEEL_CACHE_DIR}/${entry.name}`;
  }
  return undefined;
}

async function pipDownload(): Promise<string> {
  Deno.mkdirSync(WHEEL_CACHE_DIR, { recursive: true });
  const args = ["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", TENSORFLOW_PIP_SPEC];
  const result = await run("python3", [...args, "-d", WHEEL_CACHE_DIR], { timeoutMs: PIP_TIMEOUT_MS });
  if (result.code !== 0) {
    throw new Error(`python3 ${args.join(" ")} failed:\n${lastLines(result.stderr, 10)}`);
  }
  const wheel = cachedWheel();
  if (wheel === undefined) {
    throw new Error(`pip download left no ${TENSORFLOW_PIP_WHEEL} in ${WHEEL_CACHE_DIR}`);
  }
  return wheel;
}

/** Python's zipfile, which every python3 has: extracts only the two libraries and the headers we need. */
const EXTRACT_SCRIPT = `
import json, os, shutil, sys, zipfile
wheel, dest, libraries, header_sets = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
def wanted(rel):
    if rel in libraries:
        return True
    if not rel.startswith("include/"):
        return False
    rel = rel[len("include/"):]
    for s in header_sets:
        d = s["dir"] + "/"
        if rel.startswith(d) and (("prefix" not in s and not rel.endswith("/")) or
                                   ("prefix" in s and "/" not in rel[len(d):] and rel[len(d):].startswith(s["prefix"]))):
            return True
    return False
count = 0
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        if not info.filename.startswith("tensorflow/") or info.is_dir():
            continue
        rel = info.filename[len("tensorflow/"):]
        if not wanted(rel):
            continue
        target = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with z.open(info) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        count += 1
print(count)
`;

/** A wheel is extracted once into .cache/tensorflow/extracted/<wheel name>/; a folder is used in place. */
async function tensorflowFolder(source: TensorflowSource): Promise<{ folder: string; note: string }> {
  if (source.kind === "folder") {
    return { folder: source.origin, note: "installed package folder, used in place" };
  }
  const name = source.origin.slice(source.origin.lastIndexOf("/") + 1).replace(/\.whl$/, "");
  const folder = `${EXTRACT_CACHE_DIR}/${name}`;
  if (exists(`${folder}/${EXTRACTED_MARKER}`)) return { folder, note: `cached in ${folder}` };
  removeIfExists(folder);
  Deno.mkdirSync(folder, { recursive: true });
  const result = await run(
    "python3",
    ["-c", EXTRACT_SCRIPT, source.origin, folder, JSON.stringify(TF_LIBRARIES), JSON.stringify(HEADER_SETS)],
    { timeoutMs: EXTRACT_TIMEOUT_MS },
  );
  if (result.code !== 0) {
    throw new Error(`extracting ${source.origin} failed:\n${lastLines(result.stderr, 10)}`);
  }
  Deno.writeTextFileSync(`${folder}/${EXTRACTED_MARKER}`, "");
  return { folder, note: `extracted ${result.stdout.trim()} files into ${folder}` };
}

/** The version of a wheel (from its name) or of a package folder (from its sibling .dist-info). */
function tensorflowVersion(source: TensorflowSource): string {
  const name = source.origin.slice(source.origin.lastIndexOf("/") + 1);
  const fromWheel = /^[A-Za-z_]+-(\d[^-]*)-/.exec(name);
  if (source.kind === "wheel" && fromWheel) return fromWheel[1];
  const parent = source.origin.slice(0, source.origin.lastIndexOf("/"));
  try {
    for (const entry of Deno.readDirSync(parent)) {
      const match = /^(?:tensorflow|tf_nightly|intel_tensorflow)[\w]*-(\d[^-]*)\.dist-info$/.exec(entry.name);
      if (match) return match[1];
    }
  } catch {
    // Unknown version: the verify stage reports the real one.
  }
  return "unknown version";
}

/** Whether this run has replaced what was in the package (then an old binding is gone). */
let packageTouched = false;

/** Removes everything a previous setup put into the package (never the package's own files). */
function cleanPackageBuild(pkg: TfjsNodePackage): void {
  packageTouched = true;
  const folders = ["deps", "lib", "build", `build-tmp-napi-v${pkg.napiVersion}`];
  for (const folder of folders) removeIfExists(`${pkg.dir}/${folder}`);
}

/**
 * Lays out deps/ as binding.gyp expects: deps/lib with the two libraries (hard links where the file system
 * allows, else copies: a symlink into a cache or a site-packages would break when those change) and under
 * the names it links (-ltensorflow -ltensorflow_framework); deps/include with the headers.
 */
function stageDeps(pkg: TfjsNodePackage, folder: string): string {
  for (const library of TF_LIBRARIES) {
    if (!exists(`${folder}/${library}`)) throw new Error(`${folder} has no ${library}`);
  }
  if (!exists(`${folder}/include/${C_API_HEADER}`)) {
    throw new Error(`${folder} has no include/${C_API_HEADER}`);
  }
  cleanPackageBuild(pkg);
  Deno.mkdirSync(pkg.depsLibDir, { recursive: true });
  let copied = 0;
  for (const library of TF_LIBRARIES) {
    try {
      Deno.linkSync(`${folder}/${library}`, `${pkg.depsLibDir}/${library}`);
    } catch {
      Deno.copyFileSync(`${folder}/${library}`, `${pkg.depsLibDir}/${library}`);
      copied++;
    }
  }
  // Hard links rather than symlinks: the linker only needs the file, the binding records the library's
  // SONAME (libtensorflow_cc.so.2), and Deno allows symlinks only with unscoped --allow-write.
  for (const [name, target] of Object.entries(TF_LINK_NAMES)) {
    Deno.linkSync(`${pkg.depsLibDir}/${target}`, `${pkg.depsLibDir}/${name}`);
  }
  let headers = 0;
  for (const set of HEADER_SETS) {
    const from = `${folder}/include/${set.dir}`;
    if (isDirectory(from)) headers += copyTree(from, `${pkg.depsIncludeDir}/${set.dir}`, set.prefix);
  }
  return `${TF_LIBRARIES.length} libraries (${copied === 0 ? "hard-linked" : `${copied} copied`}), ` +
    `${headers} headers`;
}

/** Copies a folder (recursively), or only its files starting with `prefix`; returns the number of files. */
function copyTree(from: string, to: string, prefix?: string): number {
  let count = 0;
  Deno.mkdirSync(to, { recursive: true });
  for (const entry of Deno.readDirSync(from)) {
    if (prefix !== undefined) {
      if (entry.isFile && entry.name.startsWith(prefix)) {
        Deno.copyFileSync(`${from}/${entry.name}`, `${to}/${entry.name}`);
        count++;
      }
    } else if (entry.isDirectory) {
      count += copyTree(`${from}/${entry.name}`, `${to}/${entry.name}`);
    } else if (entry.isFile) {
      Deno.copyFileSync(`${from}/${entry.name}`, `${to}/${entry.name}`);
      count++;
    }
  }
  return count;
}

/** The prefix under which Node's headers are installed (include/node/node_api.h), for node-gyp's --nodedir. */
async function findNodeDir(explicit: string | undefined): Promise<string | undefined> {
  const hasHeaders = (dir: string) => exists(`${dir}/include/node/node_api.h`);
  for (const dir of [explicit, Deno.env.get("npm_config_nodedir")]) {
    if (dir) {
      if (!hasHeaders(dir)) throw new Error(`--nodedir ${dir} has no include/node/node_api.h`);
      return dir;
    }
  }
  const result = await run("node", ["-p", "process.execPath"], { timeoutMs: 30_000 });
  const prefix = result.stdout.trim().replace(/\/bin\/[^/]+$/, "");
  return hasHeaders(prefix) ? prefix : undefined;
}

/**
 * Finds a file of one of the package's dependencies as Node would: in the node_modules folders above the
 * package's real folder (Deno's layout puts them beside it, in node_modules/.deno/<package>/node_modules/).
 */
function resolveDependency(packageDir: string, file: string): string | undefined {
  let dir = Deno.realPathSync(packageDir);
  while (dir.includes("/")) {
    const base = dir.endsWith("/node_modules") ? dir : `${dir}/node_modules`;
    if (exists(`${base}/${file}`)) return `${base}/${file}`;
    dir = dir.slice(0, dir.lastIndexOf("/"));
  }
  return undefined;
}

/** node-pre-gyp rebuild, as the package's `build-addon-from-source` script but without its install step. */
async function buildBinding(pkg: TfjsNodePackage, nodeDir: string | undefined): Promise<string> {
  const nodePreGyp = resolveDependency(pkg.dir, NODE_PRE_GYP_BIN);
  if (nodePreGyp === undefined) {
    throw new Error(`${NODE_PRE_GYP_BIN} is not installed beside ${pkg.dir}: run \`deno install\``);
  }
  const args = [nodePreGyp, "rebuild", "--build-from-source", "--build-latest-napi-version-only"];
  if (nodeDir !== undefined) args.push(`--nodedir=${nodeDir}`);
  else log("no installed Node headers found: node-gyp will try to download them");
  log(`node ${args.join(" ")}  (log: ${BUILD_LOG})`);
  const result = await run("node", args, {
    cwd: pkg.dir,
    env: { JOBS: String(navigator.hardwareConcurrency) },
    timeoutMs: BUILD_TIMEOUT_MS,
  });
  Deno.writeTextFileSync(BUILD_LOG, `${result.stdout}\n${result.stderr}`);
  if (result.code !== 0 || !exists(pkg.bindingPath)) {
    throw new Error(
      `node-pre-gyp exited with status ${result.code}` +
        (exists(pkg.bindingPath) ? "" : ` and no ${pkg.bindingPath}`) +
        `; the end of ${BUILD_LOG}:\n${
          lastLines(`${result.stdout}\n${result.stderr}`, BUILD_LOG_TAIL_LINES)
        }`,
    );
  }
  return `built ${pkg.bindingPath.slice(pkg.dir.length + 1)} (N-API ${pkg.napiVersion})`;
}

// --- (e) the loud fallback --------------------------------------------------------------------------------

/** Says loudly what failed and why; `stillWorking` when an earlier binding remains usable. */
function printFallback(reasons: string[], stillWorking?: string): void {
  const rule = "!".repeat(100);
  const consequence = stillWorking === undefined
    ? [
      "!! gantry setup: the native `tensorflow` backend is NOT available on this machine.",
      "!! Workers with --backend auto will use the wasm backend (slower); --backend tensorflow will fail.",
    ]
    : [
      "!! gantry setup: the requested setup FAILED; the binding that was in place is kept.",
      `!! It still works: ${stillWorking}.`,
    ];
  console.error(
    [
      "",
      rule,
      ...consequence,
      "!! Why:",
      ...reasons.flatMap((r) => r.split("\n").map((line, i) => `!!   ${i === 0 ? "- " : "  "}${line}`)),
      "!! Fix: see docs/native-backend.md; e.g. `deno task setup --tensorflow /path/to/tensorflow.whl`.",
      rule,
      "",
    ].join("\n"),
  );
}

function printTimes(): void {
  const total = stageTimes.reduce((sum, t) => sum + t.seconds, 0);
  log(
    `stage times: ${stageTimes.map((t) => `${t.stage} ${t.seconds.toFixed(2)} s`).join(", ")}; ` +
      `total ${total.toFixed(2)} s`,
  );
}

// --- main --------------------------------------------------------------------------------------------------

const USAGE = `deno task setup [options]: make the native tensorflow backend (tfjs-node-gpu) loadable

  --tensorflow PATH  build against this TensorFlow: a wheel (.whl) or an installed tensorflow package folder
                     (what tf.sysconfig.get_lib() prints); default $TENSORFLOW_PATH, else python3's
                     tensorflow, else pip download ${TENSORFLOW_PIP_SPEC}
  --force            rebuild even if the binding already loads
  --no-prebuilt      do not try the official prebuilt download
  --nodedir DIR      the prefix of Node's headers (DIR/include/node); default: found from \`node\`
  --strict           exit with status 1 when the backend cannot be made available (default 0: CI goes on)
  --help             this text`;

interface Options {
  tensorflow?: string;
  force: boolean;
  prebuilt: boolean;
  nodedir?: string;
  strict: boolean;
}

function parseOptions(args: string[]): Options | undefined {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      tensorflow: { type: "string" },
      force: { type: "boolean", default: false },
      "no-prebuilt": { type: "boolean", default: false },
      nodedir: { type: "string" },
      strict: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) return undefined;
  return {
    tensorflow: values.tensorflow,
    force: values.force,
    prebuilt: !values["no-prebuilt"],
    nodedir: values.nodedir,
    strict: values.strict,
  };
}

async function setup(opts: Options): Promise<boolean> {
  const reasons: string[] = [];
  let pkg: TfjsNodePackage;
  try {
    pkg = await stage(
      "locate package",
      () => Promise.resolve(tfjsNodePackage()),
      (p) => `${p.dir} ${p.version}`,
    );
  } catch (error) {
    printFallback([errorMessage(error)]);
    return false;
  }
  // (a) Already done? An explicit --tensorflow different from what the binding was built from means rebuild.
  const explicit = opts.tensorflow ?? Deno.env.get("TENSORFLOW_PATH");
  const stamp = readStamp(pkg);
  const wantsOther = explicit !== undefined && stamp?.source !== classifyQuietly(explicit);
  let existingTried = false;
  if (!opts.force && !wantsOther && exists(pkg.bindingPath)) {
    existingTried = true;
    try {
      await stage("check", probe, (r) => `already set up: ${describe(r)}`);
      log(
        `nothing to do (${stamp ? `${stamp.route} from ${stamp.source}` : "built by other means"}); ` +
          "use --force to rebuild",
      );
      printTimes();
      return true;
    } catch (error) {
      reasons.push(`the existing binding does not load: ${errorMessage(error)}`);
    }
  } else {
    const why = opts.force
      ? "--force"
      : wantsOther
      ? `a different TensorFlow was asked for`
      : "no binding yet";
    record("check", performance.now(), `build needed (${why})`);
  }
  if (process.platform !== "linux" || process.arch !== "x64") {
    reasons.push(`this setup builds for linux-x64 only (this is ${process.platform}-${process.arch})`);
    printFallback(reasons);
    return false;
  }

  // (b) The official prebuilt binding, only when its host answers and no particular TensorFlow was asked for.
  if (opts.prebuilt && explicit === undefined) {
    const reachable = await stage(
      "prebuilt: reach host",
      () => hostAnswers(PREBUILT_PROBE_URL),
      (ok) => ok ? "reachable" : `unreachable within ${PREBUILT_PROBE_TIMEOUT_MS / 1000} s: skipped`,
    );
    if (reachable) {
      try {
        await stage("prebuilt: download", () => installPrebuilt(pkg), () => "installed");
        const result = await stage("prebuilt: verify", probe, describe);
        writeStamp(pkg, {
          route: "prebuilt",
          source: PREBUILT_LIBTENSORFLOW_URL,
          tfVersion: result.tfVersion,
          devices: result.devices,
          builtAt: new Date().toISOString(),
        });
        printTimes();
        return true;
      } catch (error) {
        reasons.push(`official prebuilt binding: ${errorMessage(error)}`);
      }
    } else {
      reasons.push(`official prebuilt binding: ${new URL(PREBUILT_PROBE_URL).host} unreachable`);
    }
  }

  // (c) Build against a TensorFlow we have, then (d) verify.
  try {
    const source = await stage(
      "find TensorFlow",
      () => findTensorflow(opts.tensorflow),
      (s) => `${s.origin} (${s.how}, TensorFlow ${tensorflowVersion(s)})`,
    );
    const { folder } = await stage("unpack TensorFlow", () => tensorflowFolder(source), (r) => r.note);
    await stage("stage deps", () => Promise.resolve(stageDeps(pkg, folder)), (note) => note);
    const nodeDir = await stage("find Node headers", () => findNodeDir(opts.nodedir), (d) => d ?? "none");
    await stage("build binding", () => buildBinding(pkg, nodeDir), (note) => note);
    const result = await stage("verify", probe, describe);
    writeStamp(pkg, {
      route: "build",
      source: source.origin,
      tfVersion: result.tfVersion,
      devices: result.devices,
      builtAt: new Date().toISOString(),
    });
    log(`the tensorflow backend is ready: ${describe(result)}`);
    printTimes();
    return true;
  } catch (error) {
    reasons.push(`build against an installed TensorFlow: ${errorMessage(error)}`);
  }

  // (e) Nothing worked. A failure before the package was touched (a bad --tensorflow, say) leaves the
  // binding that was there, which may still load (untried when a rebuild was asked for): then say that
  // rather than "not available".
  if (!packageTouched && !existingTried && exists(pkg.bindingPath)) {
    try {
      const result = await stage("check existing", probe, describe);
      printTimes();
      printFallback(reasons, describe(result));
      return false;
    } catch (error) {
      reasons.push(`the binding in place does not load: ${errorMessage(error)}`);
    }
  }
  printTimes();
  printFallback(reasons);
  return false;
}

/** classify() for comparing with the stamp; undefined when the path is not usable (the build will say why). */
function classifyQuietly(path: string): string | undefined {
  try {
    return classify(path, "").origin;
  } catch {
    return undefined;
  }
}

async function main(args: string[]): Promise<number> {
  if (args[0] === "--probe") return await probeChild();
  let opts: Options | undefined;
  try {
    opts = parseOptions(args);
  } catch (error) {
    console.error(`${errorMessage(error)}\n\n${USAGE}`);
    return 2;
  }
  if (opts === undefined) {
    console.log(USAGE);
    return 0;
  }
  const ok = await setup(opts);
  return ok || !opts.strict ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
