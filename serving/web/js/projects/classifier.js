// Image classifier page: upload or drop an image, or take one with the camera; see the model's top-5 classes; try
// real test images.
// The image is prepared as projects/classifier/images.py does for training: transparency composited onto
// white, centred in a white square (aspect ratio kept) and resized to the model's input size, RGB in [0, 255].
/* global tf */
import { cameraPanel } from "../camera.js";
import { imageFromFile } from "../image_file.js";

const TOP_K = 5;

function squareCanvas(size) {
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = size;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, size, size);
  return [canvas, ctx];
}

// Any drawable (an <img> of any size, possibly transparent) -> the model's input pixels, Float32Array(size*size*3).
function modelPixels(source, size, preview) {
  const [canvas, ctx] = squareCanvas(size);
  const [w, h] = [source.naturalWidth || source.width, source.naturalHeight || source.height];
  const scale = size / Math.max(w, h);
  const [sw, sh] = [w * scale, h * scale];
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(source, (size - sw) / 2, (size - sh) / 2, sw, sh);
  preview.getContext("2d").drawImage(canvas, 0, 0, preview.width, preview.height);
  const rgba = ctx.getImageData(0, 0, size, size).data;
  return Float32Array.from({ length: size * size * 3 }, (_, i) => rgba[Math.floor(i / 3) * 4 + (i % 3)]);
}

function drawPixels(canvas, values, size) {
  const image = new ImageData(size, size);
  for (let p = 0; p < size * size; p++) image.data.set([...values.slice(p * 3, p * 3 + 3), 255], p * 4);
  canvas.width = canvas.height = size;
  canvas.getContext("2d").putImageData(image, 0, 0);
}

export async function mount(app, { model, predict, samples }) {
  const size = model.inputs[0].shape[1];
  const names = samples?.class_names ?? [];
  app.innerHTML = `
    <div class="row">
      <div>
        <label id="drop" class="notice" style="display:block;width:240px;text-align:center;cursor:pointer">
          Drop an image here, or click to choose one
          <input id="file" type="file" accept="image/*" hidden>
        </label>
        <div id="camera"></div>
        <canvas id="preview" width="240" height="240" style="margin-top:.6rem;border-radius:8px;background:#fff"
          aria-label="what the model sees"></canvas>
        <div class="status">what the model sees: ${size}x${size}, transparency on white</div>
      </div>
      <div>
        <div class="prediction" id="prediction">Choose an image.</div>
        <div class="bars" id="bars" style="width: 26rem"></div>
      </div>
    </div>
    <h3>Example images (real test images)</h3>
    <div class="examples" id="examples"></div>`;
  const preview = app.querySelector("#preview");
  const prediction = app.querySelector("#prediction");
  const bars = app.querySelector("#bars");
  const label = (k) => names[k] ?? `class ${k}`;

  async function classify(pixels) {
    const image = tf.tensor(pixels, [1, size, size, 3]);
    const out = await predict({ image });
    const probs = Array.from(await out.probabilities.data());
    const classId = (await out.class_id.data())[0];
    tf.dispose([image, ...Object.values(out)]);
    const top = probs.map((p, k) => [p, k]).sort((a, b) => b[0] - a[0]).slice(0, TOP_K);
    prediction.textContent = `${label(classId)} (${(probs[classId] * 100).toFixed(1)}%)`;
    prediction.dataset.classId = classId;
    prediction.dataset.className = label(classId);
    bars.innerHTML = top.map(([p, k]) => `<div class="bar ${k === classId ? "top" : ""}"
      style="grid-template-columns: 10rem 1fr 3.5rem"><span>${label(k)}</span>
      <div class="fill" style="width:${(p * 100).toFixed(1)}%"></div><span>${(p * 100).toFixed(1)}%</span></div>`).join("");
    return { classId, className: label(classId), probs };
  }

  async function classifyFile(file) {
    const img = await imageFromFile(file);
    if (!img) {
      prediction.textContent = `${file.name} is not an image this browser can read.`;
      bars.innerHTML = "";
      return null;
    }
    return classify(modelPixels(img, size, preview));
  }

  const drop = app.querySelector("#drop");
  const input = app.querySelector("#file");
  input.addEventListener("change", () => input.files[0] && classifyFile(input.files[0]));
  drop.addEventListener("dragover", (e) => e.preventDefault());
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    if (e.dataTransfer.files[0]) classifyFile(e.dataTransfer.files[0]);
  });

  const camera = cameraPanel(app.querySelector("#camera"), {
    onSnapshot: (frame) => classify(modelPixels(frame, size, preview)),
  });

  const examples = app.querySelector("#examples");
  const image = samples?.inputs?.image;
  const n = image ? image.shape[0] : 0;
  const row = size * size * 3;
  for (let i = 0; i < n; i++) {
    const thumb = document.createElement("canvas");
    const values = image.data.slice(i * row, (i + 1) * row);
    drawPixels(thumb, values, size);
    thumb.style.width = thumb.style.height = "64px";
    thumb.addEventListener("click", () => {
      preview.getContext("2d").drawImage(thumb, 0, 0, preview.width, preview.height);
      classify(Float32Array.from(values));
    });
    examples.append(thumb);
  }

  return { classify, classifyFile, camera };
}
