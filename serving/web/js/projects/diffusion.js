// Diffusion page: DDIM sampling in TF.js around the exported denoiser, drawn as it goes. The model takes `noisy`
// (batch, size, size, 3) float32, `timestep` (batch,) int32 [and `label` (batch,) int32] and returns `noise`; the
// schedule (abar per timestep), the class names and the guidance scale come from samples.json. The loop is the one
// of projects/diffusion/sampling.py: the same timesteps (integer arithmetic), the clipped clean estimate, eta 0,
// classifier-free guidance with "no class" = num_classes, applied at the timesteps samples.guided_timesteps spans
// (first and last, inclusive; the plain conditional model elsewhere).
/* global tf */

const IMAGES = 4;

// The i-th of `steps` DDIM timesteps from T-1 down to 0; T past the last ("clean").
export function timestepAt(i, steps, T) {
  if (i >= steps) return T;
  return T - 1 - Math.floor(((T - 1) * i) / Math.max(steps - 1, 1));
}

function drawImages(container, x, size) {
  // x: (n, size, size, 3) in [-1, 1]
  const pixels = x.add(1).mul(127.5).clipByValue(0, 255).round().dataSync();
  const canvases = container.querySelectorAll("canvas");
  canvases.forEach((canvas, n) => {
    const image = new ImageData(size, size);
    for (let p = 0; p < size * size; p++) {
      const k = (n * size * size + p) * 3;
      image.data.set([pixels[k], pixels[k + 1], pixels[k + 2], 255], p * 4);
    }
    canvas.width = canvas.height = size;
    canvas.getContext("2d").putImageData(image, 0, 0);
  });
}

export async function mount(app, { predict, samples }) {
  const abar = samples.alphas_cumprod;
  const T = samples.timesteps;
  const guidedSteps = samples.guided_timesteps;
  const size = samples.image_size;
  const classes = samples.num_classes;
  const names = samples.class_names ?? [];
  app.innerHTML = `
    <div class="row" style="align-items:center;gap:1rem;flex-wrap:wrap">
      <label>DDIM steps <input id="steps" type="range" min="1" max="${Math.min(T, 100)}" step="1"
        value="${Math.min(samples.default_steps, T)}"> <span id="steps-value"></span></label>
      ${classes ? `<label>class <select id="label">${names.map((n, k) => `<option value="${k}">${n}</option>`).join("")}</select></label>
      <label>guidance <input id="guidance" type="number" min="0" max="10" step="0.5" value="${samples.guidance}" style="width:4rem"></label>` : ""}
      <button id="sample">Sample ${IMAGES} images</button>
      <span class="status" id="progress"></span>
    </div>
    <h3>Noisy image x<sub>t</sub></h3>
    <div class="examples" id="noisy" style="display:grid;grid-template-columns:repeat(${IMAGES},128px);gap:4px"></div>
    <h3>The model's estimate of the clean image</h3>
    <div class="examples" id="clean" style="display:grid;grid-template-columns:repeat(${IMAGES},128px);gap:4px"></div>`;
  const $ = (id) => app.querySelector(`#${id}`);
  for (const id of ["noisy", "clean"]) {
    for (let n = 0; n < IMAGES; n++) {
      const canvas = document.createElement("canvas");
      canvas.style.width = canvas.style.height = "128px";
      canvas.style.imageRendering = "pixelated";
      $(id).append(canvas);
    }
  }
  const showSteps = () => ($("steps-value").textContent = $("steps").value);
  $("steps").addEventListener("input", showSteps);
  showSteps();

  // The (guided) predicted noise in x at timestep t.
  async function noiseAt(x, t, label, scale) {
    const n = x.shape[0];
    const guidance = t >= guidedSteps[0] && t <= guidedSteps[1] ? scale : 1;
    const both = classes && guidance !== 1;
    const feeds = {
      noisy: both ? tf.concat([x, x]) : x,
      timestep: tf.fill([both ? 2 * n : n], t, "int32"),
    };
    if (classes) {
      const ids = Array(n).fill(label);
      feeds.label = tf.tensor(both ? ids.concat(Array(n).fill(classes)) : ids, undefined, "int32");
    }
    const out = await predict(feeds);
    const eps = out.noise;
    tf.dispose([feeds.timestep, feeds.label, both ? feeds.noisy : null].filter(Boolean));
    if (!both) return eps;
    const guided = tf.tidy(() => {
      const [cond, uncond] = tf.split(eps, 2);
      return uncond.add(cond.sub(uncond).mul(guidance));
    });
    eps.dispose();
    return guided;
  }

  // DDIM from fresh noise; draws x_t and the clean estimate after every step. Returns the final images.
  async function sample(steps = Number($("steps").value), label = classes ? Number($("label").value) : 0) {
    const guidance = classes ? Number($("guidance").value) : 1;
    let x = tf.randomNormal([IMAGES, size, size, 3]);
    drawImages($("noisy"), x, size);
    for (let i = 0; i < steps; i++) {
      const t = timestepAt(i, steps, T);
      const next = timestepAt(i + 1, steps, T);
      const [a, aPrev] = [abar[t], next >= T ? 1 : abar[next]];
      const eps = await noiseAt(x, t, label, guidance);
      const [xPrev, x0] = tf.tidy(() => {
        const clean = x.sub(eps.mul(Math.sqrt(1 - a))).div(Math.sqrt(a)).clipByValue(-1, 1);
        const e = x.sub(clean.mul(Math.sqrt(a))).div(Math.sqrt(1 - a));
        return [clean.mul(Math.sqrt(aPrev)).add(e.mul(Math.sqrt(1 - aPrev))), clean];
      });
      tf.dispose([x, eps]);
      x = xPrev;
      drawImages($("noisy"), x, size);
      drawImages($("clean"), x0, size);
      x0.dispose();
      $("progress").textContent = `step ${i + 1} of ${steps} (t = ${t})`;
      await tf.nextFrame();
    }
    return x;
  }

  async function run() {
    $("sample").disabled = true;
    const start = performance.now();
    const steps = Number($("steps").value);
    (await sample()).dispose();
    const ms = (performance.now() - start) / IMAGES;
    $("progress").textContent = `${steps} steps: ${ms.toFixed(0)} ms per image in ${tf.getBackend()}`;
    $("sample").disabled = false;
  }

  $("sample").addEventListener("click", run);
  await run();
  return { sample, timestepAt, run };
}
