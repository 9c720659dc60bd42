/**
 * A TF.js load handler for a Layers model on disk (model.json + the weight files its manifest names), for
 * `tf.loadLayersModel` under Deno: TF.js's own `file://` handler lives in tfjs-node, which this tool does not
 * need, and `http://` would need a server.
 */
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { dirname, isAbsolute, join, normalize } from "node:path";
import { errorMessage, GantryError } from "../shared/errors.ts";

function checkpointError(message: string): GantryError {
  return new GantryError("E_CHECKPOINT", message);
}

/**
 * A weight file named by the manifest, resolved beside model.json. Only plain relative names are accepted,
 * so a model.json cannot make this read files elsewhere on the machine.
 */
function weightFilePath(modelDir: string, name: string, modelJsonPath: string): string {
  const relative = normalize(name);
  if (isAbsolute(relative) || relative === ".." || relative.startsWith("../")) {
    throw checkpointError(`${modelJsonPath}: weight file ${JSON.stringify(name)} is outside its folder`);
  }
  return join(modelDir, relative);
}

/** The bytes of a file as an ArrayBuffer of exactly its length (what TF.js's WeightData expects). */
async function readArrayBuffer(path: string): Promise<ArrayBuffer> {
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = await Deno.readFile(path);
  } catch (error) {
    throw checkpointError(`${path}: cannot read it: ${errorMessage(error)}`);
  }
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
    ? bytes.buffer
    : bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
}

/** Reads model.json and its weight files when TF.js asks; errors name the file at fault. */
export function fileLoadHandler(modelJsonPath: string): tf.io.IOHandler {
  return {
    async load(): Promise<tf.io.ModelArtifacts> {
      let modelJson: tf.io.ModelJSON;
      try {
        modelJson = JSON.parse(await Deno.readTextFile(modelJsonPath));
      } catch (error) {
        throw checkpointError(`${modelJsonPath}: not a readable model.json: ${errorMessage(error)}`);
      }
      if (typeof modelJson !== "object" || modelJson === null || !modelJson.modelTopology) {
        throw checkpointError(`${modelJsonPath}: has no modelTopology, so it is not a TF.js Layers model`);
      }
      const modelDir = dirname(modelJsonPath);
      return await tf.io.getModelArtifactsForJSON(modelJson, async (manifest) => {
        const paths = manifest.flatMap((group) =>
          group.paths.map((p) => weightFilePath(modelDir, p, modelJsonPath))
        );
        // Manifest order is weight order: the specs list the weights of all files, concatenated.
        const buffers = await Promise.all(paths.map(readArrayBuffer));
        return [tf.io.getWeightSpecs(manifest), buffers];
      });
    },
  };
}

/** Loads the Layers model of a model.json on disk; any failure is an E_CHECKPOINT naming the file. */
export async function loadLayersModelFile(modelJsonPath: string): Promise<tfl.LayersModel> {
  try {
    return await tfl.loadLayersModel(fileLoadHandler(modelJsonPath));
  } catch (error) {
    if (error instanceof GantryError) throw error;
    throw checkpointError(`${modelJsonPath}: TF.js cannot load it: ${errorMessage(error)}`);
  }
}
