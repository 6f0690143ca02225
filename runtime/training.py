"""The training loop behind `tflc train`: binds a dataset to a model's inputs and runs a step.

    model = tflc.load("examples/mnist_mlp.tfl")
    results = train(model, load_dataset("mnist"), TrainConfig(step="step", epochs=10))
    results["test"]                                      # the test accuracy

Binding, by type first and by name where the type leaves a choice:

- the images go to the float input of shape [B, D], D the data's features per example (784 for
  MNIST); where several inputs fit, to the one named x, images, image, inputs or input;
- the labels go to an input with the same batch dim B: float [B, C] takes them one-hot (C at
  least the number of classes), integer [B] (i32 or i64) takes class indices; where several
  inputs fit, to the one named y, labels, label, y_, targets or target;
- every other input the step or the metric needs (`keep_prob`, a learning rate) is fed from
  `feeds` (training) and `eval_feeds` (evaluation, falling back to `feeds`).

The loss shown and logged is `loss`, or by default the named value that every `grad` of the step
differentiates (`loss_of`): for `train step = sgd(cross_entropy, ...)` it is `cross_entropy`.
The metric is averaged over a split batch by batch, weighted by batch size, so it must be a mean
over the examples (an accuracy, a mean loss).

Each epoch visits the training split once in a fresh order drawn from the seed (a batch that
covers the whole split is fed as it is); its last batch may be smaller. Training for `steps`
stops in the middle of an epoch, which is then evaluated like the others.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass

import numpy as np

from ..ir.core import Module
from ..ir.errors import Error
from ..ir.types import TensorType
from .datasets import Dataset, Split

IMAGE_NAMES = ("x", "images", "image", "inputs", "input")
LABEL_NAMES = ("y", "labels", "label", "y_", "targets", "target")
EVAL_BATCH = 5000
LOG_DIR = "runs"


def loss_of(module: Module, step: str) -> str | None:
    """The name of the value that step `step` minimises: the one `y` of every `grad(y, ...)`
    its updates use (not looking inside the `y`s), when the model defines a name for it."""
    model = module.function("model")
    producers = {result: op for op in model.ops for result in op.results}
    pending = [out.value for out in model.outputs if out.step == step]
    seen, losses = set(), []
    while pending:
        value = pending.pop()
        op = producers.get(value)
        if value in seen or op is None:
            continue
        seen.add(value)
        if op.opcode == "grad":
            losses.append(op.operands[0])
        else:
            pending.extend(op.operands)
    if len(set(losses)) != 1:
        return None
    names = [out.label for out in model.outputs if out.step is None and out.value is losses[0]]
    return names[0] if names else None


# -- binding the data to the model's inputs ------------------------------------------------------

@dataclass(frozen=True)
class Binding:
    """Which inputs take the images and the labels, and the labels' encoding."""

    images: str
    labels: str
    one_hot: int | None  # the depth of one-hot labels; None: class indices

    @property
    def inputs(self) -> tuple[str, str]:
        return self.images, self.labels

    def arrays(self, split: Split) -> dict[str, np.ndarray]:
        """The split's images and labels, by input name, labels encoded as the input wants."""
        labels = split.one_hot(self.one_hot) if self.one_hot is not None else split.labels
        return {self.images: split.images, self.labels: labels}


def bind(inputs: dict[str, TensorType], data: Dataset) -> Binding:
    """`inputs`: the model's input types by name (`Model.input_types`)."""
    features = data.features
    images = _choose("the images", IMAGE_NAMES, [
        name for name, t in inputs.items()
        if t.is_float and t.rank == 2 and t.shape[1] == features],
        f"a float input of shape [B, {features}]")
    batch = inputs[images].shape[0]
    labels = _choose("the labels", LABEL_NAMES, [
        name for name, t in inputs.items() if name != images and t.shape[:1] == (batch,)
        and ((t.is_float and t.rank == 2 and isinstance(t.shape[1], int))
             or (t.dtype in ("i32", "i64") and t.rank == 1))],
        f"an input of shape [{batch}, C] (float, one-hot) or [{batch}] (integer class indices)")
    label_type = inputs[labels]
    if label_type.rank == 1:
        return Binding(images, labels, None)
    depth = label_type.shape[1]
    if depth < data.classes:
        raise Error(f"input '{labels}' takes one-hot labels of {depth} classes, but the data "
                    f"has labels up to {data.classes - 1}")
    return Binding(images, labels, depth)


def _choose(what: str, names: tuple[str, ...], candidates: list[str], wanted: str) -> str:
    if len(candidates) == 1:
        return candidates[0]
    named = [name for name in candidates if name in names]
    if len(named) == 1:
        return named[0]
    if not candidates:
        raise Error(f"cannot bind {what}: the model has no input that takes them ({wanted})")
    raise Error(f"cannot bind {what}: inputs {', '.join(candidates)} all fit ({wanted})",
                hint=f"name the one that takes {what} one of: {', '.join(names)}")


# -- the metrics log -----------------------------------------------------------------------------

def default_log_path(model_name: str) -> str:
    """`runs/<model>-<YYYYmmdd-HHMMSS>.jsonl` in the current directory (never an older log)."""
    stem = os.path.join(LOG_DIR, f"{model_name}-{time.strftime('%Y%m%d-%H%M%S')}")
    path, n = stem + ".jsonl", 1
    while os.path.exists(path):
        n += 1
        path = f"{stem}-{n}.jsonl"
    return path


class Log:
    """Metrics as JSON lines, one record per line, each with a `kind`: `config` (first), `step`
    (every step), `epoch` (every epoch), then `test` or `interrupted`."""

    def __init__(self, path: str):
        self.path = path
        self.records: list[dict] = []
        _make_directory(path)
        try:
            self.file = open(path, "w", encoding="utf-8")
        except OSError as e:
            raise Error(f"cannot write the log {path}: {e.strerror or e}") from None

    def write(self, kind: str, **fields) -> None:
        record = {"kind": kind, **fields}
        self.records.append(record)
        self.file.write(json.dumps(record) + "\n")
        if kind != "step":
            self.file.flush()

    def close(self) -> None:
        self.file.close()


# -- training ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrainConfig:
    step: str
    loss: str | None = None  # None: loss_of(step)
    epochs: int = 1
    steps: int | None = None  # overrides epochs when given
    batch: int = 100
    feeds: dict | None = None
    eval_feeds: dict | None = None
    metric: str | None = None
    save: str | None = None
    log: str | None = None  # None: default_log_path(model name)
    plot: str | None = None
    seed: int = 0
    progress: bool = True

    def __post_init__(self):
        for name in ("epochs", "steps", "batch"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise Error(f"{name} must be a whole number >= 1, got {value!r}")


def evaluate(model, metric: str, arrays: dict[str, np.ndarray], feeds: dict,
             batch: int = EVAL_BATCH) -> float:
    """The metric's mean over the examples in `arrays`, batch by batch, weighted by size."""
    count = len(next(iter(arrays.values())))
    total = 0.0
    for start in range(0, count, batch):
        chunk = {name: array[start:start + batch] for name, array in arrays.items()}
        size = len(next(iter(chunk.values())))
        total += float(model.run(metric, feeds, **chunk)) * size
    return total / count


def train(model, data: Dataset, config: TrainConfig) -> dict:
    """Runs the step over shuffled batches, evaluating after each epoch and at the end.

    Returns `steps`, `seconds` (training and validation), `loss` (the last epoch's mean), and
    with a metric `validation` (the last epoch's) and `test`. Ctrl-C saves a checkpoint (at
    `save`, else next to the log) before the KeyboardInterrupt goes on.
    """
    run = _Run(model, data, config)
    try:
        with _progress(run.total_steps, config.progress) as bar:
            for epoch in range(1, run.epochs + 1):
                run.epoch(epoch, bar)
        run.finish()
    except KeyboardInterrupt:
        run.interrupted()
        raise
    finally:
        run.log.close()
    if config.plot:
        plot_curves(run.log.records, config.plot, run.loss, config.metric)
        print(f"plotted {config.plot}")
    return run.results


class _Run:
    """One training run's plan, data and progress; everything is checked when it is made."""

    def __init__(self, model, data: Dataset, config: TrainConfig):
        self.model, self.config = model, config
        binding = bind(model.input_types, data)
        self.feeds = dict(config.feeds or {})
        self.eval_feeds = {**self.feeds, **(config.eval_feeds or {})}
        self.loss = config.loss or loss_of(model.module, config.step)
        _check_names(model, config, self.loss, binding, self.feeds, self.eval_feeds)
        _prepare_outputs(config)
        self.train_arrays = binding.arrays(data.train)
        self.eval_arrays = {name: binding.arrays(split) for name, split in data.splits().items()
                            if name != "train"}
        self.examples = len(data.train)
        per_epoch = math.ceil(self.examples / config.batch)
        self.total_steps = config.steps if config.steps is not None else \
            per_epoch * config.epochs
        self.epochs = math.ceil(self.total_steps / per_epoch)
        self.log = Log(config.log or default_log_path(model.module.name))
        settings = {key: value for key, value in asdict(config).items() if key != "progress"}
        self.log.write("config", model=model.module.name, **settings | {
            "loss": self.loss, "epochs": self.epochs, "steps": self.total_steps,
            "log": self.log.path, "feeds": _jsonable(self.feeds),
            "eval_feeds": _jsonable(self.eval_feeds), "backend": model.backend,
            "examples": {name: len(split) for name, split in data.splits().items()}})
        self.rng = np.random.default_rng(config.seed)
        self.results: dict = {}
        self.started = time.perf_counter()
        self.done = 0

    def epoch(self, epoch: int, bar) -> None:
        losses = []
        for index in _batches(self.examples, self.config.batch, self.rng):
            if self.done == self.total_steps:
                break
            batch = {name: array[index] for name, array in self.train_arrays.items()}
            value = _train_step(self.model, self.config.step, self.loss, self.feeds, batch,
                                self.done + 1, epoch)
            self.done += 1
            losses.append(value)
            self.log.write("step", step=self.done, epoch=epoch, loss=value)
            bar.set_postfix(loss=f"{sum(losses) / len(losses):.4f}", refresh=False)
            bar.update(1)
        self.results["loss"] = sum(losses) / len(losses)
        line = f"epoch {epoch}/{self.epochs}: {self.loss} {self.results['loss']:.4f}"
        record = {"step": self.done, "epoch": epoch, f"train_{self.loss}": self.results["loss"]}
        metric = self.config.metric
        if metric and "validation" in self.eval_arrays:
            self.results["validation"] = self.evaluate("validation")
            line += f", validation {metric} {self.results['validation']:.4f}"
            record[f"validation_{metric}"] = self.results["validation"]
        self.log.write("epoch", **record, seconds=time.perf_counter() - self.started)
        bar.write(line)

    def evaluate(self, split: str) -> float:
        return evaluate(self.model, self.config.metric, self.eval_arrays[split], self.eval_feeds)

    def finish(self) -> None:
        self.results["steps"] = self.done
        self.results["seconds"] = time.perf_counter() - self.started
        metric = self.config.metric
        if metric and "test" in self.eval_arrays:
            self.results["test"] = self.evaluate("test")
            self.log.write("test", step=self.done, **{f"test_{metric}": self.results["test"]})
            print(f"test {metric} {self.results['test']:.4f}")
        print(f"{self.done} steps in {self.results['seconds']:.1f} s; log: {self.log.path}")
        if self.config.save:
            self.model.save(self.config.save)
            print(f"saved {self.config.save}")

    def interrupted(self) -> None:
        saved = self.config.save or os.path.splitext(self.log.path)[0] + ".npz"
        self.model.save(saved)
        self.log.write("interrupted", step=self.done, checkpoint=saved)
        print(f"interrupted after {self.done} steps: saved {saved}; log: {self.log.path}")


def _train_step(model, step: str, loss: str, feeds: dict, batch: dict, number: int,
                epoch: int) -> float:
    """One step; returns the loss (computed before the update). Errors say which step."""
    try:
        value = float(model.run(step, feeds, fetch=loss, **batch))
    except Error as e:
        raise Error(e.message, e.loc, hint=e.hint,
                    notes=e.notes + ((f"at training step {number} (epoch {epoch})", None),)
                    ) from None
    if not math.isfinite(value):
        raise Error(f"the loss '{loss}' is {value} at training step {number} (epoch {epoch})",
                    hint="run with --debug-nans (or TFLC_DEBUG_NANS=1) to stop at the first op "
                         "that makes a NaN or an infinity")
    return value


def _batches(count: int, batch: int, rng: np.random.Generator):
    """The epoch's batches as indices: a fresh order, or the whole split as one slice."""
    if batch >= count:
        yield slice(None)
        return
    order = rng.permutation(count)
    for start in range(0, count, batch):
        yield order[start:start + batch]


def _check_names(model, config: TrainConfig, loss: str | None, binding: Binding,
                 feeds: dict, eval_feeds: dict) -> None:
    """The step, the loss and the metric exist, are what they should be, and have every input
    they need; checked before any data is batched, so mistakes show at once."""
    if config.step not in model.steps:
        model.entry((), config.step)  # raises the unknown-step error, with a suggestion
    if loss is None:
        raise Error(f"cannot tell which loss step '{config.step}' minimises",
                    hint="name the value to report with --loss NAME")
    for name in binding.inputs:
        if name in feeds or name in eval_feeds:
            raise Error(f"input '{name}' takes the data's "
                        f"{'images' if name == binding.images else 'labels'}: do not feed it")
    checks = [((loss,), config.step, feeds, "--feed", "the loss")]
    if config.metric:
        checks.append(((config.metric,), None, eval_feeds, "--eval-feed", "the metric"))
    for fetches, step, given, option, what in checks:
        entry = model.entry(fetches, step)
        value_type = entry.function.outputs[0].value.type
        if value_type.shape != ():
            raise Error(f"{what} '{fetches[0]}' must be a scalar, but it is {value_type}",
                        hint="reduce it over the batch, with mean(...)")
        for name in entry.inputs:
            if name not in given and name not in binding.inputs:
                purpose = f"step '{step}'" if step else f"{what} '{fetches[0]}'"
                raise Error(f"{purpose} needs input '{name}', which the data does not give",
                            hint=f"give it with {option} {name}=VALUE")


def _prepare_outputs(config: TrainConfig) -> None:
    if config.plot:
        try:
            import matplotlib  # noqa: F401  (checked now, not after training)
        except ImportError:
            raise Error("--plot needs matplotlib: pip install 'tflc[plot]'") from None
    for path in (config.save, config.plot):
        if path:
            _make_directory(path)


def _make_directory(path: str) -> None:
    """The folder `path` goes in, made if missing, so outputs fail now rather than at the end."""
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    except OSError as e:
        raise Error(f"cannot write {path}: {e.strerror or e}") from None


def _jsonable(feeds: dict) -> dict:
    return {name: np.asarray(value).tolist() for name, value in feeds.items()}


def _progress(total: int, enabled: bool):
    from tqdm import tqdm  # a dependency; imported here to keep `import tflc` light

    # disable=None: no bar when stderr is not a terminal (a log file would fill with redraws)
    return tqdm(total=total, disable=None if enabled else True, unit="step", dynamic_ncols=True)


def plot_curves(records: list[dict], path: str, loss: str, metric: str | None) -> None:
    """The training loss per step and per epoch; the validation metric per epoch, with the
    test metric as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r for r in records if r["kind"] == "step"]
    epochs = [r for r in records if r["kind"] == "epoch"]
    panels = 2 if metric else 1
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels + 1, 4), squeeze=False)
    loss_ax = axes[0][0]
    loss_ax.plot([r["step"] for r in steps], [r["loss"] for r in steps], linewidth=0.5,
                 alpha=0.5, label="per step")
    loss_ax.plot([r["step"] for r in epochs], [r[f"train_{loss}"] for r in epochs],
                 marker="o", label="epoch mean")
    loss_ax.set(xlabel="step", ylabel=loss, title=f"training {loss}")
    loss_ax.legend()
    if metric:
        metric_ax = axes[0][1]
        key = f"validation_{metric}"
        points = [r for r in epochs if key in r]
        metric_ax.plot([r["step"] for r in points], [r[key] for r in points], marker="o",
                       label="validation")
        for record in records:
            if record["kind"] == "test":
                metric_ax.axhline(record[f"test_{metric}"], linestyle="--", color="gray",
                                  label=f"test {record[f'test_{metric}']:.4f}")
        metric_ax.set(xlabel="step", ylabel=metric, title=metric)
        metric_ax.legend()
    fig.tight_layout()
    try:
        fig.savefig(path)
    except (OSError, ValueError) as e:
        raise Error(f"cannot write the plot {path}: {e}") from None
    finally:
        plt.close(fig)
