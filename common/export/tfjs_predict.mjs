// Run a TF.js graph model from disk with @tensorflow/tfjs (pure JS CPU backend) and print its outputs as JSON.
//
// Usage: node tfjs_predict.mjs <request.json>
// request.json: {"model": "<dir with model.json>", "batch_size": 256,
//                "inputs": {"<signature input>": {"dtype": "float32", "shape": [n, ...], "file": "<raw little-endian>"}}}
// stdout: {"<signature output>": {"dtype": "float32", "shape": [n, ...], "data": [...flat values]}, ...}
// tfjs comes from serving/web/node_modules (no tfjs-node, no network), resolved relative to this file.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.resolve(here, "../../serving/web/package.json"));
const tf = require("@tensorflow/tfjs");

const TYPED = { float32: Float32Array, int32: Int32Array };

function fileHandler(modelDir) {
  // An IOHandler reading model.json and its weight shards from the file system (tfjs has none for Node).
  return {
    load: async () => {
      const modelJSON = JSON.parse(readFileSync(path.join(modelDir, "model.json"), "utf8"));
      return tf.io.getModelArtifactsForJSON(modelJSON, async (manifest) => {
        const specs = manifest.flatMap((group) => group.weights);
        const shards = manifest.flatMap((group) => group.paths.map((p) => readFileSync(path.join(modelDir, p))));
        const joined = Buffer.concat(shards);
        return [specs, joined.buffer.slice(joined.byteOffset, joined.byteOffset + joined.byteLength)];
      });
    },
  };
}

function readInput({ dtype, shape, file }) {
  const bytes = readFileSync(file);
  const values = new TYPED[dtype](bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  return { values, shape, rowSize: shape.slice(1).reduce((a, b) => a * b, 1) };
}

async function main() {
  tf.enableProdMode(); // no "install tfjs-node" banner, no debug checks
  await tf.setBackend("cpu");
  const request = JSON.parse(readFileSync(process.argv[2], "utf8"));
  const model = await tf.loadGraphModel(fileHandler(request.model));
  const outputNames = Object.keys(model.modelSignature.outputs);
  const inputs = Object.fromEntries(Object.entries(request.inputs).map(([name, spec]) => [name, readInput(spec)]));
  const n = Object.values(inputs)[0].shape[0];
  const batch = request.batch_size || 256;
  const collected = Object.fromEntries(outputNames.map((name) => [name, { dtype: null, shape: null, data: [] }]));

  for (let start = 0; start < n; start += batch) {
    const end = Math.min(n, start + batch);
    const feeds = {};
    for (const [name, { values, shape, rowSize }] of Object.entries(inputs)) {
      const dtype = values instanceof Int32Array ? "int32" : "float32";
      feeds[name] = tf.tensor(values.subarray(start * rowSize, end * rowSize), [end - start, ...shape.slice(1)], dtype);
    }
    const outputs = await model.executeAsync(feeds, outputNames);
    const list = Array.isArray(outputs) ? outputs : [outputs];
    for (const [i, name] of outputNames.entries()) {
      const out = collected[name];
      out.dtype = list[i].dtype;
      out.shape = [n, ...list[i].shape.slice(1)];
      for (const value of await list[i].data()) out.data.push(value);
    }
    tf.dispose([...Object.values(feeds), ...list]);
  }
  process.stdout.write(JSON.stringify(collected));
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
});
