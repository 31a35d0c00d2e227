// MNIST page: draw a digit (mouse, touch or pen), upload a photo, or use the camera; see the model's probabilities.
// Every picture is made to look like MNIST before the model sees it, by the twin of projects/mnist/preparation.py:
// grey, inverted when the paper is light, the paper's level (shadows) divided out, Otsu's threshold, split into
// digits (connected components) read left to right, each cropped, fitted into 20x20 keeping its aspect ratio and
// centred by its centre of mass in 28x28. Each step below does the same operations, in the same order, as the
// Python function of the same name, so both give the same 28x28 arrays (tests/test_mnist_inputs.py checks it).
/* global tf */
import { cameraPanel } from "../camera.js";
import { imageFromFile } from "../image_file.js";

const SIZE = 280;
const STROKE = 22;

const MAX_SIDE = 512;
const BLOCKS = 4;
const PAPER_PERCENTILE = 0.1;
const INK_PERCENTILE = 0.9;
const MIN_CONTRAST = 0.15;
const SPECK_SHARE = 0.02;
const DIGIT_SHARE = 0.1;
const OVERLAP = 0.5;
const BOX = 20;
const FIELD = 28;

const round = (x) => Math.floor(x + 0.5);

// {data: Float64Array(h*w), h, w}: a grey image, row by row.
export function greyFromRgba(rgba, width, height) {
  const data = new Float64Array(width * height);
  for (let i = 0; i < width * height; i++) {
    const alpha = rgba[i * 4 + 3] / 255;
    const [r, g, b] = [0, 1, 2].map((k) => alpha * rgba[i * 4 + k] + (1 - alpha) * 255);
    data[i] = (0.299 * r + 0.587 * g + 0.114 * b) / 255;
  }
  return { data, h: height, w: width };
}

function taps(nIn, nOut) {
  const scale = nOut / nIn;
  const support = Math.max(1, 1 / scale);
  const count = 2 * Math.ceil(support) + 2;
  const index = new Int32Array(nOut * count);
  const weight = new Float64Array(nOut * count);
  for (let i = 0; i < nOut; i++) {
    const centre = (i + 0.5) / scale;
    const lo = Math.max(0, Math.floor(centre - support));
    const hi = Math.min(nIn, Math.ceil(centre + support));
    for (let j = lo; j < hi; j++) {
      index[i * count + j - lo] = j;
      weight[i * count + j - lo] = Math.max(0, 1 - Math.abs((j + 0.5 - centre) / support));
    }
    let total = 0;
    for (let k = 0; k < count; k++) total += weight[i * count + k];
    for (let k = 0; k < count; k++) weight[i * count + k] /= total;
  }
  return { index, weight, count };
}

export function resample(image, height, width) {
  const { data, h, w } = image;
  const tx = taps(w, width);
  const rows = new Float64Array(h * width);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < width; x++) {
      let s = 0;
      for (let k = 0; k < tx.count; k++) s = s + tx.weight[x * tx.count + k] * data[y * w + tx.index[x * tx.count + k]];
      rows[y * width + x] = s;
    }
  }
  const ty = taps(h, height);
  const out = new Float64Array(height * width);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let s = 0;
      for (let k = 0; k < ty.count; k++) s = s + ty.weight[y * ty.count + k] * rows[ty.index[y * ty.count + k] * width + x];
      out[y * width + x] = s;
    }
  }
  return { data: out, h: height, w: width };
}

function shrink(grey) {
  const { h, w } = grey;
  if (Math.max(h, w) <= MAX_SIDE) return grey;
  const scale = MAX_SIDE / Math.max(h, w);
  return resample(grey, Math.max(1, round(h * scale)), Math.max(1, round(w * scale)));
}

function percentile(values, q) {
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.floor(q * (sorted.length - 1))];
}

function median(values) {
  const sorted = Float64Array.from(values).sort();
  const n = sorted.length;
  return n % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

function paperLevel(ink, h, w) {
  const block = Math.ceil(Math.max(h, w) / BLOCKS);
  const [ny, nx] = [Math.ceil(h / block), Math.ceil(w / block)];
  const level = new Float64Array(ny * nx);
  for (let by = 0; by < ny; by++) {
    for (let bx = 0; bx < nx; bx++) {
      const [y0, y1] = [Math.max(0, by - 1) * block, Math.min(h, (by + 2) * block)];
      const [x0, x1] = [Math.max(0, bx - 1) * block, Math.min(w, (bx + 2) * block)];
      const window = new Float64Array((y1 - y0) * (x1 - x0));
      let n = 0;
      for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) window[n++] = ink[y * w + x];
      level[by * nx + bx] = percentile(window, PAPER_PERCENTILE);
    }
  }
  const along = (i, n) => {
    const f = Math.min(Math.max((i + 0.5) / block - 0.5, 0), n - 1);
    const i0 = Math.floor(f);
    return [i0, Math.min(i0 + 1, n - 1), f - i0];
  };
  const paper = new Float64Array(h * w);
  for (let y = 0; y < h; y++) {
    const [y0, y1, ty] = along(y, ny);
    for (let x = 0; x < w; x++) {
      const [x0, x1, tx] = along(x, nx);
      const top = (1 - tx) * level[y0 * nx + x0] + tx * level[y0 * nx + x1];
      const bottom = (1 - tx) * level[y1 * nx + x0] + tx * level[y1 * nx + x1];
      paper[y * w + x] = (1 - ty) * top + ty * bottom;
    }
  }
  return paper;
}

export function otsuThreshold(values) {
  const counts = new Float64Array(256);
  for (const v of values) counts[Math.min(255, Math.floor(v * 256))] += 1;
  let sumAll = 0;
  for (let k = 0; k < 256; k++) sumAll += k * counts[k];
  let [best, bestK, weightBg, sumBg] = [-1, 0, 0, 0];
  for (let k = 0; k < 256; k++) {
    weightBg += counts[k];
    sumBg += k * counts[k];
    const weightFg = values.length - weightBg;
    if (weightBg === 0 || weightFg === 0) continue;
    const [meanBg, meanFg] = [sumBg / weightBg, (sumAll - sumBg) / weightFg];
    const between = weightBg * weightFg * (meanBg - meanFg) * (meanBg - meanFg);
    if (between > best) [best, bestK] = [between, k];
  }
  return (bestK + 1) / 256;
}

// 8-connected components labelled 1, 2, ... in raster order of their first pixel (as scipy.ndimage.label does).
function label(mask, h, w) {
  const labels = new Int32Array(h * w);
  const areas = [0];
  const spans = [null];
  const stack = [];
  let count = 0;
  for (let start = 0; start < h * w; start++) {
    if (!mask[start] || labels[start]) continue;
    count += 1;
    labels[start] = count;
    stack.push(start);
    let [area, left, right] = [0, w, 0];
    while (stack.length) {
      const p = stack.pop();
      const [py, px] = [Math.floor(p / w), p % w];
      area += 1;
      left = Math.min(left, px);
      right = Math.max(right, px + 1);
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const [y, x] = [py + dy, px + dx];
          if (y < 0 || y >= h || x < 0 || x >= w) continue;
          const q = y * w + x;
          if (mask[q] && !labels[q]) {
            labels[q] = count;
            stack.push(q);
          }
        }
      }
    }
    areas.push(area);
    spans.push([left, right]);
  }
  return { labels, areas, spans, count };
}

function groupLeftToRight(boxes) {
  const groups = [];
  const order = [...boxes.entries()].sort((a, b) => a[1][0] - b[1][0] || a[0] - b[0]);
  for (const [labelId, [left, right]] of order) {
    const last = groups[groups.length - 1];
    if (last) {
      const overlap = Math.min(right, last.right) - Math.max(left, last.left);
      if (overlap >= OVERLAP * Math.min(right - left, last.right - last.left)) {
        last.members.push(labelId);
        last.right = Math.max(last.right, right);
        continue;
      }
    }
    groups.push({ members: [labelId], left, right });
  }
  return groups.map((g) => g.members);
}

// Steps 1-4: {values, labels, groups, h, w}, or throws an Error saying the picture holds no digit.
export function findInk(grey) {
  const { data, h, w } = shrink(grey);
  const border = [];
  for (let x = 0; x < w; x++) border.push(data[x], data[(h - 1) * w + x]);
  for (let y = 0; y < h; y++) border.push(data[y * w], data[y * w + w - 1]);
  const light = median(border) > 0.5;
  const ink = data.map((v) => (light ? 1 - v : v));
  const paper = paperLevel(ink, h, w);
  const lifted = ink.map((v, i) => Math.max((v - paper[i]) / Math.max(1 - paper[i], 1e-6), 0));
  const threshold = otsuThreshold(lifted);
  const mask = lifted.map((v) => (v > threshold ? 1 : 0));
  const inked = lifted.filter((v, i) => mask[i]);
  if (!inked.length) throw new Error("no ink stands out from the background");
  const level = percentile(inked, INK_PERCENTILE);
  if (level < MIN_CONTRAST) {
    throw new Error(`the ink is too faint (contrast ${level.toFixed(2)}, needs ${MIN_CONTRAST})`);
  }
  const values = lifted.map((v, i) => (mask[i] ? Math.min(Math.max(v / level, 0), 1) : 0));
  const { labels, areas, spans, count } = label(mask, h, w);
  const largest = Math.max(...areas.slice(1));
  const boxes = new Map();
  for (let k = 1; k <= count; k++) if (areas[k] >= SPECK_SHARE * largest) boxes.set(k, spans[k]);
  let groups = groupLeftToRight(boxes);
  const sizes = groups.map((g) => g.reduce((s, k) => s + areas[k], 0));
  const biggest = Math.max(...sizes);
  groups = groups.filter((g, i) => sizes[i] >= DIGIT_SHARE * biggest);
  return { values, labels, groups, h, w };
}

// Step 5: the ink of `members` cropped, fitted into 20x20 and centred by mass in 28x28: Float32Array(784).
function toMnistField({ values, labels, h: fullH, w: fullW }, members) {
  const mine = new Set(members);
  let [top, left, bottom, right] = [fullH, fullW, -1, -1];
  for (let y = 0; y < fullH; y++) {
    for (let x = 0; x < fullW; x++) {
      if (!mine.has(labels[y * fullW + x])) continue;
      top = Math.min(top, y); bottom = Math.max(bottom, y);
      left = Math.min(left, x); right = Math.max(right, x);
    }
  }
  const [h, w] = [bottom - top + 1, right - left + 1];
  const crop = new Float64Array(h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const p = (top + y) * fullW + left + x;
      crop[y * w + x] = mine.has(labels[p]) ? values[p] : 0;
    }
  }
  const scale = BOX / Math.max(h, w);
  const [sh, sw] = [Math.max(1, round(h * scale)), Math.max(1, round(w * scale))];
  const digit = resample({ data: crop, h, w }, sh, sw).data.map((v) => Math.min(Math.max(v, 0), 1));
  let mass = 0;
  for (const v of digit) mass += v;
  let [cy, cx] = [(sh - 1) / 2, (sw - 1) / 2];
  if (mass !== 0) {
    let [sy, sx] = [0, 0];
    for (let y = 0; y < sh; y++) {
      let row = 0;
      for (let x = 0; x < sw; x++) row += digit[y * sw + x];
      sy += row * y;
    }
    for (let x = 0; x < sw; x++) {
      let column = 0;
      for (let y = 0; y < sh; y++) column += digit[y * sw + x];
      sx += column * x;
    }
    [cy, cx] = [sy / mass, sx / mass];
  }
  const fieldTop = Math.min(Math.max(round((FIELD - 1) / 2 - cy), 0), FIELD - sh);
  const fieldLeft = Math.min(Math.max(round((FIELD - 1) / 2 - cx), 0), FIELD - sw);
  const field = new Float32Array(FIELD * FIELD);
  for (let y = 0; y < sh; y++) {
    for (let x = 0; x < sw; x++) field[(fieldTop + y) * FIELD + fieldLeft + x] = digit[y * sw + x];
  }
  return field;
}

// RGBA pixels (e.g. a canvas's getImageData().data) of one or more digits in a row -> [Float32Array(784), ...]
// MNIST digits, left to right. Throws an Error when no ink stands out.
export function prepareDigits(rgba, width, height) {
  const ink = findInk(greyFromRgba(rgba, width, height));
  return ink.groups.map((group) => toMnistField(ink, group));
}

// RGBA pixels of one digit -> Float32Array(784): all its ink as one digit.
export function prepareDigit(rgba, width, height) {
  const ink = findInk(greyFromRgba(rgba, width, height));
  return toMnistField(ink, ink.groups.flat());
}

function canvasPixels(canvas) {
  return canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
}

function drawDigit(canvas, values) {
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(28, 28);
  values.forEach((v, i) => {
    image.data.set([v * 255, v * 255, v * 255, 255], i * 4);
  });
  ctx.putImageData(image, 0, 0);
}

export async function mount(app, { predict, samples }) {
  app.innerHTML = `
    <div class="row">
      <div>
        <canvas id="pad" class="draw" width="${SIZE}" height="${SIZE}" aria-label="drawing pad"></canvas>
        <div><button id="clear">Clear</button> <span class="status">draw a digit 0-9, large and centred</span></div>
      </div>
      <div>
        <label class="notice" style="display:block;cursor:pointer">Upload a photo of digits
          <input id="file" type="file" accept="image/*"></label>
        <div id="camera"></div>
        <div class="status">what the model sees:</div>
        <div class="examples" id="seen" aria-label="the digits as the model sees them"></div>
      </div>
      <div>
        <div class="prediction" id="prediction">Draw a digit.</div>
        <div class="bars" id="bars"></div>
      </div>
    </div>
    <h3>Example digits (real test images)</h3>
    <div class="examples" id="examples"></div>`;
  const pad = app.querySelector("#pad");
  const ctx = pad.getContext("2d");
  const bars = app.querySelector("#bars");
  const prediction = app.querySelector("#prediction");
  const seen = app.querySelector("#seen");

  const clear = () => {
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, SIZE, SIZE);
    prediction.textContent = "Draw a digit.";
    delete prediction.dataset.digit;
    delete prediction.dataset.digits;
    bars.innerHTML = "";
    seen.innerHTML = "";
  };
  clear();

  function showBars(probs, digit) {
    bars.innerHTML = probs.map((p, d) => `<div class="bar ${d === digit ? "top" : ""}"><span>${d}</span>
      <div class="fill" style="width:${(p * 100).toFixed(1)}%"></div><span>${(p * 100).toFixed(1)}%</span></div>`).join("");
  }

  function showSeen(digits) {
    seen.innerHTML = "";
    for (const values of digits) {
      const thumb = document.createElement("canvas");
      thumb.width = thumb.height = 28;
      drawDigit(thumb, values);
      seen.append(thumb);
    }
  }

  // One or more prepared digits (Float32Array(784) each) -> the model's digits, shown; returns {digits, probs}.
  async function classifyAll(digits) {
    const image = tf.tensor(Float32Array.from(digits.flatMap((d) => Array.from(d))), [digits.length, 28, 28, 1]);
    const out = await predict({ image });
    const probs = Array.from(await out.probabilities.data());
    const read = Array.from(await out.digit.data());
    tf.dispose([image, ...Object.values(out)]);
    const rows = read.map((_, i) => probs.slice(i * 10, i * 10 + 10));
    const sure = read.map((d, i) => `${(rows[i][d] * 100).toFixed(1)}%`);
    prediction.textContent = read.length === 1 ? `It's a ${read[0]} (${sure[0]})` : `It's ${read.join(" ")} (${sure.join(", ")})`;
    prediction.dataset.digit = read[0];
    prediction.dataset.digits = read.join("");
    showBars(rows[0], read[0]);
    return { digits: read, probs: rows };
  }

  async function classify(pixels) {
    const { digits, probs } = await classifyAll([pixels]);
    return { digit: digits[0], probs: probs[0] };
  }

  // A picture (canvas) of digits on paper, a board or a screen: split into digits, each prepared as MNIST.
  async function classifyPicture(canvas) {
    let digits;
    try {
      digits = prepareDigits(canvasPixels(canvas), canvas.width, canvas.height);
    } catch (err) {
      prediction.textContent = `No digit found: ${err.message}.`;
      prediction.dataset.digits = "";
      bars.innerHTML = "";
      seen.innerHTML = "";
      return null;
    }
    showSeen(digits);
    return classifyAll(digits);
  }

  async function classifyFile(file) {
    const img = await imageFromFile(file);
    if (!img) {
      prediction.textContent = `${file.name} is not an image this browser can read.`;
      return null;
    }
    const canvas = document.createElement("canvas");
    [canvas.width, canvas.height] = [img.naturalWidth, img.naturalHeight];
    canvas.getContext("2d").drawImage(img, 0, 0);
    return classifyPicture(canvas);
  }

  let drawing = false;
  pad.addEventListener("pointerdown", (e) => {
    drawing = true;
    pad.setPointerCapture(e.pointerId);
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = STROKE;
    ctx.lineCap = ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(e.offsetX, e.offsetY);
  });
  pad.addEventListener("pointermove", (e) => {
    if (!drawing) return;
    ctx.lineTo(e.offsetX, e.offsetY);
    ctx.stroke();
  });
  const finish = async () => {
    if (!drawing) return;
    drawing = false;
    let pixels;
    try {
      pixels = prepareDigit(canvasPixels(pad), SIZE, SIZE);
    } catch {
      return; // a dot too faint to be a digit: wait for more strokes
    }
    showSeen([pixels]);
    await classify(pixels);
  };
  pad.addEventListener("pointerup", finish);
  pad.addEventListener("pointercancel", finish);
  app.querySelector("#clear").addEventListener("click", clear);

  const input = app.querySelector("#file");
  input.addEventListener("change", () => input.files[0] && classifyFile(input.files[0]));
  const camera = cameraPanel(app.querySelector("#camera"), { onSnapshot: classifyPicture, label: "Read the digits" });

  const examples = app.querySelector("#examples");
  const image = samples?.inputs?.image;
  const n = image ? image.shape[0] : 0;
  for (let i = 0; i < n; i++) {
    const thumb = document.createElement("canvas");
    thumb.width = thumb.height = 28;
    const values = image.data.slice(i * 784, (i + 1) * 784);
    drawDigit(thumb, values);
    thumb.title = `test digit ${samples.labels?.[i] ?? ""}`;
    thumb.addEventListener("click", () => classify(Float32Array.from(values)));
    examples.append(thumb);
  }

  return { classify, classifyPicture, classifyFile, clear, camera, prepareDigits };
}
