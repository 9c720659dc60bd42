/**
 * For tests: a classifier folder made by the real `prepareClassifier`, trained on few images so that it
 * takes seconds (the suite starts from a clean checkout, with no cached classifier). One per test process,
 * removed when the process ends.
 */
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../shared/backends/select.ts";
import { prepareClassifier } from "./prepare.ts";
import type { StoredClassifier } from "./store.ts";

/** Enough for a classifier far above chance, yet seconds to train. */
export const TINY_TRAIN_EXAMPLES = 2000;
export const TINY_TEST_EXAMPLES = 1000;

let made: Promise<StoredClassifier> | undefined;

/** The test backend, then the tiny classifier (trained once per process); callers do not dispose it. */
export function tinyClassifier(): Promise<StoredClassifier> {
  made ??= (async () => {
    // cpu: the dense classifier trains in seconds on it, and cpu runs on every machine.
    await initBackend({ backend: "cpu", log: () => {} });
    tf.env().set("PROD", true);
    const dir = await Deno.makeTempDir({ prefix: "gantry-classifier-" });
    globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
    return await prepareClassifier({
      dataset: "mnist",
      dir,
      retrain: false,
      architecture: "dense",
      epochs: 2,
      trainExamples: TINY_TRAIN_EXAMPLES,
      testExamples: TINY_TEST_EXAMPLES,
      log: () => {},
    });
  })();
  return made;
}
