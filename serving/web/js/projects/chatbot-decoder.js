// The chatbot's client side, shared by the browser page (chatbot.js) and the export's parity check in Node
// (projects/chatbot/tfjs_greedy.mjs): text normalization and word ids exactly as projects/chatbot/tokenizer.py
// does them in TensorFlow, and the decoding loop over the two TF.js graph models (the encoder runs once,
// the decoder step once per word), greedy or sampled with temperature, top-k and top-p.

const PUNCTUATION = /([?!.,])/g;
const ACCENTS = { a: "àáâãäå", c: "ç", e: "èéêë", i: "ìíîï", n: "ñ", o: "òóôõöø", u: "ùúûü", y: "ýÿ" };

// Raw text (turns separated by newlines) -> space-separated words, as tokenizer.normalize.
export function normalize(text) {
  let t = text.toLowerCase();
  for (const [plain, accented] of Object.entries(ACCENTS)) t = t.replace(new RegExp(`[${accented}]`, "g"), plain);
  t = t.replace(/[’‘`]/g, "'");
  t = t.replace(/[^a-z0-9'?!.,\n]+/g, " ");
  t = t.replace(PUNCTUATION, " $1 ");
  t = t.replace(/\n/g, " <sep> ");
  return t.replace(/ +/g, " ").trim();
}

// {"vocabulary", "context_len", "reply_len", "ids"} (vocabulary.json) -> tokenizer functions.
export function makeTokenizer(vocab) {
  const index = new Map(vocab.vocabulary.map((word, id) => [word, id]));
  const { pad, unk, end } = vocab.ids;
  return {
    // The last context_len word ids, padded with 0 on the left: Int32Array(context_len).
    contextIds(text) {
      const ids = normalize(text).split(" ").filter(Boolean).map((w) => (w ? index.get(w) ?? unk : pad));
      const kept = ids.slice(-vocab.context_len);
      const out = new Int32Array(vocab.context_len);
      out.set(kept, vocab.context_len - kept.length);
      return out;
    },
    // Reply ids -> text: words before <end>, special ids dropped, punctuation re-attached.
    text(ids) {
      const words = [];
      for (const id of ids) {
        if (id === end) break;
        if (id > end) words.push(vocab.vocabulary[id]);
      }
      return words.join(" ").replace(/ ([?!.,])/g, "$1");
    },
  };
}

async function run(tf, model, feeds) {
  const names = Object.keys(model.modelSignature.outputs);
  let out;
  try {
    out = model.execute(feeds, names);
  } catch {
    out = await model.executeAsync(feeds, names);
  }
  out = Array.isArray(out) ? out : [out];
  return Object.fromEntries(names.map((name, i) => [name, out[i]]));
}

// The word to keep from logits (Float32Array): the highest after temperature, top-k and top-p filtering.
export function sampleWord(logits, { temperature = 1, topK = 0, topP = 1, random = Math.random } = {}) {
  const order = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a]);
  const kept = order.slice(0, topK > 0 ? topK : order.length);
  const top = logits[kept[0]] / temperature;
  const weights = kept.map((id) => Math.exp(logits[id] / temperature - top));
  const total = weights.reduce((a, b) => a + b, 0);
  let cumulative = 0;
  let n = 0;
  while (n < kept.length && cumulative < topP * total) cumulative += weights[n++];
  let r = random() * cumulative;
  for (let i = 0; i < n; i++) {
    r -= weights[i];
    if (r <= 0) return kept[i];
  }
  return kept[n - 1];
}

// The decoding loop: context ids (Int32Array) -> {ids: reply ids (reply_len, zeros after <end>), firstLogits}.
// options.strategy "greedy" (the model's next_id) or "sample" (temperature, topK, topP, random).
export async function replyIds(tf, encoder, step, vocab, contextIds, options = {}) {
  const replyLen = vocab.reply_len;
  const context = tf.tensor2d(contextIds, [1, contextIds.length], "int32");
  const { encoded } = await run(tf, encoder, { context });
  const reply = new Int32Array(replyLen);
  reply[0] = vocab.ids.start;
  const ids = new Int32Array(replyLen);
  let firstLogits = null;
  for (let t = 0; t < replyLen; t++) {
    const feeds = {
      encoded,
      context,
      reply: tf.tensor2d(reply, [1, replyLen], "int32"),
      position: tf.tensor1d([t], "int32"),
    };
    const out = await run(tf, step, feeds);
    const logits = await out.logits.data();
    firstLogits = firstLogits ?? Array.from(logits);
    const word = options.strategy === "sample" ? sampleWord(logits, options) : (await out.next_id.data())[0];
    tf.dispose([feeds.reply, feeds.position, ...Object.values(out)]);
    ids[t] = word;
    if (t + 1 < replyLen) reply[t + 1] = word;
    if (word === vocab.ids.end) break;
  }
  tf.dispose([context, encoded]);
  return { ids: Array.from(ids), firstLogits };
}
