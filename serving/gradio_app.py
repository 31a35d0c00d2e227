"""A Gradio demo of a project's model, over the same SavedModels the server serves.

    python -m serving.gradio_app --project mnist [--repository artifacts/serving] [--version N] [--port 7860]

`make project=mnist gradio` runs it on http://127.0.0.1:7860. The project's
`projects/<name>/demo.py` says which widgets fit its input (mnist: a sketchpad
and an upload) and how their values become the model's input; this file loads
the SavedModel (the latest version unless --version) and wires the two together.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from common.paths import REPO_ROOT
from common.runtime import quiet_tensorflow

from .server import DEFAULT_REPOSITORY

SIGNATURE = "serving_default"


def project_demo(project: str) -> tuple[ModuleType, str]:
    """The project's demo module (`projects/<project>/demo.py`) and its model's name in the repository."""
    if not (REPO_ROOT / "projects" / project / "demo.py").is_file():
        raise SystemExit(f"error: project {project!r} has no demo; add projects/{project}/demo.py (see mnist's)")
    demo = importlib.import_module(f"projects.{project}.demo")
    return demo, importlib.import_module(f"projects.{project}.project").PROJECT.serving_name


def predictor(project: str, repository: Path, version: int | None = None) -> tuple[Callable[..., Any], str]:
    """The function the app calls, widget values in -> the demo's answer out (mnist: {"0": p0, ...}), and a
    line saying which SavedModel answers.

    Raises:
        FileNotFoundError: the project's model is not in the repository (the message says how to export it).
    """
    import gradio as gr

    from .model_version import LoadedVersion
    from .repository import find_version

    demo, name = project_demo(project)
    number, path = find_version(repository, name, version)
    model = LoadedVersion(name, number, path)
    signature_name = getattr(demo, "SIGNATURE", SIGNATURE)  # a demo may feed another signature
    signature = model.signature(signature_name)
    answer = getattr(demo, "answer", None) or demo.labels  # a demo whose answer is not labels (an image) names it
    if hasattr(demo, "use_signature"):  # a demo whose request depends on the model (the GAN's noise length)
        demo.use_signature(signature)

    def predict(*values: Any) -> Any:
        try:
            inputs = demo.gradio_request(*values)
        except ValueError as err:
            raise gr.Error(str(err)) from None
        outputs = model.predict(signature_name, signature.check_inputs(inputs))
        if hasattr(demo, "annotate"):  # an answer drawn on the input (the detector's boxes on the image)
            return demo.annotate(inputs, outputs)
        return answer(outputs)

    return predict, f"Model: {name} version {number} ({path})"


def build_app(project: str, repository: Path, version: int | None = None) -> Any:
    """The Gradio app (a `gr.Interface`, or the demo module's own `build_app`), not yet launched."""
    import gradio as gr

    demo, _ = project_demo(project)
    if hasattr(demo, "build_app"):  # a demo with its own layout (the chatbot's chat window)
        return demo.build_app(repository, version)
    predict, source = predictor(project, repository, version)
    labels = gr.Label(num_top_classes=3, label="Prediction")  # unless the demo has other outputs (an image)
    return gr.Interface(
        fn=predict,
        inputs=demo.gradio_inputs(),
        outputs=demo.gradio_outputs() if hasattr(demo, "gradio_outputs") else labels,
        title=demo.TITLE,
        description=f"{demo.DESCRIPTION}\n\n{source}",
        flagging_mode="never",
        analytics_enabled=False,  # works offline, sends nothing
    )


def main(argv: list[str] | None = None) -> None:
    """Entry point of `python -m serving.gradio_app`."""
    parser = argparse.ArgumentParser(prog="python -m serving.gradio_app", description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", required=True, help="e.g. mnist")
    parser.add_argument("--repository", type=Path, default=DEFAULT_REPOSITORY, help="default: artifacts/serving")
    parser.add_argument("--version", type=int, help="the model version (default: the latest)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    parser.add_argument("--port", type=int, default=7860)
    args = parser.parse_args(argv)

    quiet_tensorflow()
    try:
        app = build_app(args.project, args.repository, args.version)
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f"error: {err}")
    app.launch(server_name=args.host, server_port=args.port, inbrowser=False)


if __name__ == "__main__":
    main()
