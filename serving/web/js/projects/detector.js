// SSD detector page: pick an example scene, upload an image or use the camera (a snapshot, or live: frame after
// frame); boxes with labels and scores are drawn on it.
// The image is prepared as projects/detector/images.py does: transparency on white, resized (not padded) to the
// model's square, RGB in [0, 255]. NMS runs inside the graph model (the loader falls back to executeAsync for it).
// The slider hides boxes scoring below the threshold without running the model again.
/* global tf */
import { cameraPanel } from "../camera.js";
import { imageFromFile } from "../image_file.js";

const VIEW = 384; // side of the canvas the boxes are drawn on
const COLOURS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324", "#800000",
  "#000075"];

// Any drawable -> [canvas of the model's input size, Float32Array(size*size*3) RGB in [0, 255]].
function modelPixels(source, size) {
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = size;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, size, size);
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(source, 0, 0, size, size);
  const rgba = ctx.getImageData(0, 0, size, size).data;
  return [canvas, Float32Array.from({ length: size * size * 3 }, (_, i) => rgba[Math.floor(i / 3) * 4 + (i % 3)])];
}

function pixelsCanvas(values, size) {
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = size;
  const image = new ImageData(size, size);
  for (let p = 0; p < size * size; p++) image.data.set([...values.slice(p * 3, p * 3 + 3), 255], p * 4);
  canvas.getContext("2d").putImageData(image, 0, 0);
  return canvas;
}

export async function mount(app, { model, predict, samples }) {
  const size = model.inputs[0].shape[1];
  const names = samples?.class_names ?? [];
  const label = (k) => names[k] ?? `class ${k}`;
  app.innerHTML = `
    <div class="row">
      <div>
        <canvas id="view" width="${VIEW}" height="${VIEW}" style="border-radius:8px;background:#fff"
          aria-label="the image with the detected boxes"></canvas>
        <div class="status">what the model sees: ${size}x${size}, shown ${VIEW}x${VIEW}</div>
      </div>
      <div>
        <label class="notice" style="display:block;cursor:pointer">Upload an image
          <input id="file" type="file" accept="image/*"></label>
        <div id="camera"></div>
        <p><label>score threshold <input id="threshold" type="range" min="0" max="1" step="0.01">
          <span id="threshold-value"></span></label></p>
        <div class="prediction" id="summary">Choose an example or upload an image.</div>
        <ol id="detections" style="font-variant-numeric: tabular-nums"></ol>
      </div>
    </div>
    <h3>Example scenes (real test scenes)</h3>
    <div class="examples" id="examples"></div>`;
  const view = app.querySelector("#view");
  const ctx = view.getContext("2d");
  const slider = app.querySelector("#threshold");
  const sliderValue = app.querySelector("#threshold-value");
  const summary = app.querySelector("#summary");
  const list = app.querySelector("#detections");
  slider.value = samples?.display_threshold ?? 0.4;
  let shown = { picture: null, found: [] };

  function draw() {
    const threshold = Number(slider.value);
    sliderValue.textContent = threshold.toFixed(2);
    ctx.clearRect(0, 0, VIEW, VIEW);
    if (shown.picture) ctx.drawImage(shown.picture, 0, 0, VIEW, VIEW);
    const visible = shown.found.filter((d) => d.score >= threshold);
    ctx.font = "14px system-ui, sans-serif";
    ctx.lineWidth = 2.5;
    for (const d of visible) {
      const [y1, x1, y2, x2] = d.box.map((v) => v * VIEW);
      const colour = COLOURS[d.classId % COLOURS.length];
      const text = `${label(d.classId)} ${d.score.toFixed(2)}`;
      ctx.strokeStyle = ctx.fillStyle = colour;
      ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
      ctx.fillRect(x1, Math.max(0, y1 - 18), ctx.measureText(text).width + 6, 18);
      ctx.fillStyle = "#fff";
      ctx.fillText(text, x1 + 3, Math.max(13, y1 - 5));
    }
    summary.textContent = `${visible.length} of ${shown.found.length} detections at score >= ${threshold.toFixed(2)}`;
    summary.dataset.count = visible.length;
    list.innerHTML = visible.map((d) => `<li>${label(d.classId)} ${d.score.toFixed(3)}</li>`).join("");
  }

  // Runs the model on (size*size*3) pixels; returns every detection [{box, score, classId}] it kept after NMS.
  async function detect(pixels, picture) {
    const image = tf.tensor(pixels, [1, size, size, 3]);
    const out = await predict({ image });
    const [boxes, scores, classes, count] = await Promise.all(
      ["boxes", "scores", "classes", "num_detections"].map((k) => out[k].data()),
    );
    tf.dispose([image, ...Object.values(out)]);
    const found = Array.from({ length: count[0] }, (_, i) => ({
      box: Array.from(boxes.slice(i * 4, i * 4 + 4)),
      score: scores[i],
      classId: classes[i],
    }));
    shown = { picture: picture ?? pixelsCanvas(pixels, size), found };
    draw();
    return found;
  }

  async function detectFile(file) {
    const img = await imageFromFile(file);
    if (!img) {
      summary.textContent = `${file.name} is not an image this browser can read.`;
      return null;
    }
    const [canvas, pixels] = modelPixels(img, size);
    return detect(pixels, canvas);
  }

  slider.addEventListener("input", draw);
  const input = app.querySelector("#file");
  input.addEventListener("change", () => input.files[0] && detectFile(input.files[0]));

  // The camera's frame, shown as the model sees it (resized to its square), boxes drawn over it.
  const detectFrame = (frame) => {
    const [canvas, pixels] = modelPixels(frame, size);
    return detect(pixels, canvas);
  };
  const camera = cameraPanel(app.querySelector("#camera"), { onSnapshot: detectFrame, onFrame: detectFrame });

  const examples = app.querySelector("#examples");
  const image = samples?.inputs?.image;
  const n = image ? image.shape[0] : 0;
  const row = size * size * 3;
  for (let i = 0; i < n; i++) {
    const values = Float32Array.from(image.data.slice(i * row, (i + 1) * row));
    const thumb = pixelsCanvas(values, size);
    thumb.style.width = thumb.style.height = "72px";
    thumb.addEventListener("click", () => detect(values));
    examples.append(thumb);
  }
  if (n) await detect(Float32Array.from(image.data.slice(0, row)));

  return { detect, detectFile, camera, setThreshold: (t) => { slider.value = t; draw(); } };
}
