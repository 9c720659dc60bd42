import * as tf from "@tensorflow/tfjs";
import { GantryError } from "../errors.ts";
import { assert, assertEquals, assertRejects } from "../testing.ts";
import {
  type BackendLoader,
  type BackendLoaders,
  DEFAULT_BACKEND_LOADERS,
  initBackend,
  initBackendWith,
} from "./select.ts";

/** A log that keeps its lines for the test to read. */
function recordingLog(): { lines: string[]; log: (line: string) => void } {
  const lines: string[] = [];
  return { lines, log: (line) => lines.push(line) };
}

function failing(reason: string): BackendLoader {
  return () => Promise.reject(new GantryError("E_BACKEND", reason));
}

function loadersWith(overrides: Partial<BackendLoaders>): BackendLoaders {
  return { ...DEFAULT_BACKEND_LOADERS, ...overrides };
}

Deno.test("initBackend() with cpu runs TF.js on the cpu backend and reports it", async () => {
  const { lines, log } = recordingLog();
  const info = await initBackend({ backend: "cpu", log });
  assertEquals(info, { name: "cpu", tfjsVersion: tf.version.tfjs, devices: ["CPU"], fallbackReasons: [] });
  assertEquals(tf.getBackend(), "cpu");
  assert(lines.some((line) => line.startsWith("backend: cpu")), `logged: ${lines.join(" | ")}`);
});

Deno.test("initBackend() with wasm runs TF.js on wasm with the training kernels registered", async () => {
  const info = await initBackend({ backend: "wasm", threads: 2, log: () => {} });
  assertEquals(info, { name: "wasm", tfjsVersion: tf.version.tfjs, devices: ["CPU"], fallbackReasons: [] });
  assertEquals(tf.getBackend(), "wasm");
  assert(tf.getKernel(tf.Conv2DBackpropFilter, "wasm") !== undefined, "Conv2DBackpropFilter is registered");
  assert(tf.getKernel(tf.UnsortedSegmentSum, "wasm") !== undefined, "UnsortedSegmentSum is registered");
  // A filter gradient runs end to end on the backend just chosen.
  const gradient = tf.tidy(() => {
    const x = tf.ones([1, 4, 4, 1]) as tf.Tensor4D;
    return tf.grad((f: tf.Tensor) => tf.sum(tf.conv2d(x, f as tf.Tensor4D, 1, "valid")))(
      tf.ones([2, 2, 1, 1]),
    );
  });
  assertEquals(Array.from(await gradient.data()), [9, 9, 9, 9]);
  gradient.dispose();
});

Deno.test("initBackend() with an explicit tensorflow either runs on it or throws E_BACKEND with the reason", async () => {
  const { log } = recordingLog();
  let info;
  try {
    info = await initBackend({ backend: "tensorflow", log });
  } catch (error) {
    assert(error instanceof GantryError, `expected a GantryError, got ${String(error)}`);
    assertEquals(error.code, "E_BACKEND");
    const match = /^backend tensorflow \(asked for explicitly\) failed to load: (.+)$/s.exec(error.message);
    assert(
      match !== null && match[1].trim().length > 0,
      `the message names the backend and a reason: ${error.message}`,
    );
    return;
  }
  // The native binding exists on this machine.
  assertEquals(info.name, "tensorflow");
  assertEquals(tf.getBackend(), "tensorflow");
  assert(
    typeof info.tfVersion === "string" && info.tfVersion.length > 0,
    "the TensorFlow version is reported",
  );
  assert(info.devices.length > 0, "the devices are reported");
  assertEquals(info.fallbackReasons, []);
});

Deno.test("initBackend() with auto takes tensorflow if it loads, else falls back to wasm saying why", async () => {
  const { lines, log } = recordingLog();
  const info = await initBackend({ backend: "auto", log });
  assertEquals(tf.getBackend(), info.name);
  if (info.name === "tensorflow") {
    assertEquals(info.fallbackReasons, []);
    return;
  }
  assertEquals(info.name, "wasm");
  assertEquals(info.fallbackReasons.length, 1);
  assert(info.fallbackReasons[0].startsWith("tensorflow: "), `reason: ${info.fallbackReasons[0]}`);
  const reason = info.fallbackReasons[0].slice("tensorflow: ".length);
  assert(reason.length > 0, "the reason is not empty");
  assert(
    lines.some((line) => line.startsWith("WARNING:") && line.includes("tensorflow") && line.includes(reason)),
    `a warning gives the reason: ${lines.join(" | ")}`,
  );
});

Deno.test("initBackendWith() under auto falls back through every failing backend to cpu, logging each reason", async () => {
  const { lines, log } = recordingLog();
  const loaders = loadersWith({
    tensorflow: failing("no native binding here"),
    wasm: failing("no wasm binary"),
  });
  const info = await initBackendWith({ backend: "auto", log }, loaders);
  assertEquals(info.name, "cpu");
  assertEquals(tf.getBackend(), "cpu");
  assertEquals(info.fallbackReasons, ["tensorflow: no native binding here", "wasm: no wasm binary"]);
  const warnings = lines.filter((line) => line.startsWith("WARNING:"));
  assertEquals(warnings, [
    "WARNING: backend tensorflow failed to load: no native binding here; falling back to wasm",
    "WARNING: backend wasm failed to load: no wasm binary; falling back to cpu",
  ]);
});

Deno.test("initBackendWith() does not trust a loader that leaves TF.js on another backend", async () => {
  await initBackend({ backend: "cpu", log: () => {} });
  const liar: BackendLoader = () => Promise.resolve({ tfVersion: "2.21.0", devices: ["GPU:0"] });
  const info = await initBackendWith({ backend: "auto", log: () => {} }, loadersWith({ tensorflow: liar }));
  assertEquals(info.name, "wasm");
  assertEquals(info.fallbackReasons, ["tensorflow: TF.js runs on 'cpu' after loading it"]);
});

Deno.test("initBackendWith() with an explicit choice that fails throws E_BACKEND naming the backend and reason", async () => {
  const { lines, log } = recordingLog();
  const error = await assertRejects(
    () => initBackendWith({ backend: "wasm", log }, loadersWith({ wasm: failing("wasm binary unreadable") })),
    GantryError,
    "backend wasm (asked for explicitly) failed to load: wasm binary unreadable",
  );
  assertEquals(error.code, "E_BACKEND");
  assertEquals(lines, [], "no fallback was attempted, so none was logged");
});

Deno.test("initBackendWith() under auto throws E_BACKEND with every reason when no backend loads", async () => {
  const loaders: BackendLoaders = { tensorflow: failing("a"), wasm: failing("b"), cpu: failing("c") };
  const error = await assertRejects(
    () => initBackendWith({ backend: "auto", log: () => {} }, loaders),
    GantryError,
    "no backend could be loaded: tensorflow: a; wasm: b; cpu: c",
  );
  assertEquals(error.code, "E_BACKEND");
});

Deno.test("initBackendWith() sets CUDA_VISIBLE_DEVICES to the gpu before the tensorflow loader runs", async () => {
  const previous = Deno.env.get("CUDA_VISIBLE_DEVICES");
  try {
    Deno.env.delete("CUDA_VISIBLE_DEVICES");
    let seen: string | undefined;
    const spy: BackendLoader = () => {
      seen = Deno.env.get("CUDA_VISIBLE_DEVICES");
      return Promise.reject(new Error("stop here"));
    };
    const { lines, log } = recordingLog();
    const info = await initBackendWith({ backend: "auto", gpu: 3, log }, loadersWith({ tensorflow: spy }));
    assertEquals(seen, "3");
    assertEquals(info.name, "wasm");
    assert(lines[0].includes("CUDA_VISIBLE_DEVICES=3"), `logged: ${lines.join(" | ")}`);
  } finally {
    if (previous === undefined) Deno.env.delete("CUDA_VISIBLE_DEVICES");
    else Deno.env.set("CUDA_VISIBLE_DEVICES", previous);
  }
});

Deno.test("initBackend() rejects an unknown backend, a negative gpu and zero threads with E_CONFIG", async () => {
  const cases: [Parameters<typeof initBackend>[0], string][] = [
    [
      { backend: "webgl" as "cpu" },
      'backend must be one of auto, tensorflow, wasm, cpu: current value is "webgl"',
    ],
    [{ backend: "cpu", gpu: -1 }, "gpu must be an integer >= 0: current value is -1"],
    [{ backend: "cpu", threads: 0 }, "threads must be an integer >= 1: current value is 0"],
  ];
  for (const [opts, message] of cases) {
    const error = await assertRejects(() => initBackend({ ...opts, log: () => {} }), GantryError, message);
    assertEquals(error.code, "E_CONFIG");
  }
});
