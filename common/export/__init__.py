"""Export a trained project to every deployment format, and prove that they all answer like Keras.

`export_project` follows the project's `ExportPlan` (`Project.export_plan`). The standard plan
(`standard_plan`) writes, from the project's `serving_model`:
- the SavedModel: a new version in the serving repository, `<serving_root>/<model>/<version>/`, and models.config;
- TF Lite float32, float16, dynamic-range and int8: `export/tflite/<variant>.tflite`;
- TF.js graph models: `export/tfjs/` and, weights quantized to uint8, `export/tfjs_uint8/`;
- ONNX: `export/onnx/model.onnx`;
- `parity.json` and `parity.md`: the test split through Keras and each of them (see `parity`).

A project whose served SavedModel no converter takes (the chatbot's string ops in the graph) declares `parts`
instead: the models converted to the formats it names, each file named after its part
(`export/tflite/encoder.tflite`, `export/tflite/encoder_float16.tflite`, see `part_paths`), how a format's
outputs are computed from its loaded parts (the chatbot's greedy loop), and files the clients need beside them
(the chatbot's vocabulary).

The other formats are converted from the SavedModel (or the parts), before it is published as a
version. One failing converter does not stop the others; its output is removed,
so neither a half-written file nor one left over from an older model stays.
A SavedModel that breaks its bound is not published.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
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
SERVED = "serving"  # the key of the one model in `loaded` when a plan has no parts (the SavedModel is converted)


@dataclass(frozen=True)
class Format:
    """One exported format: where it goes, how it is made from a SavedModel and how it is run."""

    name: str
    path: Path  # a file, or a folder (TF.js)
    quantized: bool
    convert: Callable[[Path, Path], None]  # (SavedModel folder, destination)
    load: Callable[[Path], Predict]
    batch_size: int | None = 256  # None: all inputs in one call (Node starts once)
    background: bool = False  # made by another process: converted in a worker thread meanwhile


@dataclass
class ExportPlan:
    """What `export_project` writes and how it checks each format against Keras (`Project.export_plan`).

    The formats convert the served SavedModel itself, unless `parts` names the models they convert instead.
    Parity compares each format's outputs with `reference` through the project's `final_answer`,
    `output_distance` and `answer_metric` (and `exact_answers`).
    """

    serving: Any  # what `writer` writes as the served SavedModel (a Keras model for the default writer)
    reference: Arrays  # Keras's outputs on the parity examples, batch first
    targets: np.ndarray  # what `Project.answer_metric` compares the final answers with (e.g. the test labels)
    data_source: str  # where the parity examples come from, for the report
    signature: dict[str, Any]  # parity.json's "signature": inputs and outputs, each "dtype (shape)"
    run_savedmodel: Callable[[Path], Arrays]  # the staged SavedModel's outputs on the parity examples
    run: Callable[[Format, dict[str, Predict]], Arrays]  # a format's outputs on them, from its loaded models by part
    writer: savedmodel.Writer | None = None  # (serving, folder) -> writes the SavedModel; None: write_savedmodel
    representative: Arrays = field(default_factory=dict)  # training inputs that calibrate TF Lite int8
    # The models converted to the other formats in place of the SavedModel, by part name (see `part_paths`).
    parts: dict[str, keras.Model] | None = None
    formats: tuple[str, ...] | None = None  # the names of the `formats` made; None: all
    files: dict[str, str] = field(default_factory=dict)  # name -> text, written to export/ and every folder format
    summary: dict[str, Any] = field(default_factory=dict)  # more keys for parity.json
    # Full-integer TF Lite keeps in float32 the ops whose output tensor names match this regular expression (a
    # detector's box decoding and NMS, whose ranges int8 cannot hold); None: every op int8 (see `tflite.convert`).
    int8_float_nodes: str | None = None
    # Full-integer TF Lite: one scale per output channel of each weight tensor (TF Lite's default), or one per tensor,
    # which saves a float32 scale and an int64 zero point per channel (a detector's many thin depthwise layers).
    int8_per_channel: bool = True
    # By format name: the largest |metric - Keras's metric| on the parity examples, enforced beside its bound.
    metric_bounds: dict[str, float] = field(default_factory=dict)


@dataclass
class ExportResult:
    rows: list[ParityRow] = field(default_factory=list)
    version: int | None = None  # the published SavedModel version

    @property
    def problems(self) -> list[str]:
        return [r.problem for r in self.rows if r.problem]


# Every format converted from the SavedModel, by name, in the order they are reported (`export --formats` picks some).
FORMAT_NAMES = (*(f"tflite_{variant}" for variant in tflite.VARIANTS), "tfjs", "tfjs_uint8", "onnx")


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


def standard_plan(project: Project, cfg: Any, model: keras.Model, data: DataSplits) -> ExportPlan:
    """The project's `serving_model` served and converted to every format, checked on its `export_examples`."""
    serving = project.serving_model(model, cfg)
    examples, targets = project.export_examples(cfg, data)
    inputs = _named(serving, examples)
    reference = serving.predict(inputs if len(inputs) > 1 else examples, batch_size=256, verbose=0)
    extra = project.extra_signatures(serving)
    return ExportPlan(
        serving=serving,
        reference=reference,
        targets=targets,
        data_source=data.source,
        signature=_signature(serving, reference),
        run_savedmodel=lambda path: in_batches(savedmodel.load(path), inputs, 256),
        run=lambda fmt, loaded: in_batches(loaded[SERVED], inputs, fmt.batch_size),
        writer=partial(savedmodel.write_savedmodel, extra_signatures=extra) if extra else None,
        representative=_named(serving, project.representative_inputs(cfg, data)),
    )


def _is_folder(fmt: Format) -> bool:
    return not fmt.path.suffix


# The stems of a file format's main file (`onnx/model.onnx`, `tflite/float32.tflite`): its parts take the part's name
# alone; another variant's parts (`tflite/float16.tflite`) add the variant's.
MAIN_FILE_STEMS = ("model", "float32")


def part_paths(fmt: Format, parts: list[str]) -> dict[str, Path]:
    """Where each part of a plan goes in `fmt`: beside `fmt.path`, named after the part, for a file format
    (`tflite/encoder.tflite`; a variant other than the main one keeps its name as a suffix,
    `tflite/encoder_float16.tflite`); for a folder format, the first part at the top of the folder (the model a
    TF.js page opens, `tfjs/model.json`) and each other in a sub-folder named after it (`tfjs/encoder/`)."""
    if not _is_folder(fmt):
        variant = "" if fmt.path.stem in MAIN_FILE_STEMS else "_" + fmt.path.stem
        return {part: fmt.path.with_name(part + variant + fmt.path.suffix) for part in parts}
    return {part: fmt.path if i == 0 else fmt.path / part for i, part in enumerate(parts)}


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def convert_into_place(fmt: Format, source: Path | dict[str, Path], files: dict[str, str] | None = None) -> None:
    """Convert `source` to `fmt.path` through a hidden temporary sibling, renamed into place when complete.

    `source` is a SavedModel folder, or the SavedModels of a plan's parts by name, placed by `part_paths`;
    `files` (name -> text) are written into a folder format beside its models. If a converter fails, the
    temporary output and any older output of the format are removed.
    """
    if isinstance(source, dict) and not _is_folder(fmt):
        targets = part_paths(fmt, list(source))
        try:
            for part, target in targets.items():
                convert_into_place(replace(fmt, path=target), source[part])
        except BaseException:
            for target in targets.values():
                _remove(target)
            raise
        return
    fmt.path.parent.mkdir(parents=True, exist_ok=True)
    tmp = fmt.path.with_name(f".{fmt.path.name}.tmp-{os.getpid()}")
    _remove(tmp)
    try:
        if isinstance(source, dict):  # a folder format holding every part
            for part, target in part_paths(fmt, list(source)).items():
                fmt.convert(source[part], tmp / target.relative_to(fmt.path))
        else:
            fmt.convert(source, tmp)
        for name, text in (files or {}).items() if _is_folder(fmt) else ():
            (tmp / name).write_text(text)
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
    verdict = "ok" if row.ok else f"BROKE ITS BOUND ({row.problem.partition(': ')[2]})"
    return (
        f"{verdict}, {row.size_bytes / 1024:,.0f} KB, max|diff| {row.max_abs_diff:.1e}, "
        f"answers agree {row.agreement:.2%}, {metric_name} {row.metric:.4f}"
        + (f" ({row.seconds:g} s)" if row.seconds is not None else "")
    )


class _Checker:
    """Compares a format's outputs on the parity examples with the Keras reference, the project's way."""

    def __init__(self, project: Project, plan: ExportPlan) -> None:
        self.project, self.plan = project, plan
        self.reference_answers = project.final_answer(plan.reference)
        self.reference_metric = project.answer_metric(self.reference_answers, plan.targets)

    def row(self, name: str, path: Path, outputs: Arrays, bound: float | None, size: int) -> ParityRow:
        distance = self.project.output_distance(outputs, self.plan.reference)
        answers = self.project.final_answer(outputs)
        equal = answers == self.reference_answers
        row = ParityRow(format=name, path=_shown(path), size_bytes=size, max_abs_diff=distance, bound=bound)
        row.metric = self.project.answer_metric(answers, self.plan.targets)
        row.metric_gap = abs(row.metric - self.reference_metric)
        row.metric_bound = self.plan.metric_bounds.get(name)
        if not self.project.exact_answers:
            row.agreement = float(np.mean(equal))
            return row
        whole = equal.reshape(len(equal), -1).all(axis=1)  # an example agrees when all of its answer does
        row.agreement = float(np.mean(whole))
        if not whole.all() and row.metric_bound is None:  # a format with a metric bound is held to that instead
            row.error = f"answers differ from Keras's on {int((~whole).sum())} of {len(whole)} examples"
        return row

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
    bound = check.project.float_tolerance
    try:
        row = check.row("savedmodel", staging, check.plan.run_savedmodel(staging), bound, size_bytes(staging))
    except Exception as err:
        row = ParityRow("savedmodel", _shown(staging), bound=bound, error=str(err))
    row.seconds = round(time.perf_counter() - start, 1)
    return row


def _convert_and_check(check: _Checker, fmt: Format, sources: dict[str, Path]) -> ParityRow:
    """Convert the SavedModel (or each part) to `fmt`, run it over the parity examples and compare with Keras."""
    start = time.perf_counter()
    bound = check.project.quantized_tolerance.get(fmt.name) if fmt.quantized else check.project.float_tolerance
    parts = check.plan.parts is not None
    targets = part_paths(fmt, list(sources)) if parts else {SERVED: fmt.path}
    shown = fmt.path if not parts or _is_folder(fmt) else fmt.path.parent  # a file format's parts share a folder
    try:
        convert_into_place(fmt, sources if parts else sources[SERVED], check.plan.files)
        loaded = {part: fmt.load(path) for part, path in targets.items()}
        size = size_bytes(fmt.path) if not parts or _is_folder(fmt) else sum(map(size_bytes, targets.values()))
        row = check.row(fmt.name, shown, check.plan.run(fmt, loaded), bound, size)
    except Exception as err:
        row = ParityRow(fmt.name, _shown(shown), bound=bound, error=str(err))
    row.seconds = round(time.perf_counter() - start, 1)
    return row


def _sources(plan: ExportPlan, staging: Path, folder: Path) -> dict[str, Path]:
    """What the formats convert: the staged SavedModel, or each part of the plan written as a SavedModel in `folder`."""
    if plan.parts is None:
        return {SERVED: staging}
    sources = {part: folder / part for part in plan.parts}
    for part, model in plan.parts.items():
        savedmodel.write_savedmodel(model, sources[part])
    return sources


def _convert_all(check: _Checker, later: list[Format], sources: dict[str, Path]) -> list[ParityRow]:
    """Convert and check every format; TF Lite in this process (its log capture is process-wide), the others
    meanwhile in threads."""
    rows = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        pending = {f.name: pool.submit(_convert_and_check, check, f, sources) for f in later if f.background}
        for fmt in later:
            row = pending[fmt.name].result() if fmt.background else _convert_and_check(check, fmt, sources)
            rows.append(check.report(row))
    return rows


def export_project(
    project: Project,
    cfg: Any,
    model: keras.Model,
    data: DataSplits,
    paths: ArtifactPaths,
    verbose: bool = False,
    only: Collection[str] | None = None,
) -> ExportResult:
    """Export what `project.export_plan` says to every format, check each against Keras, write parity.json/.md.

    `only`: the names (`FORMAT_NAMES`) of the formats to convert beside the SavedModel; None: every one.
    """
    plan = project.export_plan(cfg, model, data, verbose) or standard_plan(project, cfg, model, data)
    check = _Checker(project, plan)
    examples = f"{len(plan.targets)} test examples ({plan.data_source})"
    print(f"Exporting {project.serving_name}: {examples} through each format")

    keras_row = ParityRow("keras", _shown(paths.model), size_bytes(paths.model), 0.0, 1.0)
    keras_row.metric = check.reference_metric
    result = ExportResult([check.report(keras_row)])
    later = formats(paths.export_dir, plan.representative, verbose)
    int8 = {"float_nodes": plan.int8_float_nodes, "per_channel": plan.int8_per_channel}
    later = [replace(f, convert=partial(f.convert, **int8)) if f.name == "tflite_int8" else f for f in later]
    later = [f for f in later if (plan.formats is None or f.name in plan.formats) and (only is None or f.name in only)]
    if plan.files:
        paths.export_dir.mkdir(parents=True, exist_ok=True)
        for name, text in plan.files.items():
            (paths.export_dir / name).write_text(text)
    try:
        staging = savedmodel.stage(plan.serving, paths.serving_root, project.serving_name, plan.writer)
    except Exception as err:
        result.rows.append(check.report(ParityRow("savedmodel", _shown(paths.serving_root), error=str(err))))
        result.rows += [ParityRow(f.name, _shown(f.path), error="skipped: made from the SavedModel") for f in later]
        _write_report(project, plan, paths, result)
        return result

    try:
        savedmodel_row = check.report(_check_savedmodel(check, staging))
        result.rows.append(savedmodel_row)
        with tempfile.TemporaryDirectory() as parts_dir:
            result.rows += _convert_all(check, later, _sources(plan, staging, Path(parts_dir)))
        if savedmodel_row.ok:
            result.version = savedmodel.publish(staging)
            savedmodel.update_models_config(paths.serving_root, project.serving_name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # already gone when published
    savedmodel_row.path = (
        _shown(paths.serving_root / project.serving_name / str(result.version)) if result.version else "(not published)"
    )
    _write_report(project, plan, paths, result)
    return result


def _write_report(project: Project, plan: ExportPlan, paths: ArtifactPaths, result: ExportResult) -> None:
    published = paths.serving_root / project.serving_name / str(result.version)
    summary = {
        "project": project.name,
        "serving_model": project.serving_name,
        "version": result.version,
        "savedmodel": _shown(published) if result.version else None,
        "signature": plan.signature,
        "examples": len(next(iter(plan.reference.values()))),
        "data_source": plan.data_source,
        "metric": project.metric_name,
        "float_tolerance": project.float_tolerance,
        **plan.summary,
    }
    write_parity(result.rows, summary, paths.parity_json, paths.parity_md)
    print(f"SavedModel: {summary['savedmodel'] or 'not published'}\nParity: {_shown(paths.parity_md)}")
