"""The browser demos' static server: serving/web/ plus each project's exported TF.js model.

URL layout (all on 127.0.0.1 unless told otherwise):
  /                          serving/web/ (index.html lists the projects, demo.html?project=<name> runs one)
  /projects.json             every project (common.registry): name, title, summary, and whether it is exported
  /node_modules/...          serving/web/node_modules/ (TF.js from npm; no CDN)
  /models/<project>/...      artifacts/<project>/export/tfjs/ (model.json, weight shards, samples.json)

Run: `make project=mnist demo` (exports first if needed), or `python -m common.web_demo` to serve what exists.
`write_samples` writes the samples.json that the pages show and the browser tests compare with Keras.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from common import registry
from common.paths import DEFAULT_ARTIFACTS, REPO_ROOT, ArtifactPaths
from common.project import Project

WEB_ROOT = REPO_ROOT / "serving" / "web"
PROJECT_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# Debian's Chromium (`make install-all`), as the browser tests and the browser timings run it: headless, offline.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def tfjs_dir(artifacts: Path, project: str) -> Path:
    """Where a project's TF.js graph model is exported."""
    return artifacts / project / "export" / "tfjs"


@functools.cache
def project_cards() -> tuple[dict[str, str], ...]:
    """Name, title and one-line summary of every project with a demo, for the index and the pages.

    Built on the first request for /projects.json (it imports each project's demo module), then kept.
    """
    cards = []
    for name in registry.names():
        demo = registry.demo(name) if registry.has_demo(name) else None
        title, summary = (demo.title, demo.summary) if demo else (name, "")
        cards.append({"name": name, "title": title, "summary": summary})
    return tuple(cards)


class DemoHandler(SimpleHTTPRequestHandler):
    """Static files from serving/web/, with /models/<project>/ mapped into the artifacts folder."""

    def __init__(self, *args, artifacts: Path, model_dirs: dict[str, Path], **kwargs) -> None:
        self.artifacts = artifacts
        self.model_dirs = model_dirs
        super().__init__(*args, directory=str(WEB_ROOT), **kwargs)

    def model_dir(self, project: str) -> Path:
        return self.model_dirs.get(project, tfjs_dir(self.artifacts, project)).resolve()

    def do_GET(self) -> None:
        if urlsplit(self.path).path != "/projects.json":
            super().do_GET()
            return
        # Whether each model is exported is known here, so pages never request a model.json that is not there.
        listed = [
            {**card, "exported": (self.model_dir(card["name"]) / "model.json").is_file()} for card in project_cards()
        ]
        body = json.dumps(listed).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def translate_path(self, path: str) -> str:
        parts = [p for p in unquote(urlsplit(path).path).split("/") if p]
        if len(parts) >= 3 and parts[0] == "models" and PROJECT_NAME.match(parts[1]):
            base = self.model_dir(parts[1])
            target = base.joinpath(*parts[2:]).resolve()
            # Never outside the model folder, whatever the URL says.
            return str(target) if target.is_relative_to(base) else str(base / "missing")
        return super().translate_path(path)

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")  # a re-export shows up on reload
        super().end_headers()

    def log_message(self, format: str, *args) -> None:
        if not str(args[1] if len(args) > 1 else "").startswith(("2", "3")):
            super().log_message(format, *args)


def make_server(
    host: str = "127.0.0.1",
    port: int = 8080,
    artifacts: Path = DEFAULT_ARTIFACTS,
    model_dirs: dict[str, Path] | None = None,
) -> ThreadingHTTPServer:
    """A threaded HTTP server for the demos; port 0 picks a free one (see `server.server_address`).

    `model_dirs` maps a project to its TF.js folder where that is not `<artifacts>/<project>/export/tfjs`.
    """
    handler = functools.partial(DemoHandler, artifacts=Path(artifacts), model_dirs=dict(model_dirs or {}))
    return ThreadingHTTPServer((host, port), handler)


def write_samples(project: Project, cfg: Any, paths: ArtifactPaths) -> Path:
    """`samples.json` beside the TF.js model: the project's sample inputs and the Keras serving model's outputs.

    The page shows the inputs as examples; tests compare the browser's outputs with the Keras ones stored here.
    Format: {"inputs": {name: {"shape", "dtype", "data"}}, "outputs": {name: {...}}}, data flattened row-major,
    plus the project's `demo_extras` (e.g. "class_names").
    """
    import keras
    import numpy as np

    model = keras.models.load_model(paths.model)
    serving = project.serving_model(model, cfg)
    inputs = project.sample_inputs(cfg)
    if not isinstance(inputs, dict):
        inputs = {serving.inputs[0].name: inputs}
    outputs = serving(inputs if len(inputs) > 1 else next(iter(inputs.values())))
    if not isinstance(outputs, dict):
        outputs = dict(
            zip(serving.output_names, outputs if isinstance(outputs, list | tuple) else [outputs], strict=True)
        )

    def spec(array) -> dict:
        array = np.asarray(array)
        dtype = "int32" if array.dtype.kind in "iu" else "float32"
        return {"shape": list(array.shape), "dtype": dtype, "data": array.astype(dtype).ravel().tolist()}

    path = paths.export_dir / "tfjs" / "samples.json"
    path.write_text(
        json.dumps(
            {
                "inputs": {k: spec(v) for k, v in inputs.items()},
                "outputs": {k: spec(v) for k, v in outputs.items()},
                **project.demo_extras(model, cfg),
            }
        )
    )
    return path


def serve(
    project: str | None, host: str, port: int, artifacts: Path, model_dirs: dict[str, Path] | None = None
) -> None:
    """Serve until Ctrl-C, printing the URL to open."""
    server = make_server(host, port, artifacts, model_dirs)
    url = f"http://{host}:{server.server_address[1]}/"
    print(f"Demo: {url}demo.html?project={project}" if project else f"Demos: {url}")
    print("Ctrl-C stops the server.")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("\nstopped")
    finally:
        server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the TF.js browser demos.")
    parser.add_argument("--project", help="print this project's page URL")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--artifacts", type=Path, default=DEFAULT_ARTIFACTS)
    args = parser.parse_args()
    serve(args.project, args.host, args.port, args.artifacts)


if __name__ == "__main__":
    main()
