// Self-driving car page: replay a recorded drive on a held-out track, frame by frame. Each frame goes through the
// TF.js model live in the browser; its steering is drawn next to the expert driver's for the same frame.
// The replay ships in samples.json (`replay`): the frames as one PNG sprite (a column of 96x96 frames, lossless),
// the expert's steering and the Keras model's steering for each (the test compares the browser with Keras).
/* global tf */
const SCALE = 4; // the 96x96 frame shown at 384x384, pixelated
const CHART_W = 560;
const CHART_H = 160;

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error("the replay sprite could not be decoded"));
    image.src = src;
  });
}

// A steering gauge: a bar growing from the middle, left for negative (left) steering, right for positive.
function gauge(label, color) {
  const row = document.createElement("div");
  row.className = "gauge";
  row.innerHTML = `<span class="label">${label}</span>
    <div class="track" style="position:relative;width:260px;height:16px;background:#eee;border-radius:3px">
      <div class="fill" style="position:absolute;top:0;height:16px;background:${color};border-radius:3px"></div>
      <div style="position:absolute;left:130px;top:-2px;width:1px;height:20px;background:#555"></div></div>
    <span class="value" style="font-variant-numeric:tabular-nums">—</span>`;
  row.style.cssText = "display:grid;grid-template-columns:9rem 260px 4rem;gap:.5rem;align-items:center;margin:4px 0";
  const fill = row.querySelector(".fill");
  const value = row.querySelector(".value");
  return {
    row,
    set(v) {
      const w = Math.min(1, Math.abs(v)) * 130;
      fill.style.left = `${v < 0 ? 130 - w : 130}px`;
      fill.style.width = `${w}px`;
      value.textContent = (v >= 0 ? "+" : "") + v.toFixed(3);
    },
  };
}

function drawChart(canvas, expert, model, current) {
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, CHART_W, CHART_H);
  ctx.strokeStyle = "#ccc";
  ctx.beginPath();
  ctx.moveTo(0, CHART_H / 2);
  ctx.lineTo(CHART_W, CHART_H / 2);
  ctx.stroke();
  const n = expert.length;
  const x = (i) => (i / Math.max(1, n - 1)) * (CHART_W - 10) + 5;
  const y = (v) => CHART_H / 2 - v * (CHART_H / 2 - 8);
  for (const [values, color] of [[expert, "#2a9d3a"], [model, "#d62828"]]) {
    ctx.strokeStyle = color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    let started = false;
    values.forEach((v, i) => {
      if (v === null) return;
      if (started) ctx.lineTo(x(i), y(v));
      else ctx.moveTo(x(i), y(v));
      started = true;
    });
    ctx.stroke();
  }
  ctx.fillStyle = "#555";
  ctx.fillRect(x(current) - 1, 0, 2, CHART_H);
}

export async function mount(app, { predict, samples }) {
  const replay = samples?.replay;
  if (!replay) {
    app.innerHTML = `<div class="notice">samples.json has no replay: run <code>make project=driving demo</code>.</div>`;
    return {};
  }
  const [h, w] = replay.frame_size;
  app.innerHTML = `
    <div class="row">
      <div>
        <canvas id="frame" width="${w}" height="${h}" aria-label="camera frame"
          style="width:${w * SCALE}px;height:${h * SCALE}px;image-rendering:pixelated;border-radius:6px"></canvas>
        <div><button id="play">Play</button> <input id="slider" type="range" min="0" max="${replay.frames - 1}"
          value="0" style="width:260px"> <span class="status" id="position"></span></div>
      </div>
      <div>
        <p>A drive on a track the model never trained on, recorded from the expert driver. Every frame is fed to
        the CNN running here in your browser (TF.js); its steering is compared with the expert's.</p>
        <div id="gauges"></div>
        <div class="prediction" id="throttle"></div>
        <canvas id="chart" width="${CHART_W}" height="${CHART_H}" aria-label="steering over the replay"></canvas>
        <div class="status"><span style="color:#2a9d3a">expert</span> ·
          <span style="color:#d62828">CNN (TF.js)</span> steering over the replay; negative: left</div>
        <div class="status" id="error"></div>
      </div>
    </div>`;
  const sprite = await loadImage(replay.sprite);
  const canvas = app.querySelector("#frame");
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  const chart = app.querySelector("#chart");
  const slider = app.querySelector("#slider");
  const position = app.querySelector("#position");
  const model = gauge("CNN (TF.js)", "#d62828");
  const expert = gauge("expert", "#2a9d3a");
  app.querySelector("#gauges").append(model.row, expert.row);
  const predicted = new Array(replay.frames).fill(null);

  // Frame i of the sprite, as the model's input: (1, h, w, 3) int32 RGB (the graph model takes uint8 as int32).
  function frameTensor(i) {
    ctx.drawImage(sprite, 0, i * h, w, h, 0, 0, w, h);
    const rgba = ctx.getImageData(0, 0, w, h).data;
    const rgb = new Int32Array(w * h * 3);
    for (let p = 0; p < w * h; p++) rgb.set([rgba[p * 4], rgba[p * 4 + 1], rgba[p * 4 + 2]], p * 3);
    return tf.tensor(rgb, [1, h, w, 3], "int32");
  }

  async function show(i) {
    const frame = frameTensor(i);
    const out = await predict({ frame });
    const steering = (await out.steering.data())[0];
    const throttle = (await out.throttle.data())[0];
    tf.dispose([frame, ...Object.values(out)]);
    predicted[i] = steering;
    model.set(steering);
    expert.set(replay.expert_steering[i]);
    app.querySelector("#throttle").textContent =
      `throttle ${throttle >= 0 ? "+" : ""}${throttle.toFixed(2)} (${throttle >= 0 ? "gas" : "brake"})`;
    const errors = predicted.flatMap((v, k) => (v === null ? [] : [Math.abs(v - replay.expert_steering[k])]));
    const mae = errors.reduce((a, b) => a + b, 0) / errors.length;
    position.textContent = `frame ${i + 1} of ${replay.frames}`;
    app.querySelector("#error").textContent = `mean |CNN - expert| over the frames seen: ${mae.toFixed(3)}`;
    slider.value = i;
    drawChart(chart, replay.expert_steering, predicted, i);
    return { steering, throttle };
  }

  // Every frame of the replay through the model, in order: the CNN's steering per frame (for tests and the chart).
  async function predictReplay() {
    const out = [];
    for (let i = 0; i < replay.frames; i++) out.push((await show(i)).steering);
    return out;
  }

  let timer = null;
  const play = app.querySelector("#play");
  play.addEventListener("click", () => {
    if (timer) {
      clearInterval(timer);
      timer = null;
      play.textContent = "Play";
      return;
    }
    play.textContent = "Pause";
    let i = Number(slider.value);
    let busy = false;
    timer = setInterval(async () => {
      if (busy) return;
      busy = true;
      i = (i + 1) % replay.frames;
      await show(i);
      busy = false;
    }, replay.seconds_per_frame * 1000);
  });
  slider.addEventListener("input", () => show(Number(slider.value)));
  await show(0);
  return { show, predictReplay };
}
