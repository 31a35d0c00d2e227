// Chatbot page: a chat box running entirely in TF.js. The loader opens models/chatbot/model.json (the decoder
// step); this page adds the encoder, the dual encoder (models/chatbot/<part>/), the vocabulary and
// the reply bank, tokenizes in JavaScript and decodes here (chatbot-decoder.js): retrieval from the bank (the
// default; the dual encoder's cosine plus TF-IDF over pieces), rerank, greedy, top-k or nucleus sampling. Earlier turns can be kept as context.
/* global tf */
import { makeTokenizer, replyIds, rerank, retrieve } from "./chatbot-decoder.js";

const escape = (s) => s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
const MAX_CHARS = 500;

export async function mount(app, { model, samples }) {
  const vocab = await (await fetch("models/chatbot/vocabulary.json")).json();
  const bank = await (await fetch("models/chatbot/reply_bank.json")).json();
  const encoder = await tf.loadGraphModel("models/chatbot/encoder/model.json");
  const dual = await tf.loadGraphModel("models/chatbot/vectors/model.json");
  const models = { encoder, step: model, dual };
  const tokenizer = makeTokenizer(vocab);
  app.innerHTML = `
    <div id="log" style="background:#fff;border:1px solid #e3e6ee;border-radius:10px;padding:1rem;min-height:14rem;
      max-height:28rem;overflow-y:auto"></div>
    <form id="form" class="row" style="margin-top:.6rem;gap:.6rem">
      <input id="message" autocomplete="off" placeholder="Say something (English)" style="flex:1;font:inherit;
        padding:.4rem .6rem;border-radius:6px;border:1px solid #c6cbd8" maxlength="${MAX_CHARS}">
      <button id="send">Send</button>
    </form>
    <div class="row status" style="margin-top:.5rem;gap:1rem">
      <label>decoding <select id="strategy">
        <option value="retrieve" selected>retrieve: the best of ${bank.texts.length} training replies</option>
        <option value="rerank">rerank: best of ${vocab.candidates} nucleus samples by the dual encoder</option>
        <option value="greedy">greedy</option>
        <option value="top_k">top-k sampling (k 20, temperature 0.8)</option>
        <option value="nucleus">nucleus sampling (p 0.9, temperature 0.8)</option>
      </select></label>
      <label><input type="checkbox" id="context" checked> remember the last turn</label>
      <button id="reset" type="button">New conversation</button>
    </div>
    <h3>Try one of these</h3><div class="examples" id="examples"></div>
    <p class="status">Any text is read (the vocabulary has a piece for every byte), but the transformer reads only
      its last ${vocab.context_len} pieces (retrieve's TF-IDF its last ${bank.lexical_len}); generated replies are at
      most ${vocab.reply_len - 1} pieces.</p>`;
  const log = app.querySelector("#log");
  const input = app.querySelector("#message");
  let history = [];

  function say(who, text) {
    const line = document.createElement("div");
    line.className = `turn ${who}`;
    line.innerHTML = `<b>${who === "you" ? "you" : "bot"}:</b> ${escape(text)}`;
    log.append(line);
    log.scrollTop = log.scrollHeight;
  }

  // Greedy reply ids for a raw text (what the tests compare with Keras), and the context ids it read.
  async function greedy(text) {
    const context = tokenizer.contextIds(text);
    const { ids } = await replyIds(tf, encoder, model, vocab, context);
    return { context: Array.from(context), ids };
  }

  // The reply to context ids with a strategy of the select box.
  // `text`: the turns joined by newlines, `context` its ids as the transformer reads them.
  async function answer(strategy, text, context) {
    const nucleus = { strategy: "sample", temperature: 0.8, topP: 0.9 };
    if (strategy === "retrieve") return (await retrieve(tf, dual, bank, context, tokenizer.pieceIds(text))).text;
    if (strategy === "rerank") return tokenizer.text((await rerank(tf, models, vocab, tokenizer, context, nucleus)).ids);
    const options = { greedy: {}, nucleus, top_k: { strategy: "sample", temperature: 0.8, topK: 20 } }[strategy];
    return tokenizer.text((await replyIds(tf, encoder, model, vocab, context, options)).ids);
  }

  async function send(text) {
    text = text.trim().slice(0, MAX_CHARS);
    if (!text) return null;
    say("you", text);
    const keep = app.querySelector("#context").checked ? history.slice(-1) : [];
    const joined = [...keep, text].join("\n");
    const reply = (await answer(app.querySelector("#strategy").value, joined, tokenizer.contextIds(joined))) || "...";
    say("bot", reply);
    history = [...history, text, reply];
    return reply;
  }

  app.querySelector("#form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value;
    input.value = "";
    await send(text);
  });
  app.querySelector("#reset").addEventListener("click", () => {
    history = [];
    log.innerHTML = "";
  });
  const examples = app.querySelector("#examples");
  for (const prompt of samples?.prompts ?? []) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = prompt.split("\n").pop();
    button.addEventListener("click", () => send(prompt.split("\n").pop()));
    examples.append(button);
  }

  // The sample prompts' greedy reply ids, flattened like samples.json's "reply_ids" (for tests and the console).
  async function predictSamples() {
    const rows = [];
    for (const prompt of samples.prompts) rows.push(await greedy(prompt));
    return { context: rows.flatMap((r) => r.context), reply_ids: rows.flatMap((r) => r.ids) };
  }
  // The sample prompts' retrieved replies and scores, [{text, score}] (the tests compare them with the SavedModel's).
  async function retrieveSamples() {
    const found = [];
    for (const prompt of samples.prompts) {
      found.push(await retrieve(tf, dual, bank, tokenizer.contextIds(prompt), tokenizer.pieceIds(prompt)));
    }
    return found;
  }
  return { send, greedy, answer, predictSamples, retrieveSamples, tokenizer };
}
