"""Export a trained project to every deployment format, and prove that they all answer like Keras.

`export_project` writes, from the project's `serving_model`:
- the SavedModel: a new version in the serving repository, `<serving_root>/<model>/<version>/`, and models.config;
- TF Lite float32, float16, dynamic-range and int8: `export/tflite/<variant>.tflite`;
- TF.js graph models: `export/tfjs/` and, weights quantized to uint8, `export/tfjs_uint8/`;
- ONNX: `export/onnx/model.onnx`;
- `parity.json` and `parity.md`: the test split through Keras and each of them (see `parity`).

The other formats are converted from the SavedModel, before it is published as a
version. One failing converter does not stop the others; its output is removed,
so neither a half-written file nor one left over from an older model stays.
A SavedModel that breaks its bound is not published.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import keras
import numpy as np

from common.data.splits import DataSplits
from common.paths import REPO_ROOT, ArtifactPaths
from common.project import Project

from . import onnx, savedmodel, tfjs, tflite
from .parity import Arrays, ParityRow, in_batches
from .parity import write as write_parity
from .tools import size_bytes

Predict = Callable[[Arrays], Arrays]


@dataclass(frozen=True)
class Format:
    """One exported format: where it goes, how it is made from the SavedModel and how it is run."""

    name: str
    path: Path  # a file, or a folder (TF.js)
    quantized: bool
    convert: Callable[[Path, Path], None]  # (SavedModel folder, destination)
    load: Callable[[Path], Predict]
    batch_size: int | None = 256  # None: all inputs in one call (Node starts once)
    background: bool = False  # made by another process: converted in a worker thread meanwhile


@dataclass
class ExportResult:
    rows: list[ParityRow] = field(default_factory=list)
    version: int | None = None  # the published SavedModel version

    @property
    def problems(self) -> list[str]:
        return [r.problem for r in self.rows if r.problem]


def formats(export_dir: Path, representative: Arrays, verbose: bool = False) -> list[Format]:
    """Every format converted from the SavedModel, in the order they are reported."""
    tflite_formats = [
        Format(
            name=f"tflite_{variant}",
            path=export_dir / "tflite" / f"{variant}.tflite",
            quantized=variant != "float32",
            convert=partial(tflite.convert, variant=variant, representative=representative, verbose=verbose),
            load=partial(tflite.load, verbose=verbose),
        )
        for variant in tflite.VARIANTS
    ]
    tfjs_formats = [
        Format(
            name=name,
            path=export_dir / name,
            quantized=quantize,
            convert=partial(tfjs.convert, quantize_uint8=quantize, verbose=verbose),
            load=partial(tfjs.load, verbose=verbose),
            batch_size=None,
            background=True,
        )
        for name, quantize in (("tfjs", False), ("tfjs_uint8", True))
    ]
    onnx_format = Format(
        name="onnx",
        path=export_dir / "onnx" / "model.onnx",
        quantized=False,
        convert=partial(onnx.convert, verbose=verbose),
        load=onnx.load,
        background=True,
    )
    return [*tflite_formats, *tfjs_formats, onnx_format]


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def convert_into_place(fmt: Format, source: Path) -> None:
    """Convert `source` to `fmt.path` through a hidden temporary sibling, renamed into place when complete.

    If the converter fails, the temporary output and any older file at `fmt.path` are removed.
    """
    fmt.path.parent.mkdir(parents=True, exist_ok=True)
    tmp = fmt.path.with_name(f".{fmt.path.name}.tmp-{os.getpid()}")
    _remove(tmp)
    try:
        fmt.convert(source, tmp)
    except BaseException:
        _remove(tmp)
        _remove(fmt.path)
        raise
    old = fmt.path.with_name(f".{fmt.path.name}.old-{os.getpid()}")
    if fmt.path.is_dir():
        fmt.path.rename(old)
    os.replace(tmp, fmt.path)
    _remove(old)


def _shown(path: Path) -> str:
    path = path.resolve()
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def _progress(row: ParityRow, metric_name: str) -> str:
    if row.error:
        return f"FAILED: {row.error}"
    verdict = "ok" if row.ok else f"BROKE ITS BOUND ({row.bound:g})"
    return (
        f"{verdict}, {row.size_bytes / 1024:,.0f} KB, max|diff| {row.max_abs_diff:.1e}, "
        f"answers agree {row.agreement:.2%}, {metric_name} {row.metric:.4f}"
        + (f" ({row.seconds:g} s)" if row.seconds is not None else "")
    )


class _Checker:
    """Runs a format over the parity inputs and compares it with the Keras reference."""

    def __init__(self, project: Project, inputs: Arrays, targets: np.ndarray, reference: Arrays) -> None:
        self.project, self.inputs, self.targets, self.reference = project, inputs, targets, reference
        self.reference_answers = project.final_answer(reference)

    def row(self, name: str, path: Path, predict: Predict, bound: float | None, batch_size: int | None) -> ParityRow:
        outputs = in_batches(predict, self.inputs, batch_size)
        answers = self.project.final_answer(outputs)
        return ParityRow(
            format=name,
            path=_shown(path),
            size_bytes=size_bytes(path),
            max_abs_diff=self.project.output_distance(outputs, self.reference),
            agreement=float(np.mean(answers == self.reference_answers)),
            metric=self.project.answer_metric(answers, self.targets),
            bound=bound,
        )

    def report(self, row: ParityRow) -> ParityRow:
        print(f"  {row.format:<15} {_progress(row, self.project.metric_name)}", flush=True)
        return row


def _named(serving: keras.Model, value: np.ndarray | Arrays) -> Arrays:
    return value if isinstance(value, dict) else {serving.inputs[0].name: value}


def _signature(serving: keras.Model, reference: Arrays) -> dict[str, dict[str, str]]:
    """Input and output names with dtype and shape, e.g. {"inputs": {"image": "float32 (None, 28, 28, 1)"}}."""
    inputs = {t.name: f"{t.dtype} {(None, *t.shape[1:])}" for t in serving.inputs}
    outputs = {k: f"{v.dtype} {(None, *v.shape[1:])}" for k, v in reference.items()}
    return {"inputs": inputs, "outputs": outputs}


def _check_savedmodel(check: _Checker, staging: Path) -> ParityRow:
    start = time.perf_counter()
    try:
        row = check.row("savedmodel", staging, savedmodel.load(staging), check.project.float_tolerance, 256)
    except Exception as err:
        row = ParityRow("savedmodel", _shown(staging), bound=check.project.float_tolerance, error=str(err))
    row.seconds = round(time.perf_counter() - start, 1)
    return row


def _convert_and_check(check: _Checker, fmt: Format, staging: Path) -> ParityRow:
    start = time.perf_counter()
    bound = check.project.quantized_tolerance.get(fmt.name) if fmt.quantized else check.project.float_tolerance
    try:
        convert_into_place(fmt, staging)
        row = check.row(fmt.name, fmt.path, fmt.load(fmt.path), bound, fmt.batch_size)
    except Exception as err:
        row = ParityRow(fmt.name, _shown(fmt.path), bound=bound, error=str(err))
    row.seconds = round(time.perf_counter() - start, 1)
    return row


def export_project(
    project: Project, cfg: Any, model: keras.Model, data: DataSplits, paths: ArtifactPaths, verbose: bool = False
) -> ExportResult:
    """Export `project.serving_model(model)` to every format, check each against Keras, write parity.json/.md."""
    serving = project.serving_model(model)
    examples, targets = project.export_examples(cfg, data)
    inputs = _named(serving, examples)
    representative = _named(serving, project.representative_inputs(cfg, data))
    reference = serving.predict(inputs if len(inputs) > 1 else examples, batch_size=256, verbose=0)
    check = _Checker(project, inputs, targets, reference)
    print(f"Exporting {project.serving_name}: {len(targets)} test examples ({data.source}) through each format")

    keras_row = ParityRow("keras", _shown(paths.model), size_bytes(paths.model), 0.0, 1.0)
    keras_row.metric = project.answer_metric(check.reference_answers, targets)
    result = ExportResult([check.report(keras_row)])
    later = formats(paths.export_dir, representative, verbose)
    try:
        extra = project.extra_signatures(serving)
        writer = partial(savedmodel.write_savedmodel, extra_signatures=extra) if extra else None
        staging = savedmodel.stage(serving, paths.serving_root, project.serving_name, writer)
    except Exception as err:
        result.rows.append(check.report(ParityRow("savedmodel", _shown(paths.serving_root), error=str(err))))
        result.rows += [ParityRow(f.name, _shown(f.path), error="skipped: made from the SavedModel") for f in later]
        _write_report(project, serving, reference, data, paths, result)
        return result

    try:
        savedmodel_row = check.report(_check_savedmodel(check, staging))
        result.rows.append(savedmodel_row)
        # TF Lite converts in this process (its log capture is process-wide); the others meanwhile in threads.
        with ThreadPoolExecutor(max_workers=2) as pool:
            pending = {f.name: pool.submit(_convert_and_check, check, f, staging) for f in later if f.background}
            for fmt in later:
                row = pending[fmt.name].result() if fmt.background else _convert_and_check(check, fmt, staging)
                result.rows.append(check.report(row))
        if savedmodel_row.ok:
            result.version = savedmodel.publish(staging)
            savedmodel.update_models_config(paths.serving_root, project.serving_name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # already gone when published
    savedmodel_row.path = (
        _shown(paths.serving_root / project.serving_name / str(result.version)) if result.version else "(not published)"
    )
    _write_report(project, serving, reference, data, paths, result)
    return result


def _write_report(
    project: Project,
    serving: keras.Model,
    reference: Arrays,
    data: DataSplits,
    paths: ArtifactPaths,
    result: ExportResult,
) -> None:
    published = paths.serving_root / project.serving_name / str(result.version)
    summary = {
        "project": project.name,
        "serving_model": project.serving_name,
        "version": result.version,
        "savedmodel": _shown(published) if result.version else None,
        "signature": _signature(serving, reference),
        "examples": len(next(iter(reference.values()))),
        "data_source": data.source,
        "metric": project.metric_name,
        "float_tolerance": project.float_tolerance,
    }
    write_parity(result.rows, summary, paths.parity_json, paths.parity_md)
    print(f"SavedModel: {summary['savedmodel'] or 'not published'}\nParity: {_shown(paths.parity_md)}")
