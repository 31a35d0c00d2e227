// The chatbot's TF.js models in Node, with the browser's own tokenizer and loop (chatbot-decoder.js): the export's
// parity check. Usage: node tfjs_greedy.mjs <request.json>, request {"model": "<export/tfjs>", "prompts": [...]};
// stdout {"context": [[ids]], "reply_ids": [[ids]], "logits": [[first-step logits]], "vector": [[context vector]]},
// one row per prompt.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const web = path.resolve(here, "../../serving/web");
const tf = createRequire(path.join(web, "package.json"))("@tensorflow/tfjs");
const { makeTokenizer, replyIds, vectors } = await import(pathToFileURL(path.join(web, "js/projects/chatbot-decoder.js")));

function fileHandler(modelDir) {
  // model.json and its weight shards from the file system (tfjs has no such handler for Node).
  return {
    load: async () => {
      const modelJSON = JSON.parse(readFileSync(path.join(modelDir, "model.json"), "utf8"));
      return tf.io.getModelArtifactsForJSON(modelJSON, async (manifest) => {
        const specs = manifest.flatMap((group) => group.weights);
        const joined = Buffer.concat(manifest.flatMap((g) => g.paths.map((p) => readFileSync(path.join(modelDir, p)))));
        return [specs, joined.buffer.slice(joined.byteOffset, joined.byteOffset + joined.byteLength)];
      });
    },
  };
}

async function main() {
  tf.enableProdMode();
  await tf.setBackend("cpu");
  const request = JSON.parse(readFileSync(process.argv[2], "utf8"));
  const vocab = JSON.parse(readFileSync(path.join(request.model, "vocabulary.json"), "utf8"));
  const step = await tf.loadGraphModel(fileHandler(request.model));
  const encoder = await tf.loadGraphModel(fileHandler(path.join(request.model, "encoder")));
  const dual = await tf.loadGraphModel(fileHandler(path.join(request.model, "vectors")));
  const tokenizer = makeTokenizer(vocab);
  const result = { context: [], reply_ids: [], logits: [], vector: [] };
  for (const prompt of request.prompts) {
    const context = tokenizer.contextIds(prompt);
    const { ids, firstLogits } = await replyIds(tf, encoder, step, vocab, context);
    result.context.push(Array.from(context));
    result.reply_ids.push(ids);
    result.logits.push(firstLogits);
    result.vector.push((await vectors(tf, dual, [context], vocab.context_len, 0))[0]);
  }
  process.stdout.write(JSON.stringify(result));
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
});
