// GAN page: generate a grid of images from random noise, click one to see variations of it (its noise plus small
// random nudges), and interpolate between two (A and B) with a slider, along the same spherical path the report's
// interpolation strip uses. The model takes `noise` (batch, latent_dim) float32 [and `label` (batch,) int32 when
// class-conditional] and returns `image` (batch, size, size, 3) with uint8 values.
/* global tf */

const GRID = 16;
const VARIATIONS = 8;

// Standard normal noise, (count, dim), as a flat Float32Array (Box-Muller over Math.random).
function randomNoise(count, dim) {
  const out = new Float32Array(count * dim);
  for (let i = 0; i < out.length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - Math.random()));
    const theta = 2 * Math.PI * Math.random();
    out[i] = r * Math.cos(theta);
    if (i + 1 < out.length) out[i + 1] = r * Math.sin(theta);
  }
  return out;
}

// Spherical interpolation between two noise vectors at fraction t (a straight line when they are parallel).
export function slerp(a, b, t) {
  const dot = a.reduce((s, v, i) => s + v * b[i], 0);
  const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  const omega = Math.acos(Math.min(1, Math.max(-1, dot / (norm(a) * norm(b)))));
  if (omega < 1e-4) return a.map((v, i) => (1 - t) * v + t * b[i]);
  const [wa, wb] = [Math.sin((1 - t) * omega) / Math.sin(omega), Math.sin(t * omega) / Math.sin(omega)];
  return a.map((v, i) => wa * v + wb * b[i]);
}

function drawImage(canvas, pixels, offset, size) {
  const image = new ImageData(size, size);
  for (let p = 0; p < size * size; p++) {
    const k = offset + p * 3;
    image.data.set([pixels[k], pixels[k + 1], pixels[k + 2], 255], p * 4);
  }
  canvas.width = canvas.height = size;
  canvas.getContext("2d").putImageData(image, 0, 0);
}

export async function mount(app, { model, predict, samples }) {
  const dim = model.inputs.find((t) => t.name.startsWith("noise")).shape[1];
  const conditional = model.inputs.length > 1;
  const names = samples?.class_names ?? [];
  app.innerHTML = `
    <div class="row" style="align-items:center;gap:1rem">
      <button id="generate">Generate ${GRID} new images</button>
      ${conditional ? `<label>class <select id="label">${names.map((n, k) => `<option value="${k}">${n}</option>`).join("")}</select></label>` : ""}
      <span class="status">click an image to vary it; shift-click two to set A and B</span>
    </div>
    <div class="examples" id="grid" style="display:grid;grid-template-columns:repeat(8,96px);gap:4px"></div>
    <h3>Variations of the chosen image</h3>
    <label class="status">spread <input id="spread" type="range" min="0.05" max="1" step="0.05" value="0.3"></label>
    <div class="examples" id="variations" style="display:grid;grid-template-columns:repeat(8,96px);gap:4px"></div>
    <h3>Interpolation from A to B</h3>
    <div class="row" style="align-items:center;gap:1rem">
      <canvas id="a" style="width:96px;height:96px"></canvas>
      <input id="t" type="range" min="0" max="1" step="0.02" value="0.5" style="width:14rem">
      <canvas id="b" style="width:96px;height:96px"></canvas>
      <canvas id="mix" style="width:192px;height:192px;image-rendering:pixelated"></canvas>
    </div>`;
  const $ = (id) => app.querySelector(`#${id}`);
  const label = () => (conditional ? Number($("label").value) : 0);
  let grid = [];
  let [a, b] = [null, null];
  let slot = 0; // shift-click sets A, then B, then A again

  // Images for noise vectors (Float32Array each): one model call; returns the flat uint8 values and the size.
  async function generate(noises, labels = null) {
    const feeds = { noise: tf.tensor(noises.flatMap((n) => Array.from(n)), [noises.length, dim], "float32") };
    if (conditional) feeds.label = tf.tensor(labels ?? noises.map(label), [noises.length], "int32");
    const out = await predict(feeds);
    const pixels = await out.image.data();
    const size = out.image.shape[1];
    tf.dispose([...Object.values(feeds), ...Object.values(out)]);
    return { pixels, size };
  }

  function thumbnails(container, noises, { pixels, size }, onClick) {
    container.innerHTML = "";
    noises.forEach((noise, i) => {
      const canvas = document.createElement("canvas");
      drawImage(canvas, pixels, i * size * size * 3, size);
      canvas.style.width = canvas.style.height = "96px";
      canvas.style.imageRendering = "pixelated";
      canvas.style.cursor = "pointer";
      canvas.addEventListener("click", (e) => onClick(noise, e));
      container.append(canvas);
    });
  }

  async function choose(noise, event) {
    if (!event?.shiftKey) return vary(noise);
    if (slot === 0) a = noise;
    else b = noise;
    slot = 1 - slot;
    return interpolate();
  }

  async function newGrid() {
    const flat = randomNoise(GRID, dim);
    grid = Array.from({ length: GRID }, (_, i) => flat.slice(i * dim, (i + 1) * dim));
    thumbnails($("grid"), grid, await generate(grid), choose);
    [a, b] = [grid[0], grid[1]];
    await Promise.all([vary(grid[0]), interpolate()]);
  }

  async function vary(noise) {
    const spread = Number($("spread").value);
    const nudges = randomNoise(VARIATIONS, dim);
    const noises = Array.from({ length: VARIATIONS }, (_, i) => noise.map((v, j) => v + spread * nudges[i * dim + j]));
    noises[0] = noise;
    thumbnails($("variations"), noises, await generate(noises), choose);
  }

  async function interpolate() {
    if (!a || !b) return;
    const t = Number($("t").value);
    const { pixels, size } = await generate([a, b, slerp(a, b, t)]);
    ["a", "b", "mix"].forEach((id, i) => drawImage($(id), pixels, i * size * size * 3, size));
  }

  $("generate").addEventListener("click", newGrid);
  $("t").addEventListener("input", interpolate);
  if (conditional) $("label").addEventListener("change", newGrid);
  await newGrid();
  return { generate, slerp, newGrid, vary, interpolate, grid: () => grid };
}
