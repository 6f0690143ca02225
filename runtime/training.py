"""The training loop behind `tflc train`: binds a dataset to a model's inputs and runs a step.

Binding, by type (names do not matter): the model's float input of shape `[N, D]` takes the
images (D must be the data's feature count, 784 for MNIST); the labels go to the input of shape
`[N, C]` (float: one-hot) or `[N]` (integer: class indices). Every other input a step or metric
needs (`keep_prob`, `lr`) comes from `--feed` (training) and `--eval-feed` (evaluation, falling
back to `--feed`).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass

import numpy as np

from ..ir.errors import Error
from .datasets import Split, load_mnist


@dataclass(frozen=True)
class Data:
    train: Split
    validation: Split | None
    test: Split | None


def load_data(spec: str) -> Data:
    """`mnist`, or an `.npz` holding `train/images`, `train/labels` (and optionally the same under
    `validation/` and `test/`)."""
    if spec == "mnist":
        mnist = load_mnist()
        return Data(mnist.train, mnist.validation, mnist.test)
    try:
        archive = np.load(spec, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise Error(f"cannot read dataset {spec}: {e}") from None
    with archive:
        def split(name):
            if f"{name}/images" not in archive.files:
                return None
            if f"{name}/labels" not in archive.files:
                raise Error(f"dataset {spec}: {name}/images has no {name}/labels")
            images = archive[f"{name}/images"].astype(np.float32)
            return Split(images.reshape(len(images), -1), archive[f"{name}/labels"])
        train = split("train")
        if train is None:
            raise Error(f"dataset {spec} has no train/images (found: {', '.join(archive.files)})")
        return Data(train, split("validation"), split("test"))


@dataclass(frozen=True)
class Binding:
    """Which model inputs take the images and the labels, and in which label encoding."""

    images: str
    labels: str
    one_hot_depth: int | None  # None: class indices

    def feeds(self, split: Split, index=slice(None)) -> dict[str, np.ndarray]:
        labels = split.labels[index]
        if self.one_hot_depth is not None:
            labels = np.eye(self.one_hot_depth, dtype=np.float32)[labels]
        return {self.images: split.images[index], self.labels: labels}


def bind(inputs: dict, features: int) -> Binding:
    """`inputs` maps input names to their `TensorType`s."""
    images = [n for n, t in inputs.items()
              if t.is_float and t.rank == 2 and t.shape[1] == features]
    if len(images) != 1:
        raise Error(f"cannot bind the images: the model needs exactly one float input of shape "
                    f"[N, {features}], found {len(images)}"
                    + (f" ({', '.join(images)})" if images else ""))
    batch = inputs[images[0]].shape[0]
    one_hot = [n for n, t in inputs.items() if n != images[0] and t.is_float and t.rank == 2
               and t.shape[0] == batch and isinstance(t.shape[1], int)]
    indices = [n for n, t in inputs.items() if t.dtype in ("i32", "i64") and t.shape == (batch,)]
    if len(one_hot) + len(indices) != 1:
        raise Error(f"cannot bind the labels: the model needs exactly one input of shape "
                    f"[{batch}, C] (float, one-hot) or [{batch}] (integer class indices)")
    if one_hot:
        return Binding(images[0], one_hot[0], inputs[one_hot[0]].shape[1])
    return Binding(images[0], indices[0], None)


class Log:
    """Metrics as JSON lines: one record per step and one per evaluation."""

    def __init__(self, path: str | None):
        self.path = path
        self.records: list[dict] = []
        self.file = None
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            self.file = open(path, "w", encoding="utf-8")

    def write(self, **record) -> None:
        self.records.append(record)
        if self.file:
            self.file.write(json.dumps(record) + "\n")

    def close(self) -> None:
        if self.file:
            self.file.close()


def evaluate(model, metric: str, binding: Binding, split: Split, feeds: dict,
             batch: int = 5000) -> float:
    """The metric's mean over the split, batch by batch (weighted by batch size)."""
    total = 0.0
    for start in range(0, len(split), batch):
        index = slice(start, start + batch)
        value = model.run(metric, **feeds, **binding.feeds(split, index))
        total += float(value) * len(split.labels[index])
    return total / len(split)


@dataclass(frozen=True)
class TrainConfig:
    step: str
    loss: str | None = None
    epochs: int = 1
    steps: int | None = None  # overrides epochs when given
    batch: int = 100
    feeds: dict | None = None
    eval_feeds: dict | None = None
    metric: str | None = None
    save: str | None = None
    log: str | None = None
    plot: str | None = None
    seed: int = 0
    progress: bool = True


def train(model, data: Data, config: TrainConfig, echo=print) -> dict:
    """Runs the step over shuffled batches; returns the final metrics."""
    binding = bind(model.input_types, data.train.images.shape[1])
    feeds = dict(config.feeds or {})
    eval_feeds = {**feeds, **(config.eval_feeds or {})}
    per_epoch = math.ceil(len(data.train) / config.batch)
    total_steps = config.steps if config.steps is not None else per_epoch * config.epochs
    epochs = math.ceil(total_steps / per_epoch)
    fetch = [config.loss] if config.loss else []
    log = Log(config.log)
    rng = np.random.default_rng(config.seed)
    results: dict = {}
    started = time.perf_counter()
    done = 0
    try:
        with _progress(total_steps, config.progress) as bar:
            for epoch in range(1, epochs + 1):
                order = rng.permutation(len(data.train))
                for start in range(0, len(order), config.batch):
                    if done == total_steps:
                        break
                    index = order[start:start + config.batch]
                    out = model.run(config.step, fetch=fetch, **feeds,
                                    **binding.feeds(data.train, index))
                    done += 1
                    record = {"step": done, "epoch": epoch}
                    if config.loss:
                        record["loss"] = float(out[0])
                        bar.set_postfix(loss=f"{record['loss']:.4f}", refresh=False)
                    log.write(**record)
                    bar.update(1)
                if config.metric and data.validation is not None:
                    value = evaluate(model, config.metric, binding, data.validation, eval_feeds)
                    results["validation"] = value
                    log.write(epoch=epoch, step=done, **{f"validation_{config.metric}": value})
                    bar.write(f"epoch {epoch}: validation {config.metric} = {value:.4f}")
    except KeyboardInterrupt:
        if config.save:
            model.save(config.save)
            echo(f"interrupted after {done} steps: saved {config.save}")
        log.close()
        raise
    results["seconds"] = time.perf_counter() - started
    results["steps"] = done
    if config.metric and data.test is not None:
        results["test"] = evaluate(model, config.metric, binding, data.test, eval_feeds)
        log.write(step=done, **{f"test_{config.metric}": results["test"]})
        echo(f"test {config.metric} = {results['test']:.4f}")
    echo(f"{done} steps in {results['seconds']:.1f} s")
    if config.save:
        model.save(config.save)
        echo(f"saved {config.save}")
    log.close()
    if config.plot:
        plot_curves(log.records, config.plot, config.metric)
        echo(f"wrote {config.plot}")
    return results


def _progress(total: int, enabled: bool):
    from tqdm import tqdm  # a dependency; imported here to keep `import tflc` light

    return tqdm(total=total, disable=not enabled, unit="step", dynamic_ncols=True)


def plot_curves(records: list[dict], path: str, metric: str | None) -> None:
    try:
        import matplotlib
    except ImportError:
        raise Error("--plot needs matplotlib: pip install 'tflc[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (loss_ax, metric_ax) = plt.subplots(1, 2, figsize=(10, 4))
    steps = [r for r in records if "loss" in r]
    loss_ax.plot([r["step"] for r in steps], [r["loss"] for r in steps], linewidth=0.6)
    loss_ax.set(xlabel="step", ylabel="loss", title="training loss")
    key = f"validation_{metric}"
    evals = [r for r in records if key in r]
    metric_ax.plot([r["epoch"] for r in evals], [r[key] for r in evals], marker="o")
    metric_ax.set(xlabel="epoch", ylabel=metric or "", title=f"validation {metric or ''}")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)

