"""A Gradio demo of a project's model, over the same SavedModels the server serves.

    python -m serving.gradio_app --project mnist [--repository artifacts/serving] [--version N] [--port 7860]

`make project=mnist gradio` runs it on http://127.0.0.1:7860. The project's
`DEMO` (`projects/<name>/demo.py`, a `common.demo.Demo`) says which widgets fit
its input (mnist: a sketchpad and an upload), how their values become the
model's input and how the outputs are shown; this file loads the SavedModel (the
latest version unless --version) and wires the two together.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import registry
from common.demo import Demo
from common.runtime import quiet_tensorflow

from .server import DEFAULT_REPOSITORY


def project_demo(project: str) -> tuple[Demo, str]:
    """The project's `DEMO` and its model's name in the repository; exits naming the file to add if it has none."""
    try:
        return registry.demo(project), registry.load(project).serving_name
    except registry.UnknownProjectError as err:
        raise SystemExit(f"error: {err}") from None


def served_model(name: str, repository: Path, version: int | None) -> tuple[Callable[[str, dict], dict], str]:
    """`predict(signature name, inputs) -> outputs` over the SavedModel, and a line saying which version answers.

    Raises:
        FileNotFoundError: the model is not in the repository (the message says how to export it).
    """
    from .model_version import LoadedVersion
    from .repository import find_version

    number, path = find_version(repository, name, version)
    model = LoadedVersion(name, number, path)

    def predict(signature_name: str, inputs: dict) -> dict:
        return model.predict(signature_name, model.signature(signature_name).check_inputs(inputs))

    predict.signature = model.signature  # type: ignore[attr-defined]  # the demo's `use_signature` reads it
    return predict, f"Model: {name} version {number} ({path})"


def predictor(project: str, repository: Path, version: int | None = None) -> tuple[Callable[..., Any], str]:
    """The function the app calls, widget values in -> the demo's answer out (mnist: {"0": p0, ...}), and a
    line saying which SavedModel answers.

    Raises:
        FileNotFoundError: the project's model is not in the repository (the message says how to export it).
    """
    demo, name = project_demo(project)
    served, source = served_model(name, repository, version)
    return _answering(demo, served), source


def _answering(demo: Demo, served: Callable[[str, dict], dict]) -> Callable[..., Any]:
    import gradio as gr

    demo.use_signature(served.signature(demo.signature))

    def predict(*values: Any) -> Any:
        try:
            inputs = demo.gradio_request(*values)
        except ValueError as err:
            raise gr.Error(str(err)) from None
        return demo.answer(inputs, served(demo.signature, inputs))

    return predict


def build_app(project: str, repository: Path, version: int | None = None) -> Any:
    """The Gradio app (a `gr.Interface`, or the demo's own `build_app`), not yet launched."""
    import gradio as gr

    demo, name = project_demo(project)
    served, source = served_model(name, repository, version)
    own = demo.build_app(served, source)
    if own is not None:  # a demo with its own layout (the chatbot's chat window)
        return own
    return gr.Interface(
        fn=_answering(demo, served),
        inputs=demo.gradio_inputs(),
        outputs=demo.gradio_outputs(),
        title=demo.title,
        description=f"{demo.description}\n\n{source}",
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
