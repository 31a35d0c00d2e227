// The one loader every demo page uses: finds the project's TF.js graph model (projects.json, served by
// common/web_demo.py, says which are exported), says what to run if it is
// missing, loads it with its example inputs, and mounts the project's page module (js/projects/<name>.js).
/* global tf */

export const modelUrl = (project) => `models/${project}/model.json`;
export const samplesUrl = (project) => `models/${project}/samples.json`;

// Tensors from samples.json: {"<name>": {"shape": [...], "dtype": "float32", "data": [...]}}.
export function tensorsFrom(spec) {
  return Object.fromEntries(
    Object.entries(spec).map(([name, t]) => [name, tf.tensor(t.data, t.shape, t.dtype || "float32")]),
  );
}

// Wraps a graph model: feeds and results keyed by the serving signature's input and output names.
export function namedPredictor(model) {
  const outputNames = Object.keys(model.modelSignature?.outputs || {});
  return async (feeds) => {
    const names = outputNames.length ? outputNames : model.outputs.map((o) => o.name);
    let results;
    try {
      results = model.execute(feeds, names);
    } catch {
      results = await model.executeAsync(feeds, names); // graphs with dynamic ops (e.g. NMS)
    }
    results = Array.isArray(results) ? results : [results];
    return Object.fromEntries(names.map((name, i) => [name, results[i]]));
  };
}

// The model's outputs for every example input of samples.json, as plain arrays (for tests and the console).
async function predictSamples(predict, samples) {
  const feeds = tensorsFrom(samples.inputs);
  const out = await predict(feeds);
  const result = Object.fromEntries(
    await Promise.all(Object.entries(out).map(async ([k, t]) => [k, Array.from(await t.data())])),
  );
  tf.dispose([...Object.values(feeds), ...Object.values(out)]);
  return result;
}

function showMissing(app, project) {
  app.innerHTML = `<div class="notice" id="missing">model not exported yet: run
    <code>make project=${project} export</code>, then reload this page.</div>`;
  document.body.dataset.state = "missing";
}

export async function startDemo(project, app) {
  const projects = await (await fetch("projects.json")).json();
  const info = projects.find((p) => p.name === project);
  if (!info) {
    app.innerHTML = `<div class="notice">unknown project "${project}"; choose one on the <a href="./">index</a>.</div>`;
    document.body.dataset.state = "error";
    return;
  }
  document.title = `${info.title}: demo`;
  document.getElementById("title").textContent = info.title;
  if (!info.exported) {
    showMissing(app, project);
    return;
  }
  try {
    await tf.ready();
    document.getElementById("backend").textContent = `TF.js ${tf.version.tfjs}, ${tf.getBackend()} backend`;
    const model = await tf.loadGraphModel(modelUrl(project));
    const response = await fetch(samplesUrl(project));
    const samples = response.ok ? await response.json() : null;
    const page = await import(`./projects/${project}.js`);
    app.innerHTML = "";
    const predict = namedPredictor(model);
    const demo = await page.mount(app, { model, predict, samples });
    window.demo = { project, model, predict, samples, predictSamples: () => predictSamples(predict, samples), ...demo };
    document.body.dataset.state = "ready";
  } catch (err) {
    app.innerHTML = `<div class="notice">could not run the model: ${err.message}</div>`;
    document.body.dataset.state = "error";
    console.error(err);
  }
}
