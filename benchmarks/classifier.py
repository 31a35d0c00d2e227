"""Measure the classifier's default preset against two baselines on the same data and the same training time.

- the default preset end to end (`python -m projects.classifier all`): macro F1 on the test split;
- majority class: always answer the most frequent training class;
- a from-scratch small CNN (three conv blocks, no augmentation), trained for as many
  seconds as the default preset took, on the same splits with the same class weights.

Run: `make project=classifier bench` (or `python -m benchmarks.classifier [--preset default]`).
Writes benchmarks/results/classifier.json; the README's figures are quoted from it.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from common.runtime import quiet_tensorflow

from .runs import run_preset, write_results


def small_cnn(size: int, n_classes: int):
    """Three blocks of 3x3 convolution + max pooling (32, 64, 128 filters), global pooling, softmax."""
    import keras
    from keras import layers

    inputs = keras.Input((size, size, 3))
    x = layers.Rescaling(1 / 255)(inputs)
    for filters in (32, 64, 128):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D()(x)
    x = layers.GlobalAveragePooling2D()(layers.Dropout(0.2)(x))
    return keras.Model(inputs, layers.Dense(n_classes, activation="softmax")(x), name="small_cnn")


def baselines(preset: str, seconds: float) -> dict:
    """Majority-class and small-CNN macro F1 on the preset's test split; the CNN trains for `seconds`."""
    import keras
    import numpy as np

    from common import registry
    from common.config import make_config
    from common.data.splits import dataset_to_numpy
    from common.evaluation import classification_metrics
    from common.training import batched

    config = registry.config_module("classifier")
    cfg = make_config(config.CONFIG, config.PRESETS, preset)
    project = registry.load("classifier")
    data = project.load_data(cfg)
    names = data.class_names
    _, y_train = dataset_to_numpy(data.train)
    x_test, y_test = dataset_to_numpy(data.test)
    majority = np.zeros((len(y_test), len(names)))
    majority[:, np.bincount(y_train).argmax()] = 1.0

    keras.utils.set_random_seed(cfg.train.seed)
    model = small_cnn(cfg.data.image_size, len(names))
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    out_of_time = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: setattr(model, "stop_training", time.perf_counter() - start >= seconds)
    )
    history = model.fit(
        batched(data.train, cfg.train.batch_size, shuffle_seed=cfg.train.seed),
        epochs=1000,  # until the time is up
        class_weight=project.class_weight(cfg, data),
        callbacks=[out_of_time],
        verbose=2,
    )
    cnn_seconds = time.perf_counter() - start
    cnn = classification_metrics(y_test, model.predict(x_test.astype(np.float32), verbose=0), names)
    return {
        "majority_macro_f1": round(classification_metrics(y_test, majority, names)["macro_f1"], 4),
        "small_cnn_macro_f1": round(cnn["macro_f1"], 4),
        "small_cnn_accuracy": round(cnn["accuracy"], 4),
        "small_cnn_epochs": len(history.epoch),
        "small_cnn_train_seconds": round(cnn_seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default")
    args = parser.parse_args()
    quiet_tensorflow()

    with tempfile.TemporaryDirectory() as tmp:
        report = run_preset("classifier", args.preset, Path(tmp))
    m = report["metrics"]
    print(f"{args.preset}: macro F1 {m['macro_f1']:.4f} in {report['train_seconds']} s; training the baselines")
    base = baselines(args.preset, report["train_seconds"])
    result = {
        "benchmark": "classifier end to end (train + evaluate) against baselines trained as long",
        "preset": args.preset,
        "data": report["data"],
        "macro_f1": round(m["macro_f1"], 4),
        "accuracy": round(m["accuracy"], 4),
        "train_seconds": report["train_seconds"],
        "wall_seconds": report["wall_seconds"],
        "baseline_macro_f1": max(base["majority_macro_f1"], base["small_cnn_macro_f1"]),
        **base,
        "per_class_f1": {name: round(c["f1"], 4) for name, c in m["per_class"].items()},
    }
    print(json.dumps({k: v for k, v in result.items() if k not in ("data", "per_class_f1")}, indent=2))
    write_results("classifier", result)


if __name__ == "__main__":
    main()
