// The chatbot's client side, shared by the browser page (chatbot.js) and the export's parity check in Node
// (projects/chatbot/tfjs_greedy.mjs): byte-level subword tokenization exactly as projects/chatbot/tokenizer.py
// does it in TensorFlow, the decoding loop over the TF.js graph models (the encoder runs once, the decoder step
// once per piece), greedy or sampled with temperature, top-k and top-p, and the dual encoder's retrieval and
// reranking.

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8");

// ASCII letters lower-cased, other bytes kept: what tf.strings.lower does without an encoding.
const lowerAscii = (b) => (b >= 65 && b <= 90 ? b + 32 : b);

// Bytes -> a string of one character per byte (the vocabulary's form of a piece).
function byteString(bytes) {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return s;
}

// {"vocabulary", "context_len", "reply_len", "max_bytes", "ids"} (vocabulary.json) -> tokenizer functions.
export function makeTokenizer(vocab) {
  const { first_piece: firstPiece, end } = vocab.ids;
  const index = new Map();
  let maxPiece = 1;
  vocab.vocabulary.forEach((piece, id) => {
    if (id < firstPiece) return;
    index.set(piece, id);
    maxPiece = Math.max(maxPiece, piece.length);
  });

  // Raw text -> piece ids: the last max_bytes UTF-8 bytes, greedy longest match from the first byte.
  function pieceIds(text) {
    let bytes = encoder.encode(text).map(lowerAscii);
    if (bytes.length > vocab.max_bytes) bytes = bytes.slice(bytes.length - vocab.max_bytes);
    const s = byteString(bytes);
    const ids = [];
    let i = 0;
    while (i < s.length) {
      for (let size = Math.min(maxPiece, s.length - i); size >= 1; size--) {
        const id = index.get(s.substr(i, size));
        if (id !== undefined) {
          ids.push(id);
          i += size;
          break;
        }
      }
    }
    return ids;
  }

  // The last `length` ids, padded with 0 on the left: Int32Array(length).
  function padLeft(ids, length) {
    const kept = ids.slice(-length);
    const out = new Int32Array(length);
    out.set(kept, length - kept.length);
    return out;
  }

  return {
    pieceIds,
    // Raw text (turns separated by newlines) -> context ids, Int32Array(context_len).
    contextIds: (text) => padLeft(pieceIds(text), vocab.context_len),
    // Reply ids -> the pieces before <end>, padded like a context: what the dual encoder's reply side reads.
    replyPieces(ids) {
      const pieces = [];
      for (const id of ids) {
        if (id === end) break;
        if (id >= firstPiece) pieces.push(id);
      }
      return padLeft(pieces, vocab.context_len);
    },
    // Reply ids -> text: the pieces' bytes before <end>, decoded as UTF-8.
    text(ids) {
      const bytes = [];
      for (const id of ids) {
        if (id === end) break;
        if (id >= firstPiece) for (const c of vocab.vocabulary[id]) bytes.push(c.charCodeAt(0));
      }
      return decoder.decode(new Uint8Array(bytes));
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

// The piece to keep from logits (Float32Array): sampled after temperature, top-k and top-p filtering.
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
export async function replyIds(tf, encoderModel, step, vocab, contextIds, options = {}) {
  const replyLen = vocab.reply_len;
  const context = tf.tensor2d(contextIds, [1, contextIds.length], "int32");
  const { encoded } = await run(tf, encoderModel, { context });
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

// The dual encoder (vectors/model.json): rows of ids (Int32Array(length) each) -> unit vectors (arrays of floats),
// side 0 reading the rows as contexts, side 1 as replies.
export async function vectors(tf, dual, rows, length, side) {
  const ids = tf.tensor2d(rows.flatMap((r) => Array.from(r)), [rows.length, length], "int32");
  const out = await run(tf, dual, { ids });
  const both = await out.vectors.array();
  tf.dispose([ids, out.vectors]);
  return both.map((row) => row[side]);
}

const dot = (a, b) => a.reduce((sum, x, i) => sum + x * b[i], 0);

// A context's TF-IDF over pieces, as projects/chatbot/retrieval.py's LexicalIndex: its last `lexical_len` piece ids
// -> Map(id -> weight), (1 + ln count) * idf, scaled to unit length.
export function lexicalQuery(bank, pieceIds) {
  const counts = new Map();
  for (const id of pieceIds.slice(-bank.lexical_len)) counts.set(id, (counts.get(id) || 0) + 1);
  const weights = new Map();
  let norm = 0;
  for (const [id, count] of counts) {
    const w = (1 + Math.log(count)) * bank.idf[id];
    if (w > 0) {
      weights.set(id, w);
      norm += w * w;
    }
  }
  norm = Math.sqrt(norm) || 1;
  for (const [id, w] of weights) weights.set(id, w / norm);
  return weights;
}

// The best bank reply (reply_bank.json: "texts", "vectors", "pieces", "weights", "idf", ...) for a context: the dual
// encoder's cosine plus `lexical_weight` times the TF-IDF cosine, or `capped` for a reply whose TF-IDF cosine is
// above `max_overlap` (it repeats the message), as the SavedModel's `retrieve`: {text, score}.
// contextIds: Int32Array(context_len), what the dual encoder reads; pieceIds: all the context's piece ids.
export async function retrieve(tf, dual, bank, contextIds, pieceIds) {
  const [query] = await vectors(tf, dual, [contextIds], contextIds.length, 0);
  const lexical = lexicalQuery(bank, pieceIds);
  let best = 0;
  let bestScore = -Infinity;
  bank.vectors.forEach((v, i) => {
    let shared = 0;
    bank.pieces[i].forEach((id, k) => {
      shared += (lexical.get(id) || 0) * bank.weights[i][k];
    });
    const score = shared > bank.max_overlap ? bank.capped : dot(query, v) + bank.lexical_weight * shared;
    if (score > bestScore) [best, bestScore] = [i, score];
  });
  return { text: bank.texts[best], score: bestScore };
}

// Rerank: `candidates` sampled replies, the one whose reply vector is closest to the context's: {ids, score}.
// models: {encoder, step, dual}.
export async function rerank(tf, models, vocab, tokenizer, contextIds, options) {
  const replies = [];
  for (let k = 0; k < vocab.candidates; k++) {
    replies.push((await replyIds(tf, models.encoder, models.step, vocab, contextIds, options)).ids);
  }
  const [query] = await vectors(tf, models.dual, [contextIds], vocab.context_len, 0);
  const pieces = replies.map((ids) => tokenizer.replyPieces(ids));
  const found = await vectors(tf, models.dual, pieces, vocab.context_len, 1);
  let best = 0;
  let bestScore = -Infinity;
  found.forEach((v, k) => {
    const empty = pieces[k].every((id) => id === 0);
    const score = empty ? -Infinity : dot(query, v);
    if (score > bestScore) [best, bestScore] = [k, score];
  });
  return { ids: replies[best], score: bestScore };
}
