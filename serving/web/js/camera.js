// Camera input for the demo pages: a live preview (getUserMedia) and snapshots of it, or a stream of frames.
// `cameraPanel` adds the controls to a page: "Start camera", the preview, "Take picture", and, when the page
// asks for it, "Live" (every frame to the page while it is on, one at a time). Without a camera, or when the
// person says no, the panel says so in words: nothing is thrown and nothing is logged as an error.

export const cameraSupported = () => Boolean(globalThis.navigator?.mediaDevices?.getUserMedia);

// The picture in the preview now, as a canvas of the camera's own size.
export function snapshot(video) {
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0);
  return canvas;
}

function reason(err) {
  if (err?.name === "NotAllowedError") return "the browser was not allowed to use the camera";
  if (err?.name === "NotFoundError" || err?.name === "OverconstrainedError") return "no camera was found";
  if (err?.name === "NotReadableError") return "the camera is in use by another program";
  return `the camera could not start (${err?.message ?? err})`;
}

// Adds the camera controls to `container`. onSnapshot(canvas) gets each picture taken; with `live`, onFrame(canvas)
// gets frame after frame while "Live" is ticked (the next frame only once the page has finished the last one).
// Returns {start, stop, snap, setLive, video}.
export function cameraPanel(container, { onSnapshot, onFrame = null, live = false, label = "Take picture" }) {
  container.innerHTML = `
    <div class="camera">
      <button id="camera-start" type="button">Start camera</button>
      <button id="camera-snap" type="button" disabled>${label}</button>
      ${onFrame ? `<label><input id="camera-live" type="checkbox" ${live ? "checked" : ""}> Live</label>` : ""}
      <button id="camera-stop" type="button" disabled>Stop</button>
      <div class="status" id="camera-status">${cameraSupported() ? "camera off" : "this browser offers no camera here (it needs https or localhost)"}</div>
      <video id="camera-video" playsinline muted width="240" style="display:none;border-radius:8px;background:#000"
        aria-label="camera preview"></video>
    </div>`;
  const video = container.querySelector("#camera-video");
  const status = container.querySelector("#camera-status");
  const [startButton, snapButton, stopButton] = ["start", "snap", "stop"].map((k) =>
    container.querySelector(`#camera-${k}`),
  );
  const liveBox = container.querySelector("#camera-live");
  let stream = null;
  let looping = false;

  async function loop() {
    if (looping) return;
    looping = true;
    while (stream && liveBox?.checked && video.videoWidth) {
      await onFrame(snapshot(video));
      await new Promise((resolve) => requestAnimationFrame(resolve));
    }
    looping = false;
  }

  async function start() {
    if (!cameraSupported()) return false;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
    } catch (err) {
      status.textContent = reason(err);
      return false;
    }
    video.srcObject = stream;
    video.style.display = "block";
    await video.play();
    status.textContent = `camera on: ${video.videoWidth}x${video.videoHeight}`;
    container.dataset.camera = "on";
    snapButton.disabled = stopButton.disabled = false;
    startButton.disabled = true;
    if (liveBox?.checked) loop();
    return true;
  }

  function stop() {
    stream?.getTracks().forEach((track) => track.stop());
    stream = null;
    video.srcObject = null;
    video.style.display = "none";
    status.textContent = "camera off";
    container.dataset.camera = "off";
    snapButton.disabled = stopButton.disabled = true;
    startButton.disabled = false;
  }

  async function snap() {
    if (!stream || !video.videoWidth) return null;
    return onSnapshot(snapshot(video));
  }

  function setLive(on) {
    if (!liveBox) return;
    liveBox.checked = on;
    if (on) loop();
  }

  startButton.addEventListener("click", start);
  stopButton.addEventListener("click", stop);
  snapButton.addEventListener("click", snap);
  liveBox?.addEventListener("change", () => liveBox.checked && loop());
  return { start, stop, snap, setLive, video };
}
