// MNIST page: draw a digit (mouse, touch or pen), see the model's probabilities; try real test digits.
// The drawing is made to look like MNIST before it is fed to the model, as projects/mnist/data.py does for
// files: white ink on black, cropped to its bounding box, scaled to fit 20x20 and centred in 28x28.
/* global tf */
const SIZE = 280;
const STROKE = 22;

function mnistPixels(canvas) {
  const ctx = canvas.getContext("2d");
  const { data } = ctx.getImageData(0, 0, SIZE, SIZE);
  let [top, left, bottom, right] = [SIZE, SIZE, -1, -1];
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      if (data[(y * SIZE + x) * 4] > 50) {
        top = Math.min(top, y); bottom = Math.max(bottom, y);
        left = Math.min(left, x); right = Math.max(right, x);
      }
    }
  }
  if (bottom < 0) return null; // nothing drawn
  const [w, h] = [right - left + 1, bottom - top + 1];
  const scale = 20 / Math.max(w, h);
  const [sw, sh] = [Math.max(1, Math.round(w * scale)), Math.max(1, Math.round(h * scale))];
  const small = document.createElement("canvas");
  small.width = small.height = 28;
  const sctx = small.getContext("2d");
  sctx.fillStyle = "#000";
  sctx.fillRect(0, 0, 28, 28);
  sctx.imageSmoothingEnabled = true;
  sctx.imageSmoothingQuality = "high";
  sctx.drawImage(canvas, left, top, w, h, Math.floor((28 - sw) / 2), Math.floor((28 - sh) / 2), sw, sh);
  const pixels = sctx.getImageData(0, 0, 28, 28).data;
  return Float32Array.from({ length: 784 }, (_, i) => pixels[i * 4] / 255);
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

  const clear = () => {
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, SIZE, SIZE);
    prediction.textContent = "Draw a digit.";
    bars.innerHTML = "";
  };
  clear();

  async function classify(pixels) {
    const image = tf.tensor(pixels, [1, 28, 28, 1]);
    const out = await predict({ image });
    const probs = Array.from(await out.probabilities.data());
    const digit = (await out.digit.data())[0];
    tf.dispose([image, ...Object.values(out)]);
    prediction.textContent = `It's a ${digit} (${(probs[digit] * 100).toFixed(1)}%)`;
    prediction.dataset.digit = digit;
    bars.innerHTML = probs.map((p, d) => `<div class="bar ${d === digit ? "top" : ""}"><span>${d}</span>
      <div class="fill" style="width:${(p * 100).toFixed(1)}%"></div><span>${(p * 100).toFixed(1)}%</span></div>`).join("");
    return { digit, probs };
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
    const pixels = mnistPixels(pad);
    if (pixels) await classify(pixels);
  };
  pad.addEventListener("pointerup", finish);
  pad.addEventListener("pointercancel", finish);
  app.querySelector("#clear").addEventListener("click", clear);

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

  return { classify, clear };
}
