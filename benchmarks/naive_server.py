"""The peer the embedded server is measured against: the ten-line FastAPI server a new user would write.

    python -m benchmarks.naive_server --model-dir artifacts/serving/mnist/1 --port 8601

It loads the SavedModel, and for each `POST /v1/models/<name>:predict` with a
row-format body (`{"instances": [...]}`, one input) it reads the JSON with
`await request.json()`, calls the signature and returns its outputs as lists:
no batching, no checks, uvicorn with its defaults (the same as `uvicorn app:app`).
The answer has TF Serving's shape, so the benchmark sends both servers the same request.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import tensorflow as tf
import uvicorn
from fastapi import FastAPI, Request

from common.runtime import quiet_tensorflow


def create_app(model_dir: str) -> FastAPI:
    """The naive app over the SavedModel in `model_dir` (its `serving_default` signature, one input)."""
    model = tf.saved_model.load(model_dir)
    signature = model.signatures["serving_default"]
    (input_name,) = signature.structured_input_signature[1]
    app = FastAPI()

    @app.post("/v1/models/{name}:predict")
    async def predict(name: str, request: Request) -> dict[str, Any]:
        body = await request.json()
        outputs = signature(**{input_name: tf.constant(np.array(body["instances"], dtype=np.float32))})
        names = sorted(outputs)
        values = {k: outputs[k].numpy().tolist() for k in names}
        return {"predictions": [{k: values[k][i] for k in names} for i in range(len(values[names[0]]))]}

    return app


def main() -> None:
    """Entry point of `python -m benchmarks.naive_server`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", required=True, help="a SavedModel version folder")
    parser.add_argument("--port", type=int, default=8601)
    args = parser.parse_args()
    quiet_tensorflow()
    uvicorn.run(create_app(args.model_dir), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
