"""Compress a trained model: post-training int8, magnitude pruning and quantization-aware training, compared.

`optimize_project` starts from `model.keras` and writes under `optimize/`, all as
TF Lite run with `ai_edge_litert`:
- baseline_float32: the trained model as is;
- ptq_int8: post-training full-integer quantization, calibrated on training inputs;
- pruned_float32 / pruned_int8: magnitude pruning of `Project.prunable_layers` to
  `optimize.target_sparsity` (polynomial decay while fine-tuning), then the same
  conversions. Zeros compress, so the pruned model's gain shows in its gzip size;
- qat_int8: quantization-aware training of `Project.quantized_layers`, then int8.
`optimize.json` and `optimize.md` compare them: the project's test metric (`answer_metric`
of `model_answer`, e.g. accuracy, the driving CNN's steering error or the detector's mAP@0.5),
size, gzip size and batch-1 latency on one CPU thread. Every TF Lite model returns the outputs
of `Project.optimize_outputs` (by default the model's own): the detector's box offsets and class
logits, decoded and NMS-filtered in float32 by its `model_answer`, outside the timed model.
tfmot needs Keras 2: see `common.keras2_bridge`.
"""

from __future__ import annotations

import gzip
import json
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from common import keras2_bridge, plots
from common.config import OptimizeConfig
from common.data.splits import DataSplits
from common.export import tflite
from common.export.parity import in_batches
from common.export.savedmodel import SIGNATURE, write_savedmodel
from common.paths import ArtifactPaths
from common.project import Project
from common.training import batched, steps_per_epoch


def _epochs(n: int) -> str:
    return f"{n} epoch" if n == 1 else f"{n} epochs"


LABELS = {
    "baseline_float32": "baseline, float32",
    "ptq_int8": "post-training int8",
    "pruned_float32": "pruned, float32",
    "pruned_int8": "pruned, int8",
    "qat_int8": "quantization-aware, int8",
}


@dataclass
class CompressedModel:
    """One TF Lite model and what it costs: the project's metric on the test split, bytes, milliseconds."""

    name: str
    file: str  # in optimize/
    metric: float  # `Project.answer_metric`, e.g. accuracy
    size_bytes: int
    gzip_bytes: int
    latency_ms: float  # median of batch-1 calls on one thread
    sparsity: float  # share of zeros in the prunable layers' kernels


def gzip_size(path: Path) -> int:
    """Bytes of `path` after gzip -9: what a sparse model saves in a download."""
    return len(gzip.compress(path.read_bytes(), compresslevel=9))


def batch1_latency_ms(path: Path, example: dict[str, np.ndarray], runs: int) -> float:
    """Median milliseconds of one `serving_default` call on one example (batch 1), one thread, after a warm-up."""
    runner = tflite.interpreter_for(path, num_threads=1).get_signature_runner(SIGNATURE)
    for _ in range(5):
        runner(**example)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        runner(**example)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


class _Bench:
    """Converts SavedModels to TF Lite under `out` and measures them on the test split."""

    def __init__(
        self,
        project: Project,
        cfg: Any,
        out: Path,
        inputs: dict[str, np.ndarray],
        targets: np.ndarray,
        representative: dict[str, np.ndarray],
        ocfg: OptimizeConfig,
        verbose: bool,
    ) -> None:
        self.project, self.cfg, self.out, self.inputs, self.targets = project, cfg, out, inputs, targets
        self.representative, self.ocfg, self.verbose = representative, ocfg, verbose

    def measure(self, name: str, savedmodel: Path, variant: str, sparsity: float) -> CompressedModel:
        path = self.out / f"{name}.tflite"
        tflite.convert(savedmodel, path, variant, self.representative, self.verbose)
        outputs = in_batches(tflite.load(path, self.verbose), self.inputs)
        metric = self.project.answer_metric(self.project.model_answer(outputs, self.cfg), self.targets)
        example = {k: v[:1] for k, v in self.inputs.items()}
        row = CompressedModel(
            name,
            path.name,
            metric,
            path.stat().st_size,
            gzip_size(path),
            batch1_latency_ms(path, example, self.ocfg.latency_runs),
            sparsity,
        )
        print(
            f"  {LABELS[name]:<26} {self.project.metric_name} {metric:.4f}, {row.size_bytes / 1024:,.0f} KB "
            f"(gzip {row.gzip_bytes / 1024:,.0f} KB), {row.latency_ms:.3f} ms",
            flush=True,
        )
        return row


def optimize_project(
    project: Project, cfg: Any, model: keras.Model, data: DataSplits, paths: ArtifactPaths, verbose: bool = False
) -> list[CompressedModel]:
    """Prune and quantization-aware train `model` (a copy each), convert all to TF Lite, write the comparison.

    The model takes one input, e.g. (batch, 28, 28, 1) float32; its outputs (or those of the layers named by
    `project.optimize_outputs`) are scored by `project.model_answer` and `project.answer_metric` on
    `project.export_examples` (the test split).
    """
    ocfg: OptimizeConfig = cfg.optimize
    prunable, quantized = project.prunable_layers(model), project.quantized_layers(model)
    keras2_bridge.check_layer_names(model, prunable, "prunable_layers")
    keras2_bridge.check_layer_names(model, quantized, "quantized_layers")
    outputs = project.optimize_outputs(model)
    if outputs is not None:
        keras2_bridge.check_layer_names(model, outputs, "optimize_outputs")
    x_test, y_test = project.export_examples(cfg, data)
    input_name = model.inputs[0].name
    own_layers = project.keras2_layers()
    sample = x_test[:8]
    bench = _Bench(
        project,
        cfg,
        paths.optimize,
        {input_name: x_test},
        y_test,
        {input_name: project.representative_inputs(cfg, data)},
        ocfg,
        verbose,
    )
    paths.optimize.mkdir(parents=True, exist_ok=True)
    batch_size = cfg.train.batch_size
    train = batched(
        data.train,
        batch_size,
        shuffle_seed=cfg.train.seed,
        augment=project.augmentation(cfg),
        augment_pairs=project.augment_pairs(cfg),
    )
    val = batched(data.val, batch_size)
    steps = steps_per_epoch(data, batch_size)
    tune = {"learning_rate": ocfg.learning_rate, "loss": project.loss(cfg), "metrics": project.metrics(cfg)}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        print(f"Baseline: {model.name} to TF Lite float32 and post-training int8")
        write_savedmodel(_with_outputs(model, outputs), Path(tmp) / "baseline")
        rows.append(bench.measure("baseline_float32", Path(tmp) / "baseline", "float32", 0.0))
        rows.append(bench.measure("ptq_int8", Path(tmp) / "baseline", "int8", 0.0))

        print(f"Pruning {len(prunable)} layers to {ocfg.target_sparsity:.0%} sparsity: {_epochs(ocfg.prune_epochs)}")
        end_step = steps * max(1, ocfg.prune_epochs - 1)  # the last epoch trains at the target
        pruning = keras2_bridge.prune_low_magnitude(
            keras2_bridge.to_keras2(model, sample, own_layers),
            prunable,
            ocfg.target_sparsity,
            end_step,
            ocfg.dense_block,
        )
        keras2_bridge.fine_tune(pruning, train, val, epochs=ocfg.prune_epochs, pruning=True, **tune)
        pruned = keras2_bridge.strip_pruning(pruning)
        sparsity = keras2_bridge.kernel_sparsity(pruned, prunable)
        keras2_bridge.write_savedmodel(pruned, Path(tmp) / "pruned", outputs)
        rows.append(bench.measure("pruned_float32", Path(tmp) / "pruned", "float32", sparsity))
        rows.append(bench.measure("pruned_int8", Path(tmp) / "pruned", "int8", sparsity))

        print(f"Quantization-aware training of {len(quantized)} layers: {_epochs(ocfg.qat_epochs)}")
        qat = keras2_bridge.quantize(keras2_bridge.to_keras2(model, sample, own_layers), quantized, own_layers)
        keras2_bridge.fine_tune(qat, train, val, epochs=ocfg.qat_epochs, **tune)
        keras2_bridge.write_savedmodel(qat, Path(tmp) / "qat", outputs)
        rows.append(bench.measure("qat_int8", Path(tmp) / "qat", "int8", 0.0))

    summary = {
        "project": project.name,
        "data": data.describe(),
        "metric": project.metric_name,
        "metric_is_share": project.metric_is_share,
        "optimize": asdict(ocfg),
        "prunable_layers": prunable,
        "quantized_layers": quantized,
        "models": {r.name: asdict(r) for r in rows},
    }
    (paths.optimize / "optimize.json").write_text(json.dumps(summary, indent=2) + "\n")
    chart = plots.size_versus_accuracy(
        {LABELS[r.name]: (r.gzip_bytes / 1024, r.metric) for r in rows},
        paths.optimize / "size_vs_accuracy.png",
        metric=f"test {project.metric_name}",
        higher_is_better=project.metric_is_share,
    )
    (paths.optimize / "optimize.md").write_text(render_markdown(summary, chart.name))
    print(f"Comparison: {paths.optimize / 'optimize.md'}")
    return rows


def _with_outputs(model: keras.Model, outputs: list[str] | None) -> keras.Model:
    """`model` returning the outputs of the layers named `outputs`, by name (None: `model` itself)."""
    if outputs is None:
        return model
    return keras.Model(model.input, {name: model.get_layer(name).output for name in outputs}, name=model.name)


def render_markdown(summary: dict[str, Any], chart: str) -> str:
    """optimize.md: the comparison table, changes measured against the float32 baseline."""
    models = summary["models"]
    base = models["baseline_float32"]
    metric = summary["metric"]
    share = summary["metric_is_share"]
    ocfg = summary["optimize"]
    lines = [
        f"# {summary['project']}: compression",
        "",
        f"{summary['data']['splits']['test']} test examples ({summary['data']['source']}). Pruning: "
        f"{ocfg['target_sparsity']:.0%} target sparsity over {len(summary['prunable_layers'])} layers, "
        f"{_epochs(ocfg['prune_epochs'])}; quantization-aware training: {_epochs(ocfg['qat_epochs'])}. "
        "Latency: median of batch-1 calls, one CPU thread.",
        "",
        f"| model | {metric} | {'change (points)' if share else 'change'} | size | gzip size | gzip vs baseline | "
        "sparsity | latency |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in models.items():
        change = r["metric"] - base["metric"]
        lines.append(
            f"| {LABELS[name]} | {r['metric']:.4f} | {f'{100 * change:+.2f}' if share else f'{change:+.4f}'} | "
            f"{r['size_bytes'] / 1024:,.0f} KB | {r['gzip_bytes'] / 1024:,.0f} KB | "
            f"{r['gzip_bytes'] / base['gzip_bytes']:.2f}x | {r['sparsity']:.0%} | {r['latency_ms']:.3f} ms |"
        )
    lines += ["", f"![size versus accuracy]({chart})", ""]
    return "\n".join(lines)
